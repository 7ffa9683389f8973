/**
 * One cluster member as its own OS process, for the crash and process tests: opens (or joins) a
 * `RaftMember` from the JSON `ProcessSpec` in argv[2], a store over it through a
 * `RecordingBackend`, and (unless the spec has no workload) runs concurrent execs on shared
 * aggregates, recording every append attempt in its history file. The parent can also have it
 * write, change the membership or transfer leadership (`call`). Reports and control: see
 * `protocol.ts`. Meant to be SIGKILLed, or stopped with SIGTERM like a service.
 *
 *   node --import tsx test/crash/member-process.ts '<ProcessSpec JSON>'
 */
import { createInterface } from 'node:readline';
import { createStore } from '@timebox/core';
import { RaftMember } from '../../src/raft-member.js';
import { HistoryWriter } from './history-file.js';
import {
  EVENT_TYPE,
  writeId,
  writeOp,
  type CallAnswer,
  type CallVerb,
  type CloseReport,
  type ProcessSpec,
  type StatusReport,
} from './protocol.js';
import { RecordingBackend } from './recording-backend.js';
import { Workload } from './workload.js';

function say(line: string): void {
  process.stdout.write(`@${line}\n`);
}

function die(error: unknown): never {
  process.stderr.write(`member process failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
}

process.on('unhandledRejection', die);

const spec = JSON.parse(process.argv[2] ?? '') as ProcessSpec;
const history = new HistoryWriter(spec.historyFile);
const member = spec.join === true ? await RaftMember.join({ ...spec.member }) : await RaftMember.open({ ...spec.member });
say('open');
let restores = 0;
member.state.onRestored(() => restores++);
const recording = new RecordingBackend(member.backend(), history, spec.client);
const store = createStore<{ [EVENT_TYPE]: { op: string } }>(recording);

const report = setInterval(() => {
  const s = member.status();
  const status: StatusReport = {
    role: s.role,
    term: s.term,
    leader: s.leader,
    commit: s.commit,
    applied: s.applied,
    lastIndex: s.lastIndex,
    snapshotIndex: s.snapshotIndex,
    lifecycle: s.lifecycle,
    oks: recording.oks,
    restores,
    voters: member.members().voters,
    learners: member.members().learners,
  };
  say(`status ${JSON.stringify(status)}`);
}, spec.statusEveryMs);

const workload = spec.workload === null ? null : new Workload(store, spec.workload, spec.client);
let closing: Promise<void> | undefined;

function closeReport(): string {
  const s = member.status();
  const report: CloseReport = { role: s.role, term: s.term, leader: s.leader };
  return JSON.stringify(report);
}

async function close(): Promise<void> {
  say(`closing ${closeReport()}`);
  await workload?.stop();
  clearInterval(report);
  await store.close();
  await member.close({ transferLeadership: spec.transferLeadershipOnClose !== false });
  history.close();
  say(`closed ${closeReport()}`);
  process.exit(0);
}

async function perform(verb: CallVerb, args: readonly string[]): Promise<unknown> {
  const [first = '', second = ''] = args;
  switch (verb) {
    case 'write': {
      const k = Number(first);
      await store.appendEvents(writeId(k), 0, [{ type: EVENT_TYPE, data: { op: writeOp(k) } }]);
      return null;
    }
    case 'add-learner':
      return member.addLearner(first, second);
    case 'promote':
      return member.promote(first);
    case 'remove':
      return member.removeMember(first);
    case 'transfer':
      return member.transferLeadership(first === '' ? undefined : first);
    default:
      throw new Error(`unknown call ${String(verb)}`);
  }
}

/** Runs `call <n> <verb> <args…>` and answers `@answer <n> {CallAnswer}`; a failure is an answer, not a crash. */
function call(n: string, verb: CallVerb, args: readonly string[]): void {
  const performed = closing === undefined ? perform(verb, args) : Promise.reject(new Error('the member process is closing'));
  void performed.then(
    (value) => say(`answer ${n} ${JSON.stringify({ ok: true, value: value ?? null } satisfies CallAnswer)}`),
    (error: unknown) => {
      const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      say(`answer ${n} ${JSON.stringify({ ok: false, error: text } satisfies CallAnswer)}`);
    },
  );
}

// A service manager stops a member with SIGTERM: close cleanly (a leader hands leadership over first).
process.on('SIGTERM', () => {
  closing ??= close().catch(die);
});

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const [word, ...args] = line.trim().split(' ');
    if (word === 'stop') void (workload?.stop() ?? Promise.resolve()).then(() => say('idle'), die);
    else if (word === 'close') closing ??= close().catch(die);
    else if (word === 'call') call(args[0] ?? '', args[1] as CallVerb, args.slice(2));
  })
  // The parent is gone (its end of stdin closed): do not linger as an orphan.
  .on('close', () => {
    if (closing === undefined) process.exit(2);
  });

await store.ready();
say('ready');
workload?.start();
