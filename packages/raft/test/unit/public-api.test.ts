import { describe, expect, it } from 'vitest';
import * as root from '../../src/index.js';
import * as testing from '../../src/testing.js';

// The runtime names each entry point exports: a name added or removed here is a change to the
// published API, so it must be a deliberate one.
describe('public API', () => {
  it('the root exports the member, the local cluster, the backend, its limits and its errors', () => {
    expect(Object.keys(root).sort()).toEqual([
      'ConfChangeInProgressError',
      'InvalidConfChangeError',
      'InvalidTransferError',
      'LeadershipTransferFailedError',
      'LeadershipTransferInProgressError',
      'LocalRaftCluster',
      'MAX_AGGREGATE_ID_BYTES',
      'MAX_PROJECTION_NAME_BYTES',
      'MEMBER_DEFAULTS',
      'MIN_LOG_TAIL_SIZE',
      'MembershipChangeFailedError',
      'NotLeaderError',
      'RaftBackend',
      'RaftCommandRejectedError',
      'RaftEntryTooLargeError',
      'RaftLogUnnamedError',
      'RaftMember',
      'RaftNodeFailedError',
      'RaftUnavailableError',
      'StateLayoutError',
      'WalCorruptionError',
      'WalUnavailableError',
      'openRaftStore',
      'startLocalCluster',
    ]);
  });

  it('the testing subpath exports the fault injector and the port picker', () => {
    expect(Object.keys(testing).sort()).toEqual(['LinkFaults', 'freeLoopbackPort']);
  });
});
