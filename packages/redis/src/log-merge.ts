import type { LogEntry, LogPage } from '@timebox/core';
import { decodeAggregateId } from '@timebox/core';
import { decodeEvent, elementPosition } from './event-codec.js';
import { mergeSorted } from './merge.js';
import type { ReadLogReply } from './scripts.js';

/** Reads up to `count` events of `partition`'s log after position `after` (one script call). */
export type PartitionRead = (partition: number, after: number, count: number) => Promise<ReadLogReply>;

/**
 * How many rounds of reads one page may take. A round reads the partitions whose events were all
 * used; a page that is still short after this many returns what it has (the contract allows a
 * short page that is not the end).
 */
const MAX_ROUNDS = 6;

/** What the merge knows about one partition. */
interface Partition {
  /** Events read and not yet placed in the page, from `taken` on, in position order. */
  buffer: LogEntry[];
  taken: number;
  /** The position the buffer's read started after. */
  readFrom: number;
  /** The position the partition has been read up to: no unread event of it is at or below. */
  readTo: number;
  /** The partition's log held nothing beyond `readTo` when it was read. */
  ended: boolean;
}

/**
 * One page of a sharded store's log: the merge, by position, of its partitions' logs. Positions
 * are comparable across partitions (clock-based, see `APPEND`), so the merge follows commit order
 * as far as the masters' clocks agree, and it is the same whatever the page size: an event is
 * placed only once every partition not at its end has been read at least up to its position (the
 * frontier), so no event with a lower position can still turn up. Each partition is first asked
 * for an even share of the page; rounds then read more from the partitions whose events were all
 * placed, until the page is full, every partition is at its end, or `MAX_ROUNDS` were spent.
 * Each partition's position in the page's `after` is where its placed events end.
 */
export async function readMerged(after: readonly number[], limit: number, read: PartitionRead): Promise<LogPage> {
  const partitions: Partition[] = after.map((position) => ({ buffer: [], taken: 0, readFrom: position, readTo: position, ended: false }));
  const page: LogEntry[] = [];
  for (let round = 0; round < MAX_ROUNDS && page.length < limit; round++) {
    const drained = partitions.flatMap((partition, index) =>
      !partition.ended && partition.taken === partition.buffer.length ? [index] : [],
    );
    if (drained.length === 0) break;
    const count = Math.max(1, Math.ceil((limit - page.length) / drained.length));
    const replies = await Promise.all(drained.map((index) => read(index, (partitions[index] as Partition).readTo, count)));
    drained.forEach((index, i) => {
      const [readTo, reachedEnd, groups] = replies[i] as ReadLogReply;
      const partition = partitions[index] as Partition;
      partition.readFrom = partition.readTo;
      partition.buffer = toEntries(groups);
      partition.taken = 0;
      partition.readTo = readTo;
      partition.ended = reachedEnd === 1;
    });
    const frontier = Math.min(...partitions.map((partition) => (partition.ended ? Infinity : partition.readTo)));
    const ready = partitions.map((partition) => {
      let end = partition.taken;
      while (end < partition.buffer.length && (partition.buffer[end] as LogEntry).event.position <= frontier) end++;
      return partition.buffer.slice(partition.taken, end).map((entry) => ({ entry, partition }));
    });
    for (const { entry, partition } of mergeSorted(ready, (a, b) => a.entry.event.position - b.entry.event.position, limit - page.length)) {
      page.push(entry);
      partition.taken++;
    }
  }
  let end = true;
  const positions = partitions.map((partition) => {
    if (partition.taken === partition.buffer.length) {
      if (!partition.ended) end = false;
      return partition.readTo;
    }
    end = false;
    return partition.taken > 0 ? (partition.buffer[partition.taken - 1] as LogEntry).event.position : partition.readFrom;
  });
  return { entries: page, after: positions, end };
}

/** The events of one partition's page, in its log order. */
export function toEntries(groups: ReadLogReply[2]): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const [encodedId, sequenceOffset, ...elements] of groups) {
    const id = decodeAggregateId(encodedId);
    for (const element of elements) entries.push({ id, event: decodeEvent(element, elementPosition(element) + sequenceOffset) });
  }
  return entries;
}
