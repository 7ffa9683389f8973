import { ConfigError } from '@timebox/core';
import { describe, expect, it } from 'vitest';
import { TcpTransport } from '../../src/transport/tcp-transport.js';
import type { TcpTransportOptions } from '../../src/transport/options.js';
import { TransportError } from '../../src/transport/errors.js';

const base: TcpTransportOptions = {
  localId: 'a',
  listen: '127.0.0.1:0',
  peers: new Map([['b', '127.0.0.1:7001']]),
  clusterId: 'c',
  events: { onMessage: () => {} },
};

function configError(options: Partial<Record<keyof TcpTransportOptions, unknown>>): ConfigError {
  try {
    new TcpTransport({ ...base, ...options } as TcpTransportOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('TcpTransport options', { timeout: 60_000 }, () => {
  it.each([
    [{ localId: '' }, 'localId'],
    [{ clusterId: 42 }, 'clusterId'],
    [{ listen: 'nowhere' }, 'listen'],
    [{ peers: { b: '127.0.0.1:1' } }, 'peers'],
    [{ peers: new Map([['b', 'no-port']]) }, 'peers["b"]'],
    [{ events: {} }, 'events'],
    [{ faults: {} }, 'faults'],
    [{ maxFrameBytes: 10 }, 'maxFrameBytes'],
    [{ maxFrameBytes: 2 ** 33 }, 'maxFrameBytes'],
    [{ maxQueueBytes: 0 }, 'maxQueueBytes'],
    [{ reconnect: { initialMs: 0, maxMs: 10 } }, 'reconnect.initialMs'],
    [{ reconnect: { initialMs: 100, maxMs: 10 } }, 'reconnect.maxMs'],
    [{ chunkBytes: 1.5 }, 'chunkBytes'],
    [{ maxFrameBytes: 4096, chunkBytes: 4096 }, 'chunkBytes'],
    [{ unreachableIntervalMs: -1 }, 'unreachableIntervalMs'],
    [{ onError: 'log' }, 'onError'],
  ])('%j is refused, naming %s', (options, field) => {
    const error = configError(options);
    expect(error.field).toBe(field);
    expect(error.message).toContain(field);
  });

  it('ignores a peer entry for the local node and accepts IPv6 addresses', () => {
    expect(
      () =>
        new TcpTransport({
          ...base,
          peers: new Map([
            ['a', '[::1]:1'],
            ['b', '[::1]:2'],
          ]),
        }),
    ).not.toThrow();
  });

  it('setPeer refuses a bad address with a ConfigError', () => {
    const transport = new TcpTransport(base);
    expect(() => transport.setPeer('b', 'bad')).toThrow(ConfigError);
  });

  it('address before start, and start twice, are errors', async () => {
    const transport = new TcpTransport(base);
    expect(() => transport.address).toThrow(TransportError);
    await transport.start();
    try {
      expect(transport.address).toMatch(/^127\.0\.0\.1:\d+$/);
      await expect(transport.start()).rejects.toThrow(/start called twice/);
    } finally {
      await transport.close();
    }
  });

  it('start rejects when the port is taken', async () => {
    const first = new TcpTransport(base);
    await first.start();
    try {
      const second = new TcpTransport({ ...base, listen: first.address });
      await expect(second.start()).rejects.toThrow(/EADDRINUSE/);
      await second.close();
    } finally {
      await first.close();
    }
  });
});
