import { decodeAggregateId, type Feed, type FeedSink } from '@timebox/core';
import type { Cluster, Redis } from 'ioredis';
import { guard } from './errors.js';
import { decodeEvents } from './event-codec.js';

/** Entries one read takes at most. The retention must be at least this (see `#mayHaveLost`). */
export const FEED_PAGE = 1_000;
/** How long one blocking read waits before it is issued again (keeps a dead socket noticed). */
const BLOCK_MS = 5_000;
const RETRY_MIN_MS = 50;
const RETRY_MAX_MS = 2_000;
/** How long the feed lease lasts without renewal, and how often a reader renews it. */
export const FEED_LEASE_MS = 60_000;
const LEASE_RENEW_MS = 20_000;

type StreamEntry = [id: string, fields: string[]];

/**
 * Reads the store's feed stream (`B:feed`, written by the append script: one entry per script
 * call and shard, holding the appends it made there)
 * with blocking XREADs on a connection of its own, and hands each entry's events to the sink.
 *
 * It remembers the ID of the last entry it read, so after a dropped connection it resumes right
 * after it: nothing appended meanwhile is lost as long as it is still in the stream. The stream
 * keeps the newest `retention` entries (trimmed from the head, never deleted in the middle), so
 * entries the reader had not read can only be gone when the stream's first entry is past the
 * reader's position; then the server's count of entries ever added, less those the reader has
 * accounted for and those still there, is how many it missed, and it reports the gap. Entries can
 * only be trimmed past the reader after a reconnect or when a read came back full (the reader is
 * `FEED_PAGE` or more entries behind), so only then does it ask.
 */
export class FeedReader implements Feed {
  readonly #connection: Redis | Cluster;
  readonly #key: string;
  readonly #sink: FeedSink;
  readonly #renewLease: () => Promise<string>;
  #leaseStart = '';
  #leaseTimer: NodeJS.Timeout | undefined;
  #lastId = '0-0';
  /** Entries added before the reader opened, plus those it read or reported missing since. */
  #accounted = 0;
  #closed = false;
  #loop: Promise<void> = Promise.resolve();

  private constructor(connection: Redis | Cluster, key: string, sink: FeedSink, renewLease: () => Promise<string>) {
    this.#connection = connection;
    this.#key = key;
    this.#sink = sink;
    this.#renewLease = renewLease;
  }

