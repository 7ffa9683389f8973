import { ConfigError } from '@timebox/core';
import { describe, expect, it } from 'vitest';
import { formatAddress, parseAddress } from '../../src/transport/address.js';

describe('parseAddress', { timeout: 60_000 }, () => {
  it('reads host:port, IPv6 in brackets and port 0', () => {
    expect(parseAddress('127.0.0.1:7000')).toEqual({ host: '127.0.0.1', port: 7000 });
    expect(parseAddress('node-1.example.com:65535')).toEqual({ host: 'node-1.example.com', port: 65535 });
    expect(parseAddress('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseAddress('[fe80::1:2]:80')).toEqual({ host: 'fe80::1:2', port: 80 });
  });

  it('round-trips through formatAddress', () => {
    for (const text of ['127.0.0.1:1', '[::1]:7000', 'localhost:0']) expect(formatAddress(parseAddress(text))).toBe(text);
  });

  it.each([
    ['', 'no port'],
    ['localhost', 'no port'],
    [':7000', 'host'],
    ['::1:7000', 'brackets'],
    ['[::1]7000', '"[ipv6]:port"'],
    ['[not-ipv6]:1', 'IPv6'],
    ['host:', 'port'],
    ['host:70000', '0 to 65535'],
    ['host:-1', 'port'],
    ['host:12a', 'port'],
    ['ho st:1', 'host name'],
    ['http://x:1', 'host name'],
  ])('refuses %j with a ConfigError naming the field', (text, rule) => {
    let caught: unknown;
    try {
      parseAddress(text, 'listen');
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).field).toBe('listen');
    expect((caught as Error).message).toContain('listen');
    expect((caught as Error).message).toContain(rule);
  });

  it('refuses a non-string', () => {
    expect(() => parseAddress(7000 as unknown as string)).toThrow(ConfigError);
  });
});
