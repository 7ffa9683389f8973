import type { ListPage, ListRequest } from '@timebox/core';

/**
 * The most items one synchronous read of a list page takes from LMDB. A page may ask for up to
 * 10,000; read whole, such a page decodes for tens of milliseconds on the member's event loop,
 * which also sends the heartbeats (SPEC section 16: no read holds it more than 20 ms). At 500 a
 * read is a millisecond or two.
 */
export const PAGE_CHUNK = 500;

/** Lets timers and I/O run (setImmediate runs after them). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * One page of `request.limit` items, read as consecutive chunks of at most `PAGE_CHUNK` through
 * `read` (each its own read transaction), after `pause` before each (default: a yield to the
 * event loop). Chaining the chunks' continuations gives what chaining pages gives: an item that
 * stays in the list is returned once, wherever the chunk boundaries fall. The pause before the
 * first chunk also keeps an iteration over local reads (no network round trip per page) from
 * running in microtasks only.
 */
export async function pageInChunks<T>(
  request: ListRequest,
  read: (chunk: ListRequest) => ListPage<T>,
  pause: () => Promise<void> = yieldToEventLoop,
): Promise<ListPage<T>> {
  const items: T[] = [];
  let after = request.after;
  for (;;) {
    await pause();
    const chunk = read({ limit: Math.min(PAGE_CHUNK, request.limit - items.length), after });
    for (const item of chunk.items) items.push(item);
    if (chunk.next === undefined) return { items };
    if (items.length >= request.limit) return { items, next: chunk.next };
    after = chunk.next;
  }
}