  /**
   * Takes the feed lease (through `renewLease`, on the store's own connection), opens a connection
   * of its own, finds the end of the stream, and starts reading from there.
   */
  static async open(client: Redis | Cluster, stream: string, sink: FeedSink, renewLease: () => Promise<string>): Promise<FeedReader> {
    const leaseStart = await guard('take the feed lease', renewLease);
    const connection = client.duplicate();
    connection.on('error', () => undefined);
    const reader = new FeedReader(connection, stream, sink, renewLease);
    reader.#leaseStart = leaseStart;
    try {
      const info = await guard('open the event feed', () => reader.#info());
      reader.#lastId = info?.lastGeneratedId ?? '0-0';
      reader.#accounted = info?.entriesAdded ?? 0;
    } catch (error) {
      connection.disconnect();
      throw error;
    }
    reader.#loop = reader.#read();
    reader.#leaseTimer = setInterval(() => void reader.#checkLease().catch(() => undefined), LEASE_RENEW_MS);
    reader.#leaseTimer.unref();
    return reader;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#leaseTimer);
    this.#connection.disconnect();
    await this.#loop;
  }

  async #read(): Promise<void> {
    let failedSince: number | undefined;
    let delay = RETRY_MIN_MS;
    while (!this.#closed) {
      try {
        if (failedSince !== undefined) {
          await this.#checkLease();
          await this.#checkForLoss(`the feed connection was down for ${Date.now() - failedSince} ms`);
        }
        const reply = await this.#connection.xread('COUNT', FEED_PAGE, 'BLOCK', BLOCK_MS, 'STREAMS', this.#key, this.#lastId);
        failedSince = undefined;
        delay = RETRY_MIN_MS;
        const entries = reply?.[0]?.[1] ?? [];
        for (const entry of entries) this.#deliver(entry);
        if (entries.length >= FEED_PAGE) await this.#checkForLoss(`the reader fell ${FEED_PAGE} or more feed entries behind`);
      } catch {
        if (this.#closed) return;
        failedSince ??= Date.now();
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
  }

  #deliver([entryId, fields]: StreamEntry): void {
    this.#lastId = entryId;
    this.#accounted++;
    // Fields, per append (an entry holds the appends one script call made to one shard): 'a'
    // encoded ID, 's' first sequence, then one 'e' per encoded event.
    let i = 0;
    while (i < fields.length) {
      const start = i;
      i += 4;
      const events: string[] = [];
      for (; i < fields.length && fields[i] === 'e'; i += 2) events.push(fields[i + 1] as string);
      try {
        if (fields[start] !== 'a' || fields[start + 2] !== 's') throw new Error(`unexpected field ${String(fields[start])}`);
        this.#sink.events(decodeAggregateId(fields[start + 1] as string), decodeEvents(events, Number(fields[start + 3])));
      } catch (error) {
        this.#sink.gap(`a feed entry (${entryId}) could not be read: ${error instanceof Error ? error.message : String(error)}`);
        return;
      }
    }
  }

  /** Renews the feed lease; reports a gap when it had lapsed since this reader last saw it. */
  async #checkLease(): Promise<void> {
    const start = await this.#renewLease();
    if (start === this.#leaseStart || this.#closed) return;
    this.#leaseStart = start;
    this.#sink.gap(
      'the feed lease lapsed (no subscriber renewed it for over a minute, e.g. this process was cut off from Redis), ' +
        'so appends made until it was taken again were not published; read the affected aggregates back',
    );
  }

  /** Reports a gap when entries after the reader's position were trimmed before it read them. */
  async #checkForLoss(circumstance: string): Promise<void> {
    const info = await this.#info();
    if (info === undefined || info.entriesAdded < this.#accounted) {
      // The stream was deleted (the store's keys were removed): start over from its new end.
      this.#accounted = info?.entriesAdded ?? 0;
      return;
    }
    if (info.length > 0 && compareIds(info.firstEntryId, this.#lastId) <= 0) return;
    const missed = info.entriesAdded - this.#accounted - info.length;
    if (missed <= 0) return;
    this.#accounted += missed;
    this.#sink.gap(
      `${circumstance}, and ${missed} feed entries (each one or more appends) after the last one it read (${this.#lastId}) ` +
        'were trimmed from the feed stream before it could read them; raise feedRetention, or read the affected aggregates back',
    );
  }

  async #info(): Promise<{ length: number; firstEntryId: string; lastGeneratedId: string; entriesAdded: number } | undefined> {
    let flat: unknown[];
    try {
      flat = (await this.#connection.xinfo('STREAM', this.#key)) as unknown[];
    } catch (error) {
      if (error instanceof Error && /no such key/i.test(error.message)) return undefined;
      throw error;
    }
    const field = (name: string): unknown => (flat.includes(name) ? flat[flat.indexOf(name) + 1] : undefined);
    const firstEntry = field('first-entry') as StreamEntry | null | undefined;
    const length = Number(field('length'));
    // entries-added is reported from Redis 7.0 (Valkey 7.2) on; on older servers gaps go unnoticed.
    const entriesAdded = field('entries-added');
    return {
      length,
      firstEntryId: firstEntry?.[0] ?? '0-0',
      lastGeneratedId: String(field('last-generated-id')),
      entriesAdded: entriesAdded === undefined ? this.#accounted + length : Number(entriesAdded),
    };
  }
}

/** Orders stream entry IDs (`ms-seq`). */
function compareIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bMs, bSeq] = b.split('-').map(BigInt) as [bigint, bigint];
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}
