import { ConfigError } from '@timebox/core';
import { describe, expect, it } from 'vitest';
import { MEMBER_DEFAULTS, type RaftMemberOptions } from '../../src/options.js';
import { RaftMember } from '../../src/raft-member.js';
import { resolveOptions } from '../../src/options.js';

const base: RaftMemberOptions = { localId: 'a', address: '127.0.0.1:7400', dataDir: '/nonexistent/raft-options-test' };

/** The ConfigError `options` raise, asserting that is what they raise. */
function configError(options: unknown): ConfigError {
  try {
    resolveOptions(options as RaftMemberOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error(`accepted ${JSON.stringify(options)}`);
}

describe('RaftMemberOptions', () => {
  it('fills in the defaults; no servers means a single-member cluster of this process', () => {
    const resolved = resolveOptions(base);
    expect(resolved).toMatchObject({ ...MEMBER_DEFAULTS, servers: [{ id: 'a', address: '127.0.0.1:7400' }] });
    expect(resolved.segmentBytes).toBeUndefined();
  });

  it.each([
    [{ localId: '' }, 'localId'],
    [{ address: 'no-port' }, 'address'],
    [{ dataDir: '' }, 'dataDir'],
    [{ logTailSize: 2047 }, 'logTailSize'],
    [{ servers: [] }, 'servers'],
    [{ servers: [{ id: 'b', address: '127.0.0.1:7401' }] }, 'servers'],
    [{ servers: [{ id: 'a', address: '127.0.0.1:7409' }] }, 'servers'],
    [
      {
        servers: [
          { id: 'a', address: '127.0.0.1:7400' },
          { id: 'a', address: '127.0.0.1:7401' },
        ],
      },
      'servers[1].id',
    ],
    [
      {
        servers: [
          { id: 'a', address: '127.0.0.1:7400' },
          { id: 'b', address: 'x' },
        ],
      },
      'servers[1].address',
    ],
    [{ publisher: 'log' }, 'publisher'],
    [{ clusterId: '' }, 'clusterId'],
    [{ tickMs: 0 }, 'tickMs'],
    [{ electionTicks: 1 }, 'electionTicks'],
    [{ proposalTimeoutMs: 1.5 }, 'proposalTimeoutMs'],
    [{ snapshotEvery: -1 }, 'snapshotEvery'],
    [{ compactionMargin: 0 }, 'compactionMargin'],
    [{ segmentBytes: 0 }, 'segmentBytes'],
    [{ maxEntryBytes: 0 }, 'maxEntryBytes'],
    [{ maxEntryBytes: 1.5 }, 'maxEntryBytes'],
    [{ maxEntryBytes: '8MiB' }, 'maxEntryBytes'],
    [{ maxEntryBytes: 1024 }, 'maxEntryBytes'],
    [{ maxEntryBytes: 2 ** 30 }, 'maxEntryBytes'],
    [{ consensus: { maxMessageBytes: 2 ** 30 } }, 'consensus.maxMessageBytes'],
  ])('refuses %j, naming %s', (bad, field) => {
    expect(configError({ ...base, ...bad }).message).toContain(field);
  });

  it('RaftMember.open refuses bad options before touching the disk', async () => {
    await expect(RaftMember.open({ ...base, logTailSize: 10 })).rejects.toBeInstanceOf(ConfigError);
  });
});
