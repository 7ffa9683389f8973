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
 * several appends travel in one call when they are issued together (see `AppendBatcher`), in
 * groups, one per slot (shard) the call touches.
 *
 * The keys, per group: the slot's listing index (`B:ids`), feed stream (`B:feed`), feed lease
 * (`B:feed-lease`), and log partition's position counter and log stream, then per append of the
 * group: meta, events, and the declared index keys — the new status's set (for a non-empty
 * status), and per label its value set and (for a non-empty value) its holder set. The first
 * group's keys are KEYS, which a cluster routes by; the other groups' (other slots of the same
 * node, sent only as `appendAcross`, whose flag allows it) follow in ARGV, since a cluster refuses
 * declared keys of several slots.
 * ARGV: the number of groups, the feed's retention (entries kept; 0 = no feed), '1' for clock
 * positions (a sharded store) else '0', the number of keys in ARGV and those keys, then per group
 * its number of appends and per append:
 * its key count, its argument count, and its arguments: expected sequence, the count of index
 * arguments (0 without an index update), the index arguments (has status '1'/'0', status, status
 * time as a sort key (`statusKey`), label count, label/value pairs), then the encoded events. The store's base and each
 * encoded ID are read off the key names.
 *
 * A successful non-empty append takes the next `count` positions of its partition with one
 * `INCRBY` (so an append's positions are consecutive and, scripts running one at a time, every
 * append's positions are above those of every append that committed before it). With clock
 * positions it takes them after the greater of the counter and the server's clock in
 * microseconds (`TIME`, read once per call): still consecutive and above every earlier append's in the partition, and
 * also comparable across the partitions of a sharded store (whose masters' clocks agree as well as
 * they are synchronized), so merging them gives one order that follows commit order. It adds one log
 * entry whose ID is its last position, and stores each event as `<position>:<encoded event>`.
 * The log entry goes first: should it fail, only the counter moved (a gap), nothing half-stored.
 * While the feed lease exists (some process subscribes), the group's successful appends are
 * published after the group's last append, as one feed entry (per append `a` encoded ID, `s` first
 * sequence, one `e` per stored element; a large group or append in several entries), trimmed to
 * about the retention. (A call that fails halfway, say on a key of the wrong type, leaves the
 * appends before the failure stored, as it always did, and now also unpublished.)
 * Returns one result per append, in the order of the arguments: its first position (0 for an empty batch), or {actual next
 * sequence, sequence of the first returned event, events from the expected sequence on}.
 */
