/**
 * One cluster member as its own OS process, for the crash tests: opens a `RaftMember` from the
 * JSON `ProcessSpec` in argv[2], a store over it through a `RecordingBackend`, and (unless the
 * spec has no workload) runs concurrent execs on shared aggregates, recording every append
 * attempt in its history file. Reports and control: see `protocol.ts`. Meant to be SIGKILLed.
 *
 *   node --import tsx test/crash/member-process.ts '<ProcessSpec JSON>'
 */
import { createInterface } from 'node:readline';
import { createStore } from '@timebox/core';
import { RaftMember } from '../../src/raft-member.js';
import { HistoryWriter } from './history-file.js';
import { EVENT_TYPE, type ProcessSpec, type StatusReport } from './protocol.js';
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
const member = await RaftMember.open({ ...spec.member });
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
  };
  say(`status ${JSON.stringify(status)}`);
}, spec.statusEveryMs);

const workload = spec.workload === null ? null : new Workload(store, spec.workload, spec.client);
let closing: Promise<void> | undefined;

async function close(): Promise<void> {
  await workload?.stop();
  clearInterval(report);
  await store.close();
  await member.close();
  history.close();
  say('closed');
  process.exit(0);
}

createInterface({ input: process.stdin })
  .on('line', (line) => {
    const word = line.trim();
    if (word === 'stop') void (workload?.stop() ?? Promise.resolve()).then(() => say('idle'), die);
    else if (word === 'close') closing ??= close().catch(die);
  })
  // The parent is gone (its end of stdin closed): do not linger as an orphan.
  .on('close', () => {
    if (closing === undefined) process.exit(2);
  });

await store.ready();
say('ready');
workload?.start();
