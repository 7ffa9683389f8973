import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { ConfigError, createStore } from '@timebox/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RaftMemberOptions, RaftServerAddress } from '../../src/options.js';
import { RaftMember } from '../../src/raft-member.js';
import { selfSignedCertificate, TestCa } from '../support/certificates.js';
import { FAST, freePort, waitFor } from '../member/support.js';

describe('a raft cluster over mutual TLS', { timeout: 90_000 }, () => {
  let ca: TestCa;
  let dir: string;

  beforeAll(async () => {
    ca = await TestCa.create('cluster-ca');
    dir = await mkdtemp(join(tmpdir(), 'timebox-raft-tls-'));
  });
  afterAll(async () => {
    await ca?.remove();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('three members with their own certificates elect a leader and commit writes; a rogue peer changes nothing', async () => {
    const ids = ['n1', 'n2', 'n3'];
    const servers: RaftServerAddress[] = [];
    for (const id of ids) servers.push({ id, address: `127.0.0.1:${await freePort()}` });
    const options: RaftMemberOptions[] = [];
    for (const server of servers) {
      const files = await ca.issue(server.id);
      options.push({
        ...FAST,
        localId: server.id,
        address: server.address,
        dataDir: join(dir, server.id),
        servers,
        tls: { key: files.keyFile, cert: files.certFile, ca: ca.certFile },
      });
    }
    // The transport reports through process warnings by default: collect the refusals.
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => void warnings.push(warning);
    process.on('warning', onWarning);
    const members: RaftMember[] = [];
    try {
      for (const memberOptions of options) members.push(await RaftMember.open(memberOptions));
      const stores = members.map((member) => createStore(member.backend()));
      await Promise.all(stores.map((store) => store.ready()));
      const leader = members.findIndex((member) => member.status().role === 'leader');
      const follower = (leader + 1) % 3;
      await stores[follower]!.appendEvents(['tls'], 0, [{ type: 'T', data: { n: 1 } }]);
      await stores[leader]!.appendEvents(['tls'], 1, [{ type: 'T', data: { n: 2 } }]);
      for (const store of stores) expect((await store.getEvents(['tls'])).map((event) => event.payload)).toEqual([{ n: 1 }, { n: 2 }]);

      // A peer with a self-signed certificate dials the leader and sends bytes; it is refused.
      const rogue = await selfSignedCertificate(ca.dir, 'rogue');
      const port = Number(servers[leader]!.address.split(':')[1]);
      await new Promise<void>((resolve) => {
        const socket = tlsConnect({
          host: '127.0.0.1',
          port,
          key: rogue.key,
          cert: rogue.cert,
          ca: ca.cert,
          checkServerIdentity: () => undefined,
        });
        socket.on('secureConnect', () => socket.write(Buffer.alloc(64, 1)));
        socket.on('error', () => {});
        socket.on('close', () => resolve());
      });
      await waitFor('the refusal to be reported', () =>
        warnings.some((warning) =>
          /refused a TLS connection from .*: its certificate is not signed by the cluster CA/.test(warning.message),
        ),
      );
      // The cluster still commits, through every member.
      for (const [i, store] of stores.entries()) await store.appendEvents(['tls'], 2 + i, [{ type: 'T', data: { n: 3 + i } }]);
      for (const store of stores) expect(await store.getEvents(['tls'])).toHaveLength(5);
      await Promise.all(stores.map((store) => store.close()));
    } finally {
      process.off('warning', onWarning);
      await Promise.all(members.map((member) => member.close()));
    }
  });

  it('a member whose certificate file is missing fails to open with ConfigError, creating nothing', async () => {
    const files = await ca.issue('n9');
    const dataDir = join(dir, 'never');
    const missing = join(ca.dir, 'gone.crt');
    const opening = RaftMember.open({
      localId: 'n9',
      address: `127.0.0.1:${await freePort()}`,
      dataDir,
      tls: { key: files.keyFile, cert: missing, ca: ca.certFile },
    });
    await expect(opening).rejects.toBeInstanceOf(ConfigError);
    await expect(opening).rejects.toMatchObject({ field: 'tls.cert' });
    await expect(opening).rejects.toThrow(/tls\.cert names a file that cannot be read \(ENOENT\)/);
    await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('with bindMemberId, a member whose certificate names another member fails to open with ConfigError naming tls.cert, creating nothing', async () => {
    const files = await ca.issue('n8');
    const dataDir = join(dir, 'never-n7');
    const opening = RaftMember.open({
      localId: 'n7',
      address: `127.0.0.1:${await freePort()}`,
      dataDir,
      tls: { key: files.keyFile, cert: files.certFile, ca: ca.certFile, bindMemberId: true },
    });
    await expect(opening).rejects.toBeInstanceOf(ConfigError);
    await expect(opening).rejects.toMatchObject({ field: 'tls.cert' });
    await expect(opening).rejects.toThrow(/names member "n8" as its subject's CN, but this member's localId is "n7"/);
    await expect(stat(dataDir)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