const APPEND = `${ESCAPE}
-- The call's keys: those declared (the first group's), then the other groups' from ARGV.
local K = KEYS
local undeclared = tonumber(ARGV[4])
if undeclared > 0 then
  K = {}
  for i = 1, #KEYS do K[i] = KEYS[i] end
  for i = 1, undeclared do K[#KEYS + i] = ARGV[4 + i] end
end
-- A slot that this node does not serve (the slot map changed, or a slot is migrating) fails the
-- call here, before anything is written, rather than halfway. A group's keys share its slot, so
-- touching the first key of each undeclared group is enough.
if undeclared > 0 then
  local k, a = 1, 5 + undeclared
  for g = 1, tonumber(ARGV[1]) do
    if k > #KEYS then redis.call('EXISTS', K[k]) end
    k = k + 5
    local appends = tonumber(ARGV[a])
    a = a + 1
    for n = 1, appends do
      k = k + tonumber(ARGV[a])
      a = a + 2 + tonumber(ARGV[a + 1])
    end
  end
end
-- The current group's keys, set before its appends run, and (with clock positions) its
-- counter's value, kept here after the group's first append rather than read again.
local ids, feed, counter, log, base, retention, counted
-- The group's feed entry: its successful appends' events, added as one entry after them, or as
-- several of at most FEED_ENTRY_FIELDS fields (unpack is bounded by the Lua stack, about 8,000
-- values), a large append split into parts of FEED_PART events.
local feedEntry
local FEED_ENTRY_FIELDS = 4000
local FEED_PART = 1000
local function publish()
  if #feedEntry == 0 then return end
  redis.call('XADD', feed, 'MAXLEN', '~', retention, '*', unpack(feedEntry))
  feedEntry = {}
end
-- The server's clock, read once: a call runs at one instant, and positions only need to be
-- above the counter and near the clock.
local now
if ARGV[3] == '1' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000000 + tonumber(time[2])
end

local function appendOne(k, a, last)
  local meta, events = K[k], K[k + 1]
  local expected = tonumber(ARGV[a])
  local m = redis.call('HMGET', meta, 'n', 'ls')
  local nextSeq = tonumber(m[1] or '0')
  if nextSeq ~= expected then
    if expected >= nextSeq then return {nextSeq, expected, {}} end
    local first = tonumber(redis.call('HGET', meta, 'f') or '0')
    local from = math.max(expected, first)
    return {nextSeq, from, redis.call('LRANGE', events, from - first, -1)}
  end
  local indexCount = tonumber(ARGV[a + 1])
  local firstEvent = a + 2 + indexCount
  if firstEvent > last then return 0 end
  local count = last - firstEvent + 1
  local lastPosition
  if now then
    if counted == nil then counted = tonumber(redis.call('GET', counter) or '0') end
    lastPosition = math.max(counted, now) + count
    counted = lastPosition
    redis.call('SET', counter, string.format('%d', lastPosition))
  else
    lastPosition = redis.call('INCRBY', counter, count)
  end
  local id = string.sub(meta, #base + 4)
  redis.call('XADD', log, string.format('%d-0', lastPosition), 'a', id, 's', ARGV[a], 'n', count)
  local before = lastPosition - count
  local stored = {}
  for i = 1, count do stored[i] = string.format('%d', before + i) .. ':' .. ARGV[firstEvent + i - 1] end
  -- unpack is bounded by the Lua stack, so push large batches in slices.
  for i = 1, count, 1000 do
    redis.call('RPUSH', events, unpack(stored, i, math.min(i + 999, count)))
  end
  redis.call('HINCRBY', meta, 'n', count)
  if retention > 0 then
    -- In parts of at most FEED_PART events, each with the ID and its own first sequence.
    local firstSequence = tonumber(ARGV[a])
    for from = 1, count, FEED_PART do
      local to = math.min(from + FEED_PART - 1, count)
      if #feedEntry + 4 + 2 * (to - from + 1) > FEED_ENTRY_FIELDS then publish() end
      feedEntry[#feedEntry + 1] = 'a'
      feedEntry[#feedEntry + 1] = id
      feedEntry[#feedEntry + 1] = 's'
      feedEntry[#feedEntry + 1] = string.format('%d', firstSequence + from - 1)
      for i = from, to do
        feedEntry[#feedEntry + 1] = 'e'
        feedEntry[#feedEntry + 1] = stored[i]
      end
    end
  end
  -- The first append of a life (at 0, or at the start an archive left) lists the aggregate.
  if nextSeq == tonumber(m[2] or '0') then redis.call('ZADD', ids, 0, id) end
  if indexCount == 0 then return before + 1 end
  local i = a + 2
  k = k + 2
  if ARGV[i] == '1' then
    local status = ARGV[i + 1]
    local current = redis.call('HMGET', meta, 'st', 'sk')
    local old = current[1] or ''
    if old ~= status then
      if old ~= '' then redis.call('ZREM', base .. ':s:' .. esc(old), (current[2] or '') .. ':' .. id) end
      if status == '' then
        redis.call('HDEL', meta, 'st', 'sk')
      else
        redis.call('HSET', meta, 'st', status, 'sk', ARGV[i + 2])
        redis.call('ZADD', K[k], 0, ARGV[i + 2] .. ':' .. id)
      end
    end
    if status ~= '' then k = k + 1 end
  end
  local labelCount = tonumber(ARGV[i + 3])
  for j = 0, labelCount - 1 do
    local name, value = ARGV[i + 4 + 2 * j], ARGV[i + 5 + 2 * j]
    local valuesKey = K[k]
    local holdersKey = K[k + 1]
    k = k + 1
    if value ~= '' then k = k + 1 end
    local field = 'l:' .. name
    local old = redis.call('HGET', meta, field)
    if old ~= value and not (old == false and value == '') then
      if old then
        local oldHolders = base .. ':lh:' .. esc(name) .. ':' .. esc(old)
        redis.call('ZREM', oldHolders, id)
        if redis.call('ZCARD', oldHolders) == 0 then redis.call('ZREM', valuesKey, old) end
      end
      if value == '' then
        redis.call('HDEL', meta, field)
      else
        redis.call('HSET', meta, field, value)
        redis.call('ZADD', holdersKey, 0, id)
        redis.call('ZADD', valuesKey, 0, value)
      end
    end
  end
  return before + 1
end

local results = {}
local k, a = 1, 5 + undeclared
for g = 1, tonumber(ARGV[1]) do
  ids, feed, counter, log, counted = K[k], K[k + 1], K[k + 3], K[k + 4], nil
  base = string.sub(ids, 1, #ids - 4)
  retention = tonumber(ARGV[2])
  if retention > 0 and redis.call('EXISTS', K[k + 2]) == 0 then retention = 0 end
  k = k + 5
  local appends = tonumber(ARGV[a])
  a = a + 1
  feedEntry = {}
  for n = 1, appends do
    local keyCount, argCount = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    a = a + 2
    results[#results + 1] = appendOne(k, a, a + argCount - 1)
    k = k + keyCount
    a = a + argCount
  end
  publish()
end
return results
`;

