import { createHash } from 'node:crypto';
import type { Backend, ListPage, ListRequest } from './backend.js';
import { InvalidArgumentError, InvalidCursorError } from './errors.js';
import { MAX_PAGE_SIZE } from './read-all.js';

/**
 * One page of a list query (`listAggregates`, `listAggregatesByStatus`, `listAggregatesByLabel`,
 * `listLabelValues` called with page options).
 */
export interface Page<T> {
  /** The page's items, in the list's order. */
  readonly items: T[];
  /**
   * Pass as `cursor` to get the next page; `undefined` when the list has no more items. A cursor
   * belongs to the store and the query it came from: any other store or query refuses it.
   */
  readonly cursor: string | undefined;
}

/** Asks a list query for one page. */
export interface PageOptions {
  /** The most items in the page, 1 to 10,000. Default 100. */
  readonly limit?: number | undefined;
  /** The previous page's `cursor`; from the start when absent. */
  readonly cursor?: string | undefined;
}

/** Options of the async iterators (`iterateAggregates` and the like). */
export interface IterateOptions {
  /** How many items each underlying page fetches, 1 to 10,000. Default 1,000. */
  readonly pageSize?: number | undefined;
}

const DEFAULT_PAGE_LIMIT = 100;
/** @internal The page size of the iterators and of the array forms built on pages. */
export const DEFAULT_ITERATION_PAGE = 1_000;
/** The cursor format this release writes; a newer one is refused with a hint to upgrade. */
const FORMAT = 'c1';

/**
 * @internal Names one list query of one store, so that a cursor carries where it came from: the
 * store's data (its log ID, else the backend's name) and the query with its arguments.
 */
export function queryTag(backend: Backend, query: readonly string[]): string {
  const store = backend.log === undefined ? `backend:${backend.name}` : `${backend.log.id}\u0000${backend.log.partitions}`;
  return digest([store, ...query].join('\u0000'), 16);
}

/** @internal Validates page options and turns them into a backend request. */
export function resolvePageOptions(tag: string, options: PageOptions): ListRequest {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('page options', 'must be an object', options);
  const limit = resolveLimit('limit', options.limit ?? DEFAULT_PAGE_LIMIT);
  const after = options.cursor === undefined ? undefined : decodeCursor(tag, options.cursor);
  return { limit, after };
}

/** @internal Validates the iterators' options; returns the page size. */
export function resolveIterateOptions(options: IterateOptions): number {
  if (options === null || typeof options !== 'object') throw new InvalidArgumentError('iterate options', 'must be an object', options);
  return resolveLimit('pageSize', options.pageSize ?? DEFAULT_ITERATION_PAGE);
}

function resolveLimit(name: string, limit: unknown): number {
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
    throw new InvalidArgumentError(name, `must be a whole number from 1 to ${MAX_PAGE_SIZE}`, limit);
  }
  return limit;
}

/** @internal Turns a backend's page into the user's page, wrapping its continuation in a cursor. */
export function toPage<T, U>(tag: string, page: ListPage<T>, map: (item: T) => U): Page<U> {
  return { items: page.items.map(map), cursor: page.next === undefined ? undefined : encodeCursor(tag, page.next) };
}

/**
 * @internal Every item of a paged list, page by page: the base of the iterators and of the array
 * forms. An item that stays in the list while it is read is yielded once; items added or removed
 * meanwhile may or may not be.
 */
export async function* eachItem<T>(
  limit: number,
  read: (request: ListRequest) => Promise<ListPage<T>>,
): AsyncGenerator<T, void, undefined> {
  let after: string | undefined;
  for (;;) {
    const page = await read({ limit, after });
    yield* page.items;
    if (page.next === undefined) return;
    after = page.next;
  }
}

/** @internal Collects every item of a paged list into one array (the array forms). */
export async function allItems<T>(read: (request: ListRequest) => Promise<ListPage<T>>): Promise<T[]> {
  const items: T[] = [];
  for await (const item of eachItem(DEFAULT_ITERATION_PAGE, read)) items.push(item);
  return items;
}

function digest(text: string, hexDigits: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, hexDigits);
}

/** A cursor: format, the query's tag, the backend's continuation (base64url) and a checksum. */
function encodeCursor(tag: string, next: string): string {
  const body = `${FORMAT}.${tag}.${Buffer.from(next, 'utf8').toString('base64url')}`;
  return `${body}.${digest(body, 8)}`;
}

function decodeCursor(tag: string, cursor: unknown): string {
  if (typeof cursor !== 'string') throw new InvalidCursorError('must be a cursor string from a previous page', cursor);
  const parts = cursor.split('.');
  if (parts.length === 4 && /^c\d+$/.test(parts[0] as string) && parts[0] !== FORMAT) {
    throw new InvalidCursorError(`comes from a newer release of Timebox (cursor format ${parts[0]}): upgrade @timebox/core`, cursor);
  }
  if (parts.length !== 4 || parts[0] !== FORMAT) throw new InvalidCursorError('is not a Timebox page cursor', cursor);
  const [, cursorTag, next, check] = parts as [string, string, string, string];
  if (digest(`${FORMAT}.${cursorTag}.${next}`, 8) !== check)
    throw new InvalidCursorError('was altered (its checksum does not match)', cursor);
  if (cursorTag !== tag) throw new InvalidCursorError('belongs to another query or another store', cursor);
  return Buffer.from(next, 'base64url').toString('utf8');
}
