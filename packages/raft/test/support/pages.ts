import type { ListPage, ListRequest } from '@timebox/core';

/** Every item of a paged state query, read page by page (the tests' shorthand for a whole list). */
export function everything<T>(read: (request: ListRequest) => ListPage<T>): T[] {
  const items: T[] = [];
  let after: string | undefined;
  do {
    const page = read({ limit: 10_000, after });
    items.push(...page.items);
    after = page.next;
  } while (after !== undefined);
  return items;
}