// Removes the log entries of stored elements that are being deleted. A log entry's ID is its
// append's last position, so deleting the IDs of the deleted elements' positions removes exactly
// the entries whose every event is gone (trimming removes a prefix of an aggregate's sequences, so
// an append whose last event is trimmed is trimmed whole); IDs that name no entry are ignored.
const FORGET = `
local function forget(log, elements)
  local batch = {}
  for i = 1, #elements do
    batch[#batch + 1] = string.match(elements[i], '^%d+') .. '-0'
    if #batch == 1000 or i == #elements then
      redis.call('XDEL', log, unpack(batch))
      batch = {}
    end
  end
end
`;

/** KEYS: meta, events. ARGV: from sequence. Returns {sequence of the first event, events}. */
const LOAD_EVENTS = `
local first = tonumber(redis.call('HGET', KEYS[1], 'f') or '0')
local from = math.max(tonumber(ARGV[1]), first)
return {from, redis.call('LRANGE', KEYS[2], from - first, -1)}
`;

/**
 * KEYS: meta, events. Returns {snapshot data or nil, snapshot sequence (without a snapshot, where
 * the current life starts), sequence of the first event, events stored from there on}.
 */
const LOAD_SNAPSHOT = `
local m = redis.call('HMGET', KEYS[1], 'sd', 'ss', 'f', 'ls')
local covered = tonumber(m[2] or m[4] or '0')
local first = tonumber(m[3] or '0')
local from = math.max(covered, first)
return {m[1], covered, from, redis.call('LRANGE', KEYS[2], from - first, -1)}
`;

/**
 * KEYS: meta, events, ids, log stream. ARGV: encoded id, data, sequence, trim ('1'/'0').
 * A snapshot at or below the start of the ID's current life (after an archive) is ignored like an
 * older one. Trimming removes the log entries of appends trimmed whole.
 * Returns {1} when saved, {0} when ignored, {2, next sequence} when the sequence is beyond the
 * aggregate's next sequence.
 */
const SAVE_SNAPSHOT = `${FORGET}
local meta, events, ids, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local sequence = tonumber(ARGV[3])
local m = redis.call('HMGET', meta, 'n', 'ss', 'f', 'ls')
local nextSeq = tonumber(m[1] or '0')
if sequence > nextSeq then return {2, nextSeq} end
if m[2] and tonumber(m[2]) >= sequence then return {0} end
if m[4] and sequence <= tonumber(m[4]) then return {0} end
redis.call('HSET', meta, 'sd', ARGV[2], 'ss', ARGV[3])
redis.call('ZADD', ids, 0, ARGV[1])
if ARGV[4] == '1' then
  local first = tonumber(m[3] or '0')
  if sequence > first then
    forget(log, redis.call('LRANGE', events, 0, sequence - first - 1))
    redis.call('LTRIM', events, sequence - first, -1)
    redis.call('HSET', meta, 'f', ARGV[3])
  end
end
return {1}
`;

