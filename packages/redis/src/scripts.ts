import { createHash } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';

// The same escaping as core's `encodeIdPart`, for keys a script derives from stored values (the
// previous status or label value), which the client cannot know before the script runs.
const ESCAPE = `
local ESCAPES = { ['%'] = '%25', [':'] = '%3A', ['{'] = '%7B', ['}'] = '%7D' }
local function esc(s) return (string.gsub(s, '[%%:{}]', ESCAPES)) end
`;

/**
 * Appends one or more batches, each atomically checked against its aggregate's next sequence;
 * several appends travel in one call when they are issued together (see `AppendBatcher`).
 *
 * KEYS: the listing index (`B:ids`), the feed stream (`B:feed`), the feed lease (`B:feed-lease`), then per append: meta, events, and the declared index keys —
 * the new status's set (for a non-empty status), and per label its value set and (for a
 * non-empty value) its holder set.
 * ARGV: the number of appends, the feed's retention (entries kept; 0 = no feed), then per append: its key count, its argument count, and its
 * arguments: expected sequence, the count of index arguments (0 without an index update), the
 * index arguments (has status '1'/'0', status, status time, label count, label/value pairs),
 * then the encoded events. The store's base and each encoded ID are read off the key names.
 * While the feed lease exists (some process subscribes), each successful non-empty append also
 * adds one feed entry (`a` encoded ID, `s` first sequence, one `e` per encoded event), trimmed to
 * about the retention, for subscribers in any process.
 * Returns one result per append: 0 on success, or {actual next sequence, sequence of the first
 * returned event, events from the expected sequence on}.
 */
const APPEND = `${ESCAPE}
local ids, feed = KEYS[1], KEYS[2]
local base = string.sub(ids, 1, #ids - 4)
local retention = tonumber(ARGV[2])
if retention > 0 and redis.call('EXISTS', KEYS[3]) == 0 then retention = 0 end

local function appendOne(k, a, last)
  local meta, events = KEYS[k], KEYS[k + 1]
  local expected = tonumber(ARGV[a])
  local nextSeq = tonumber(redis.call('HGET', meta, 'n') or '0')
  if nextSeq ~= expected then
    if expected >= nextSeq then return {nextSeq, expected, {}} end
    local first = tonumber(redis.call('HGET', meta, 'f') or '0')
    local from = math.max(expected, first)
    return {nextSeq, from, redis.call('LRANGE', events, from - first, -1)}
  end
  local indexCount = tonumber(ARGV[a + 1])
  local firstEvent = a + 2 + indexCount
  if firstEvent > last then return 0 end
  -- unpack is bounded by the Lua stack, so push large batches in slices.
  for i = firstEvent, last, 1000 do
    redis.call('RPUSH', events, unpack(ARGV, i, math.min(i + 999, last)))
  end
  redis.call('HINCRBY', meta, 'n', last - firstEvent + 1)
  local id = string.sub(meta, #base + 4)
  if retention > 0 then
    local entry = {'a', id, 's', ARGV[a]}
    for i = firstEvent, last do
      entry[#entry + 1] = 'e'
      entry[#entry + 1] = ARGV[i]
    end
    redis.call('XADD', feed, 'MAXLEN', '~', retention, '*', unpack(entry))
  end
  if nextSeq ~= 0 and indexCount == 0 then return 0 end
  if nextSeq == 0 then redis.call('ZADD', ids, 0, id) end
  if indexCount == 0 then return 0 end
  local i = a + 2
  k = k + 2
  if ARGV[i] == '1' then
    local status = ARGV[i + 1]
    local old = redis.call('HGET', meta, 'st') or ''
    if old ~= status then
      if old ~= '' then redis.call('ZREM', base .. ':s:' .. esc(old), id) end
      if status == '' then
        redis.call('HDEL', meta, 'st')
      else
        redis.call('HSET', meta, 'st', status)
        redis.call('ZADD', KEYS[k], ARGV[i + 2], id)
      end
    end
    if status ~= '' then k = k + 1 end
  end
  local labelCount = tonumber(ARGV[i + 3])
  for j = 0, labelCount - 1 do
    local name, value = ARGV[i + 4 + 2 * j], ARGV[i + 5 + 2 * j]
    local valuesKey = KEYS[k]
    local holdersKey = KEYS[k + 1]
    k = k + 1
    if value ~= '' then k = k + 1 end
    local field = 'l:' .. name
    local old = redis.call('HGET', meta, field)
    if old ~= value and not (old == false and value == '') then
      if old then
        local oldHolders = base .. ':lh:' .. esc(name) .. ':' .. esc(old)
        redis.call('SREM', oldHolders, id)
        if redis.call('SCARD', oldHolders) == 0 then redis.call('SREM', valuesKey, old) end
      end
      if value == '' then
        redis.call('HDEL', meta, field)
      else
        redis.call('HSET', meta, field, value)
        redis.call('SADD', holdersKey, id)
        redis.call('SADD', valuesKey, value)
      end
    end
  end
  return 0
end

local results = {}
local k, a = 4, 3
for n = 1, tonumber(ARGV[1]) do
  local keyCount, argCount = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  a = a + 2
  results[n] = appendOne(k, a, a + argCount - 1)
  k = k + keyCount
  a = a + argCount
end
return results
`;

