import { isIPv6 } from 'node:net';
import { ConfigError } from '@timebox/core';

/** A TCP endpoint. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/**
 * Parses `"host:port"` (an IPv6 host in brackets: `"[::1]:7000"`). Port 0 is accepted, so a
 * listener can ask the OS for a free port. Anything else throws a `ConfigError` naming `field`.
 */
export function parseAddress(text: string, field = 'address'): HostPort {
  if (typeof text !== 'string') throw new ConfigError(field, 'must be a "host:port" string', text);
  let host: string;
  let portText: string;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0 || text[close + 1] !== ':') throw new ConfigError(field, 'must be "[ipv6]:port" when it starts with "["', text);
    host = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!isIPv6(host)) throw new ConfigError(field, 'must hold an IPv6 address inside the brackets', text);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw new ConfigError(field, 'must be "host:port" (no port given)', text);
    host = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (host.includes(':') && /^[0-9A-Fa-f:.]+$/.test(host))
      throw new ConfigError(field, 'must put an IPv6 host in brackets, as "[::1]:port"', text);
    if (host === '') throw new ConfigError(field, 'must name a host before the port', text);
    if (!/^[A-Za-z0-9._-]+$/.test(host))
      throw new ConfigError(field, 'must hold a host name or IP address (letters, digits, ".", "-", "_")', text);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) throw new ConfigError(field, 'must end in a decimal port number', text);
  const port = Number(portText);
  if (port > 65535) throw new ConfigError(field, 'must have a port from 0 to 65535', text);
  return { host, port };
}

/** The inverse of {@link parseAddress}: brackets an IPv6 host. */
export function formatAddress(address: HostPort): string {
  return isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