/**
 * KEYS: meta, events, ids, archive stream, log stream. ARGV: base, encoded id.
 * Moves the aggregate into one stream entry, deletes its live keys, index entries and log entries,
 * and leaves in its meta hash only where its next life starts (its next sequence plus one, in
 * `n`, `f` and `ls`), so the ID never reuses a sequence and an append expecting a sequence of the
 * archived life conflicts. Returns the entry ID, or nil when the ID holds no live data (unknown,
 * or archived with no new life since).
 */
const ARCHIVE = `${ESCAPE}${FORGET}
local meta, events, ids, stream, log = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local base, id = ARGV[1], ARGV[2]
local flat = redis.call('HGETALL', meta)
if #flat == 0 then return false end
local fields = {}
for i = 1, #flat, 2 do fields[flat[i]] = flat[i + 1] end
local nextSeq = tonumber(fields['n'] or '0')
if nextSeq == tonumber(fields['ls'] or '0') and not fields['sd'] then return false end
if fields['st'] then redis.call('ZREM', base .. ':s:' .. esc(fields['st']), (fields['sk'] or '') .. ':' .. id) end
for field, value in pairs(fields) do
  if string.sub(field, 1, 2) == 'l:' then
    local name = string.sub(field, 3)
    local holders = base .. ':lh:' .. esc(name) .. ':' .. esc(value)
    redis.call('ZREM', holders, id)
    if redis.call('ZCARD', holders) == 0 then redis.call('ZREM', base .. ':lv:' .. esc(name), value) end
  end
end
local stored = redis.call('LRANGE', events, 0, -1)
local entry = {'id', id, 'first', fields['f'] or '0', 'events', cjson.encode(stored)}
if fields['sd'] then
  table.insert(entry, 'ss'); table.insert(entry, fields['ss'])
  table.insert(entry, 'sd'); table.insert(entry, fields['sd'])
end
local entryId = redis.call('XADD', stream, '*', unpack(entry))
forget(log, stored)
redis.call('DEL', meta, events)
redis.call('ZREM', ids, id)
local nextLife = string.format('%d', nextSeq + 1)
redis.call('HSET', meta, 'n', nextLife, 'f', nextLife, 'ls', nextLife)
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

/**
 * Reads one page of a log partition after a position.
 *
 * KEYS: the partition's position counter, its log stream. ARGV: after (the position read up to),
 * limit (most events to return), budget (most log entries plus elements to look at), '1'/'0'
 * whether a prefix is given, the encoded prefix, the count of types ('' for no type filter; 0
 * matches nothing), then per type its length in UTF-16 code units (as the client wrote it into
 * each element) and the type.
 *
 * Walks the log entries after `after` (`XRANGE`, in position order) and, for each, reads the
 * aggregate's trim offset and next sequence: an entry's events below the offset were trimmed, and
 * an archived ID's offset is past every sequence of its archived life, so only events still
 * stored are read (`LRANGE` of the live part of the append). The prefix is matched on part
 * boundaries (the encoded prefix itself, or it followed by ':'), like core's `hasIdPrefix`. An
 * element's type length counts UTF-16 code units, not the bytes Lua sees, so an element has type
 * t when its length field is t's and its bytes there start with t's: UTF-8 being prefix-free, a
 * longer type starting with t's bytes has a longer length. The walk stops at `limit` events or when the budget is spent, possibly
 * inside an append; the position it read up to is where the next page starts. At the end of the
 * log it reports the counter, which is at least every position given so far: scripts run one at a
 * time, so every append at or below it has committed.
 *
 * Returns {position read up to, 1 when the log's end was reached else 0, groups}; a group holds
 * events of one append: {encoded ID, sequence minus position, stored elements...}.
 */
const READ_LOG = `
local counter, log = KEYS[1], KEYS[2]
local base = string.sub(log, 1, #log - 4)
local cursor = tonumber(ARGV[1])
local limit, budget = tonumber(ARGV[2]), tonumber(ARGV[3])
local hasPrefix, prefix = ARGV[4] == '1', ARGV[5]
local prefixPart = prefix .. ':'
-- The wanted types by their length field: { ['5'] = {'Added', 'Moved'}, ... }.
local types = nil
if ARGV[6] ~= '' then
  types = {}
  for i = 7, 6 + 2 * tonumber(ARGV[6]), 2 do
    local sameLength = types[ARGV[i]]
    if sameLength == nil then
      sameLength = {}
      types[ARGV[i]] = sameLength
    end
    sameLength[#sameLength + 1] = ARGV[i + 1]
  end
end

local function wanted(element)
  if types == nil then return true end
  local positionEnd = string.find(element, ':', 1, true)
  local timeEnd = string.find(element, ':', positionEnd + 1, true)
  local lengthEnd = string.find(element, ':', timeEnd + 1, true)
  local candidates = types[string.sub(element, timeEnd + 1, lengthEnd - 1)]
  if candidates == nil then return false end
  for _, candidate in ipairs(candidates) do
    if string.sub(element, lengthEnd + 1, lengthEnd + #candidate) == candidate then return true end
  end
  return false
end

local groups, returned, spent = {}, 0, 0
local reachedEnd = false
while true do
  local want = math.min(256, budget - spent)
  -- Unfiltered, every entry yields an event: ask for one more than the room left, to see the end.
  if types == nil and not hasPrefix then want = math.min(want, limit - returned + 1) end
  local entries = redis.call('XRANGE', log, string.format('%d', cursor + 1), '+', 'COUNT', want)
  local stopped = false
  for e = 1, #entries do
    local lastPosition = tonumber(string.match(entries[e][1], '^%d+'))
    local fields = entries[e][2]
    local id, firstSeq, count = fields[2], tonumber(fields[4]), tonumber(fields[6])
    local firstPosition = lastPosition - count + 1
    local partial = false
    local unread = cursor + 1 - firstPosition
    spent = spent + 1
    cursor = lastPosition
    if not hasPrefix or id == prefix or string.sub(id, 1, #prefixPart) == prefixPart then
      local m = redis.call('HMGET', base .. ':m:' .. id, 'f', 'n')
      local first, nextSeq = tonumber(m[1] or '0'), tonumber(m[2] or '0')
      -- The indexes (within the append) of its events not read yet and still stored.
      local from = math.max(unread, first - firstSeq, 0)
      local to = math.min(count - 1, nextSeq - 1 - firstSeq)
      if from <= to then
        local take = to - from + 1
        if types == nil then
          take = math.min(take, limit - returned)
        else
          take = math.min(take, math.max(1, budget - spent))
        end
        local at = firstSeq + from - first
        local elements = redis.call('LRANGE', base .. ':e:' .. id, at, at + take - 1)
        local group = nil
        local consumed = #elements
        for j = 1, #elements do
          spent = spent + 1
          if wanted(elements[j]) then
            if group == nil then
              group = {id, firstSeq - firstPosition}
              groups[#groups + 1] = group
            end
            group[#group + 1] = elements[j]
            returned = returned + 1
            if returned >= limit then
              consumed = j
              break
            end
          end
        end
        if from + consumed - 1 < to then
          cursor = firstPosition + from + consumed - 1
          partial = true
        end
      end
    end
    if partial or returned >= limit or spent >= budget then
      stopped = true
      -- The page ends here; it reached the log's end only if this was the last entry there was.
      reachedEnd = not partial and e == #entries and #entries < want
      break
    end
  end
  if not stopped and #entries < want then reachedEnd = true end
  if stopped or reachedEnd then break end
end
if reachedEnd then cursor = math.max(cursor, tonumber(redis.call('GET', counter) or '0')) end
return {cursor, reachedEnd and 1 or 0, groups}
`;

// Projection records: hash fields `g` generation, `h` holder, `u` lease end (ms, server clock),
// `c` checkpoint, `e` last error. The server's TIME judges every lease, so processes whose clocks
// disagree still agree on who holds it.
const PROJECTION = `
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function view(key, at)
  local m = redis.call('HMGET', key, 'g', 'h', 'u', 'c', 'e')
  if not m[1] then return false end
  local holder, untilMs = m[2], tonumber(m[3] or '0')
  if not holder or untilMs <= at then
    holder = false
    untilMs = 0
  end
  return {m[1], holder, string.format('%d', untilMs), m[4], m[5]}
end
`;

/** KEYS: record. Returns the record (expired leases shown as none) or nil. */
const PROJECTION_LOAD = `${PROJECTION}
return view(KEYS[1], now())
`;

/**
 * KEYS: record. ARGV: holder, lease ms. Takes or renews the lease if free, expired or the
 * holder's; creates the record. Returns {1 held / 0 not, record}.
 */
const PROJECTION_CLAIM = `${PROJECTION}
local key, holder = KEYS[1], ARGV[1]
local at = now()
local m = redis.call('HMGET', key, 'h', 'u')
local held = not m[1] or m[1] == holder or tonumber(m[2] or '0') <= at
if held then redis.call('HSET', key, 'h', holder, 'u', string.format('%d', at + tonumber(ARGV[2]))) end
redis.call('HSETNX', key, 'g', '0')
return {held and 1 or 0, view(key, at)}
`;

/**
 * KEYS: record. ARGV: holder, generation, '1'/'0' has checkpoint, checkpoint, error mode ('k'
 * keep, 's' set, 'c' clear), error, lease ms. Returns 'ok', 'lost-lease' or 'reset'.
 */
const PROJECTION_SAVE = `${PROJECTION}
local key = KEYS[1]
local at = now()
local m = redis.call('HMGET', key, 'g', 'h', 'u')
if not m[1] or m[2] ~= ARGV[1] or tonumber(m[3] or '0') <= at then return 'lost-lease' end
if tonumber(m[1]) ~= tonumber(ARGV[2]) then return 'reset' end
if ARGV[3] == '1' then redis.call('HSET', key, 'c', ARGV[4]) end
if ARGV[5] == 's' then redis.call('HSET', key, 'e', ARGV[6]) elseif ARGV[5] == 'c' then redis.call('HDEL', key, 'e') end
redis.call('HSET', key, 'u', string.format('%d', at + tonumber(ARGV[7])))
return 'ok'
`;

/** KEYS: record. ARGV: holder. Gives the lease up if the holder has it. */
const PROJECTION_RELEASE = `
if redis.call('HGET', KEYS[1], 'h') == ARGV[1] then
  redis.call('HDEL', KEYS[1], 'h')
  redis.call('HSET', KEYS[1], 'u', '0')
end
return 0
`;

/**
 * KEYS: record. ARGV: '1'/'0' has checkpoint, checkpoint. Replaces the checkpoint, clears the
 * error and bumps the generation, whoever holds the lease; creates the record.
 */
const PROJECTION_RESET = `
if ARGV[1] == '1' then redis.call('HSET', KEYS[1], 'c', ARGV[2]) else redis.call('HDEL', KEYS[1], 'c') end
redis.call('HDEL', KEYS[1], 'e')
return redis.call('HINCRBY', KEYS[1], 'g', 1)
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
  // The same, allowed to touch keys of several slots, as long as one node serves them all (Redis
  // 7.0+, Valkey 7.2+): a sharded store sends the appends of the shards one master serves together.
  appendAcross: new Script(`#!lua flags=allow-cross-slot-keys\n${APPEND}`),
  loadEvents: new Script(LOAD_EVENTS),
  loadSnapshot: new Script(LOAD_SNAPSHOT),
  saveSnapshot: new Script(SAVE_SNAPSHOT),
  archive: new Script(ARCHIVE),
  ack: new Script(ACK),
  renew: new Script(RENEW),
  feedLease: new Script(FEED_LEASE),
  readLog: new Script(READ_LOG),
  projectionLoad: new Script(PROJECTION_LOAD),
  projectionClaim: new Script(PROJECTION_CLAIM),
  projectionSave: new Script(PROJECTION_SAVE),
  projectionRelease: new Script(PROJECTION_RELEASE),
  projectionReset: new Script(PROJECTION_RESET),
};

/** The append script's reply: the first position (0 for an empty batch), or a conflict. */
export type AppendReply = number | [actualSequence: number, firstSequence: number, events: string[]];

/** The read-log script's reply: see READ_LOG. */
export type ReadLogReply = [after: number, end: 0 | 1, groups: [encodedId: string, sequenceOffset: number, ...elements: string[]][]];

/** A projection record as the scripts return it: generation, holder, lease end, checkpoint, error. */
export type ProjectionReply = [
  generation: string,
  holder: string | null,
  leaseUntil: string,
  checkpoint: string | null,
  error: string | null,
];

/** What the read-log script is asked for. */
export interface ReadLogArgs {
  readonly after: number;
  readonly limit: number;
  readonly budget: number;
  /** The encoded prefix, absent for none. */
  readonly prefix: string | undefined;
  readonly types: readonly string[] | undefined;
}

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

  /**
   * Runs `append` with keys and arguments already laid out as the script expects; `acrossSlots`
   * when the groups are in different slots of one node.
   */
  append(keys: readonly string[], args: readonly (string | number)[], acrossSlots = false): Promise<AppendReply[]> {
    return this.#run(acrossSlots ? SCRIPTS.appendAcross : SCRIPTS.append, keys, args) as Promise<AppendReply[]>;
  }

  loadEvents(meta: string, events: string, fromSequence: number): Promise<[number, string[]]> {
    return this.#run(SCRIPTS.loadEvents, [meta, events], [fromSequence]) as Promise<[number, string[]]>;
  }

  loadSnapshot(meta: string, events: string): Promise<[string | null, number, number, string[]]> {
    return this.#run(SCRIPTS.loadSnapshot, [meta, events], []) as Promise<[string | null, number, number, string[]]>;
  }

  saveSnapshot(
    keys: readonly [string, string, string, string],
    args: readonly [string, string, number, string],
  ): Promise<[0 | 1] | [2, number]> {
    return this.#run(SCRIPTS.saveSnapshot, keys, args) as Promise<[0 | 1] | [2, number]>;
  }

  archive(keys: readonly [string, string, string, string, string], base: string, encodedId: string): Promise<string | null> {
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

  readLog(counter: string, log: string, request: ReadLogArgs): Promise<ReadLogReply> {
    const types = request.types ?? [];
    const args: (string | number)[] = [
      request.after,
      request.limit,
      request.budget,
      request.prefix === undefined ? '0' : '1',
      request.prefix ?? '',
      request.types === undefined ? '' : types.length,
    ];
    // Each type with its length as `encodeEvent` writes it (UTF-16 code units).
    for (const type of types) args.push(type.length, type);
    return this.#run(SCRIPTS.readLog, [counter, log], args) as Promise<ReadLogReply>;
  }

  projectionLoad(key: string): Promise<ProjectionReply | null> {
    return this.#run(SCRIPTS.projectionLoad, [key], []) as Promise<ProjectionReply | null>;
  }

  projectionClaim(key: string, holder: string, leaseMs: number): Promise<[0 | 1, ProjectionReply]> {
    return this.#run(SCRIPTS.projectionClaim, [key], [holder, leaseMs]) as Promise<[0 | 1, ProjectionReply]>;
  }

  projectionSave(
    key: string,
    holder: string,
    generation: number,
    checkpoint: string | undefined,
    error: string | null | undefined,
    leaseMs: number,
  ): Promise<'ok' | 'lost-lease' | 'reset'> {
    const errorMode = error === undefined ? 'k' : error === null ? 'c' : 's';
    const args = [holder, generation, checkpoint === undefined ? '0' : '1', checkpoint ?? '', errorMode, error ?? '', leaseMs];
    return this.#run(SCRIPTS.projectionSave, [key], args) as Promise<'ok' | 'lost-lease' | 'reset'>;
  }

  projectionRelease(key: string, holder: string): Promise<number> {
    return this.#run(SCRIPTS.projectionRelease, [key], [holder]) as Promise<number>;
  }

  projectionReset(key: string, checkpoint: string | undefined): Promise<number> {
    return this.#run(SCRIPTS.projectionReset, [key], [checkpoint === undefined ? '0' : '1', checkpoint ?? '']) as Promise<number>;
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