/** KEYS: meta, events. ARGV: from sequence. Returns {sequence of the first event, events}. */
const LOAD_EVENTS = `
local first = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local from = math.max(tonumber(ARGV[1]), first)
return {from, redis.call('LRANGE', KEYS[2], from - first, -1)}
`;

/**
 * KEYS: meta, events. Returns {snapshot data or nil, snapshot sequence, sequence of the first
 * event, events stored from the snapshot on}.
 */
const LOAD_SNAPSHOT = `
local m = redis.call('HMGET', KEYS[1], 'sd', 'ss', 'f')
local covered = tonumber(m[2] or '0')
local first = tonumber(m[3] or '0')
local from = math.max(covered, first)
return {m[1], covered, from, redis.call('LRANGE', KEYS[2], from - first, -1)}
`;

/**
 * KEYS: meta, events, ids. ARGV: encoded id, data, sequence, trim ('1'/'0').
 * Returns {1} when saved, {0} when an equal or newer snapshot is stored, {2, next sequence} when
 * the sequence is beyond the aggregate's next sequence.
 */
const SAVE_SNAPSHOT = `
local meta, events, ids = KEYS[1], KEYS[2], KEYS[3]
local sequence = tonumber(ARGV[3])
local m = redis.call('HMGET', meta, 'n', 'ss', 'f')
local nextSeq = tonumber(m[1] or '0')
if sequence > nextSeq then return {2, nextSeq} end
if m[2] and tonumber(m[2]) >= sequence then return {0} end
redis.call('HSET', meta, 'sd', ARGV[2], 'ss', ARGV[3])
redis.call('ZADD', ids, 0, ARGV[1])
if ARGV[4] == '1' then
  local first = tonumber(m[3] or '0')
  if sequence > first then
    redis.call('LTRIM', events, sequence - first, -1)
    redis.call('HSET', meta, 'f', ARGV[3])
  end
end
return {1}
`;

/**
 * KEYS: meta, events, ids, archive stream. ARGV: base, encoded id.
 * Moves the aggregate into one stream entry and deletes its live keys and index entries.
 * Returns the entry ID, or nil when the aggregate does not exist.
 */
const ARCHIVE = `${ESCAPE}
local meta, events, ids, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local base, id = ARGV[1], ARGV[2]
local flat = redis.call('HGETALL', meta)
if #flat == 0 then return false end
local fields = {}
for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
if fields['st'] then redis.call('ZREM', base .. ':s:' .. esc(fields['st']), id) end
for field, value in pairs(fields) do
  if string.sub(field, 1, 2) == 'l:' then
    local name = string.sub(field, 3)
    local holders = base .. ':lh:' .. esc(name) .. ':' .. esc(value)
    redis.call('SREM', holders, id)
    if redis.call('SCARD', holders) == 0 then redis.call('SREM', base .. ':lv:' .. esc(name), value) end
  end
end
local entry = {'id', id, 'first', fields['f'] or '0', 'events', cjson.encode(redis.call('LRANGE', events, 0, -1))}
if fields['sd'] then
  table.insert(entry, 'ss'); table.insert(entry, fields['ss'])
  table.insert(entry, 'sd'); table.insert(entry, fields['sd'])
end
local entryId = redis.call('XADD', stream, '*', unpack(entry))
redis.call('DEL', meta, events)
redis.call('ZREM', ids, id)
return entryId
`;

/** KEYS: archive stream. ARGV: group, entry ID. Acknowledges and deletes one entry. */
const ACK = `
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return redis.call('XDEL', KEYS[1], ARGV[2])
`;

