import { connect, type Socket } from 'node:net';

/** The parsed postgres.js options a socket is opened from. */
interface SocketTarget {
  readonly host: readonly string[];
  readonly port: readonly number[];
  readonly path?: string | false | undefined;
}

/**
 * The `socket` option the backend gives postgres.js: the plain TCP (or Unix) socket the driver
 * would open itself, except that its `error` and `close` events reach the driver together, in
 * the event loop's next check phase (`setImmediate`), with those of every other socket that
 * closed meanwhile.
 *
 * This works around two faults of postgres.js 3.4.9 that left calls unsettled forever when the
 * server ended sessions under load (`pg_terminate_backend`, a restart):
 * - On a socket error the driver fails the calls its connection holds, but takes the connection
 *   out of use only on the `close` event, which Node emits a turn of the loop later. A call handed
 *   to the connection in between (a caller retrying at once, say) is kept, and after the
 *   connection reconnects it is taken for the reply to the next statement: it never settles, or
 *   settles with another statement's result. With both events delivered together, every call
 *   the connection holds when it closes is failed, and later calls reconnect it.
 * - On `close` the driver cancels a pending write (its writes go out in a `setImmediate`) but
 *   keeps the cancelled handle, so that connection never sends a short message again: the next
 *   startup stalls until `connect_timeout`, on every reconnect. Delivered in a `setImmediate` of
 *   our own, the close comes after the driver's writes already scheduled, and delivering every
 *   held close at once means no failure reported by one lets a retry schedule a write on
 *   another connection that is about to be closed.
 * (Seen in faults.test.ts: with concurrent appends batched, calls that never returned, in about
 * half the runs at 8 or 12 connections; none in 30 runs with this socket.)
 *
 * Over TLS the driver wraps this socket in a TLS socket of its own, which this does not cover.
 * Undefined where the driver must open the socket itself: the caller gave a `socket` option, or
 * several hosts (the driver tries them in turn).
 */
export function socketOption(
  url: string | undefined,
  options: { readonly socket?: unknown; readonly host?: unknown } | undefined,
): ((target: SocketTarget) => Socket) | undefined {
  if (options?.socket !== undefined) return undefined;
  const given = options?.host;
  const hostList = typeof given === 'string' ? given : (/^[^:]+:\/\/(?:[^@/]*@)?([^/?]*)/.exec(url ?? '')?.[1] ?? '');
  const hosts = Array.isArray(given) ? given.length : hostList.split(',').length;
  if (hosts > 1) return undefined;
  return openSocket;
}

function openSocket(target: SocketTarget): Socket {
  const host = target.host[0] ?? 'localhost';
  // The driver, given a socket, writes to it at once: a socket still connecting buffers the writes.
  const socket = target.path ? connect(target.path) : connect(target.port[0] ?? 5432, host);
  // The driver names the server after this when it upgrades the socket to TLS.
  Object.assign(socket, { host });
  holdEndEvents(socket);
  return socket;
}

/** Closed sockets whose `error` and `close` the driver has not been told of yet. */
const heldCloses: (() => void)[] = [];
let deliveryScheduled = false;

function holdEndEvents(socket: Socket): void {
  const emit = socket.emit.bind(socket) as (event: string | symbol, ...args: unknown[]) => boolean;
  let error: { readonly value: unknown } | undefined;
  const held = (event: string | symbol, ...args: unknown[]): boolean => {
    if (event === 'error') {
      error ??= { value: args[0] };
      return true;
    }
    if (event === 'close') {
      heldCloses.push(() => {
        if (error !== undefined) emit('error', error.value);
        emit('close', ...args);
      });
      scheduleDelivery();
      return true;
    }
    return emit(event, ...args);
  };
  socket.emit = held as Socket['emit'];
}

function scheduleDelivery(): void {
  if (deliveryScheduled) return;
  deliveryScheduled = true;
  setImmediate(() => {
    deliveryScheduled = false;
    for (const deliver of heldCloses.splice(0)) deliver();
  });
}