/**
 * KEYS: archive stream. ARGV: group, consumer, entry ID.
 * Renews a consumer's hold on an entry: resets the entry's idle time, so XAUTOCLAIM leaves it
 * alone, but only while the entry is still pending with this consumer; one that another consumer
 * already reclaimed is never taken back. Returns 1 when renewed, 0 when the hold is lost.
 */
const RENEW = `
local stream, group, consumer, entryId = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local pending = redis.call('XPENDING', stream, group, entryId, entryId, 1, consumer)
if #pending == 0 then return 0 end
redis.call('XCLAIM', stream, group, consumer, 0, entryId, 'JUSTID')
return 1
`;

/**
 * KEYS: feed lease. ARGV: time to live in ms. Creates the lease (holding the server time it was
 * created at) or extends it; returns that creation time, so a subscriber can tell that the lease
 * lapsed and was created anew since it last looked, which means appends went unpublished.
 */
const FEED_LEASE = `
local start = redis.call('GET', KEYS[1])
if start then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  return start
end
local now = redis.call('TIME')
start = now[1] .. string.format('%06d', tonumber(now[2]))
redis.call('SET', KEYS[1], start, 'PX', ARGV[1])
return start
`;

type Reply = unknown;

/** One script: its source and the SHA1 the server caches it under. */
class Script {
  readonly sha: string;
  constructor(readonly lua: string) {
    this.sha = createHash('sha1').update(lua).digest('hex');
  }
}

const SCRIPTS = {
  append: new Script(APPEND),
  loadEvents: new Script(LOAD_EVENTS),
  loadSnapshot: new Script(LOAD_SNAPSHOT),
  saveSnapshot: new Script(SAVE_SNAPSHOT),
  archive: new Script(ARCHIVE),
  ack: new Script(ACK),
  renew: new Script(RENEW),
  feedLease: new Script(FEED_LEASE),
};

/** The append script's reply: 0, or a conflict. */
export type AppendReply = 0 | [actualSequence: number, firstSequence: number, events: string[]];

/**
 * The backend's Lua scripts, run by EVALSHA; when the server answers NOSCRIPT (it restarted, or
 * its script cache was flushed) the call is repeated once as EVAL, which caches the script again.
 *
 * ioredis's `defineCommand` does the same, but measured 10–15% slower per call (it wraps every
 * command in a custom class with per-call closures), and it would add methods to a client the
 * caller lent us.
 */
export class Scripts {
  readonly #client: Redis | Cluster;

  constructor(client: Redis | Cluster) {
    this.#client = client;
  }

  /** Runs `append` with keys and arguments already laid out as the script expects. */
  append(keys: readonly string[], args: readonly (string | number)[]): Promise<AppendReply[]> {
    return this.#run(SCRIPTS.append, keys, args) as Promise<AppendReply[]>;
  }

  loadEvents(meta: string, events: string, fromSequence: number): Promise<[number, string[]]> {
    return this.#run(SCRIPTS.loadEvents, [meta, events], [fromSequence]) as Promise<[number, string[]]>;
  }

  loadSnapshot(meta: string, events: string): Promise<[string | null, number, number, string[]]> {
    return this.#run(SCRIPTS.loadSnapshot, [meta, events], []) as Promise<[string | null, number, number, string[]]>;
  }

  saveSnapshot(keys: readonly [string, string, string], args: readonly [string, string, number, string]): Promise<[0 | 1] | [2, number]> {
    return this.#run(SCRIPTS.saveSnapshot, keys, args) as Promise<[0 | 1] | [2, number]>;
  }

  archive(keys: readonly [string, string, string, string], base: string, encodedId: string): Promise<string | null> {
    return this.#run(SCRIPTS.archive, keys, [base, encodedId]) as Promise<string | null>;
  }

  ack(stream: string, group: string, entryId: string): Promise<number> {
    return this.#run(SCRIPTS.ack, [stream], [group, entryId]) as Promise<number>;
  }

  renew(stream: string, group: string, consumer: string, entryId: string): Promise<0 | 1> {
    return this.#run(SCRIPTS.renew, [stream], [group, consumer, entryId]) as Promise<0 | 1>;
  }

  /** Takes or extends the feed lease; resolves with the lease's creation time (see FEED_LEASE). */
  feedLease(lease: string, ttlMs: number): Promise<string> {
    return this.#run(SCRIPTS.feedLease, [lease], [ttlMs]) as Promise<string>;
  }

  async #run(script: Script, keys: readonly string[], args: readonly (string | number)[]): Promise<Reply> {
    try {
      return await this.#client.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      return this.#client.eval(script.lua, keys.length, ...keys, ...args);
    }
  }
}
