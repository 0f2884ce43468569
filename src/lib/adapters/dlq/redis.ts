import { AppError, UnavailableError } from '../../errors/index.js'
import type { Clock } from '../../ports/clock.js'
import { systemClock } from '../../ports/clock.js'
import {
  type DeadLetterEntry,
  type DeadLetterInput,
  type DeadLetterQueue,
  type DlqFilter,
  DlqFullError,
  type DlqStage,
  type DlqStats,
} from '../../ports/dead-letter-queue.js'
import { defineScript, evalScript, type RedisClient } from '../redis/client.js'
import { createEntryIdGenerator } from './entry-id.js'
import { compareEntries, decodePayload, encodePayload, matchesFilter } from './payload.js'

/** list/purge/stats scan the whole stream: refuse beyond this many entries rather than hold Redis and memory. */
export const MAX_SCAN_ENTRIES = 1_000_000
const PAGE = 500
/** Entry ids per REMOVE script call (keeps each call short: Redis runs scripts one at a time). */
const REMOVE_CHUNK = 500
/** Entries of a stream written by the legacy service have no entry_id: they are addressed by their stream id. */
const LEGACY_PREFIX = 'legacy-'

/*
 * Layout. The stream (DLQ_STREAM_NAME, default `dlq:ingest`) holds one entry per dead letter with the
 * legacy fields of reference §10.3 (payload, error, error_type, source, timestamp, created_at,
 * sensor_id, msg_id) plus entry_id, stage, attempts, status, first_failed_at, last_failed_at and
 * series_id. A hash `<stream>:index` maps entry_id -> stream id, so get/remove/recordFailure are O(1).
 * A failed replay rewrites the entry (XDEL + XADD of the same fields with attempts, status, error and
 * last_failed_at changed; entry_id, first_failed_at, created_at and timestamp kept) and moves the
 * index. Every change is one Lua script, so the stream and the index never disagree and the capacity
 * check of `add` (XLEN + n <= maxLen) is atomic across replicas: there is no race window. No MAXLEN
 * is ever given: nothing is trimmed. Both keys must live on one node (no Redis Cluster unless the
 * stream name carries a hash tag such as `{dlq}:ingest`).
 */

// KEYS: stream, index. ARGV: maxLen, n, then per entry: entry_id, field count c, c field/value strings.
const ADD = defineScript(`
local len = redis.call('XLEN', KEYS[1])
local n = tonumber(ARGV[2])
if len + n > tonumber(ARGV[1]) then return redis.error_reply('DLQ_FULL ' .. len) end
local i = 3
local ids = {}
for e = 1, n do
  local entryId = ARGV[i]
  local c = tonumber(ARGV[i + 1])
  i = i + 2
  local fields = {}
  for j = 1, c do fields[j] = ARGV[i + j - 1] end
  i = i + c
  local id = redis.call('XADD', KEYS[1], '*', unpack(fields))
  redis.call('HSET', KEYS[2], entryId, id)
  ids[e] = id
end
return ids
`)

// Resolves an entry id to its stream id (legacy entries carry their stream id in the entry id).
const RESOLVE = `
local function resolve(entryId)
  local id = redis.call('HGET', KEYS[2], entryId)
  if not id and string.sub(entryId, 1, ${LEGACY_PREFIX.length}) == '${LEGACY_PREFIX}' then id = string.sub(entryId, ${LEGACY_PREFIX.length + 1}) end
  return id
end
`

// KEYS: stream, index. ARGV: entry_id, error, last_failed_at (ISO), maxRetries.
// Returns {new stream id, fields} or nil when the entry is gone.
const RECORD_FAILURE = defineScript(`${RESOLVE}
local id = resolve(ARGV[1])
if not id then return false end
local found = redis.call('XRANGE', KEYS[1], id, id)
if #found == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return false
end
local fields = found[1][2]
local attempts = 0
local status = 'pending'
for j = 1, #fields, 2 do
  if fields[j] == 'attempts' then attempts = tonumber(fields[j + 1]) or 0 end
  if fields[j] == 'status' then status = fields[j + 1] end
end
attempts = attempts + 1
if attempts >= tonumber(ARGV[4]) then status = 'parked' end
local set = { attempts = tostring(attempts), status = status, error = ARGV[2], last_failed_at = ARGV[3], entry_id = ARGV[1] }
local out = {}
local seen = {}
for j = 1, #fields, 2 do
  local k = fields[j]
  local v = fields[j + 1]
  if set[k] ~= nil then
    v = set[k]
    seen[k] = true
  end
  out[#out + 1] = k
  out[#out + 1] = v
end
for _, k in ipairs({ 'entry_id', 'attempts', 'status', 'error', 'last_failed_at' }) do
  if not seen[k] then
    out[#out + 1] = k
    out[#out + 1] = set[k]
  end
end
redis.call('XDEL', KEYS[1], id)
local newId = redis.call('XADD', KEYS[1], '*', unpack(out))
redis.call('HSET', KEYS[2], ARGV[1], newId)
return { newId, out }
`)

// KEYS: stream, index. ARGV: pairs (entry_id, expected stream id or ''). With an expected id the entry
// is removed only if it was not rewritten since it was read (purge touches only what it matched).
const REMOVE = defineScript(`${RESOLVE}
local removed = 0
for i = 1, #ARGV, 2 do
  local id = resolve(ARGV[i])
  if id and (ARGV[i + 1] == '' or ARGV[i + 1] == id) then
    removed = removed + redis.call('XDEL', KEYS[1], id)
    redis.call('HDEL', KEYS[2], ARGV[i])
  end
end
return removed
`)

export interface RedisDlqOptions {
  /** A client from createRedisClient (its keyPrefix, REDIS_KEY_PREFIX, applies to both keys). */
  client: RedisClient
  /** DLQ_STREAM_NAME (default `dlq:ingest`). */
  streamName?: string
  /** DLQ_MAX_LEN: `add` refuses beyond it; nothing is ever trimmed. */
  maxLen: number
  clock?: Clock
  /** `close()` quits the client (true when the DLQ created it). Default false. */
  ownsClient?: boolean
}

type Fields = Record<string, string>

function toFields(flat: readonly unknown[]): Fields {
  const out: Fields = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1])
  return out
}

function iso(text: string | undefined): string | null {
  if (text === undefined || text === '') return null
  const ms = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text}Z`)
  return Number.isNaN(ms) ? null : new Date(ms).toISOString()
}

function epochSecondsIso(text: string | undefined): string | null {
  const s = text === undefined ? NaN : Number(text)
  return Number.isFinite(s) ? new Date(s * 1000).toISOString() : null
}

const intOrNull = (text: string | undefined): number | null => {
  if (text === undefined || text.trim() === '') return null
  const n = Number(text)
  return Number.isSafeInteger(n) ? n : null
}

/** A stream entry as a DeadLetterEntry; entries written by the legacy service get defaults. */
export function decodeStreamEntry(streamId: string, f: Fields): DeadLetterEntry {
  const first = iso(f['first_failed_at']) ?? iso(f['created_at']) ?? epochSecondsIso(f['timestamp']) ?? new Date(Number(streamId.split('-')[0])).toISOString()
  return {
    entryId: f['entry_id'] ?? `${LEGACY_PREFIX}${streamId}`,
    transport: f['source'] ?? 'unknown',
    stage: (f['stage'] ?? 'processing') as DlqStage,
    errorClass: f['error_type'] ?? 'unknown',
    error: f['error'] ?? '',
    payload: decodePayload(f['payload'] ?? 'null'),
    sensorId: intOrNull(f['sensor_id']),
    seriesId: f['series_id'] || null,
    msgId: f['msg_id'] || null,
    status: f['status'] === 'parked' ? 'parked' : 'pending',
    attempts: intOrNull(f['attempts']) ?? intOrNull(f['retry_count']) ?? 0,
    firstFailedAt: first,
    lastFailedAt: iso(f['last_failed_at']) ?? first,
  }
}

/** The stream fields of a new entry: the legacy ones first, then ours. Optional fields are omitted when null. */
export function encodeStreamFields(entryId: string, e: DeadLetterInput, nowMs: number): string[] {
  const at = new Date(nowMs).toISOString()
  const fields: string[] = ['payload', encodePayload(e.payload), 'error', e.error, 'error_type', e.errorClass, 'source', e.transport, 'timestamp', String(nowMs / 1000), 'created_at', at]
  if (e.sensorId !== undefined && e.sensorId !== null) fields.push('sensor_id', String(e.sensorId))
  if (e.msgId !== undefined && e.msgId !== null) fields.push('msg_id', e.msgId)
  fields.push('entry_id', entryId, 'stage', e.stage, 'attempts', '0', 'status', 'pending', 'first_failed_at', at, 'last_failed_at', at)
  if (e.seriesId !== undefined && e.seriesId !== null) fields.push('series_id', e.seriesId)
  return fields
}

const unavailable = (what: string, err: unknown): UnavailableError => new UnavailableError(`Redis DLQ: ${what} failed (${err instanceof Error ? err.message : String(err)})`, { code: 'REDIS_UNAVAILABLE', cause: err })

/**
 * The `redis` DLQ backend (DESIGN §6) for several replicas: the `dlq:ingest` stream with the legacy
 * fields plus a stable entry_id (layout above). Payloads are kept whole (JSON). The operator must
 * give Redis persistence (AOF) for it to survive a Redis restart.
 */
export async function openRedisDlq(options: RedisDlqOptions): Promise<DeadLetterQueue> {
  const { client, maxLen } = options
  const clock = options.clock ?? systemClock
  const stream = options.streamName ?? 'dlq:ingest'
  const keys = [stream, `${stream}:index`]
  const nextId = createEntryIdGenerator()
  if (client.status === 'wait') {
    try {
      await client.connect()
    } catch (err) {
      throw unavailable('connect', err)
    }
  }

  const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn()
    } catch (err) {
      if (err instanceof AppError || err instanceof DlqFullError) throw err
      throw unavailable(what, err)
    }
  }

  /** Every entry with its stream id, in stream order (bounded by MAX_SCAN_ENTRIES). */
  const scan = (what: string): Promise<Array<{ id: string; entry: DeadLetterEntry }>> =>
    call(what, async () => {
      const len = await client.xlen(stream)
      if (len > MAX_SCAN_ENTRIES) {
        throw new AppError('DLQ_TOO_LARGE', `the DLQ stream ${stream} holds ${len} entries; listing scans at most ${MAX_SCAN_ENTRIES}`, {
          suggestions: ['lower DLQ_MAX_LEN and drain the queue with "ingest dlq replay --limit N"'],
        })
      }
      const out: Array<{ id: string; entry: DeadLetterEntry }> = []
      let start = '-'
      for (;;) {
        const page = await client.xrange(stream, start, '+', 'COUNT', PAGE)
        for (const [id, flat] of page) out.push({ id, entry: decodeStreamEntry(id, toFields(flat)) })
        const last = page[page.length - 1]
        if (page.length < PAGE || !last) break
        start = `(${last[0]}`
      }
      return out
    })

  const select = async (what: string, filter: DlqFilter): Promise<Array<{ id: string; entry: DeadLetterEntry }>> => {
    const all = (await scan(what)).filter((x) => matchesFilter(x.entry, filter))
    all.sort((a, b) => compareEntries(a.entry, b.entry))
    return filter.limit === undefined ? all : all.slice(0, Math.max(0, Math.trunc(filter.limit)))
  }

  const removePairs = async (pairs: ReadonlyArray<readonly [string, string]>): Promise<number> => {
    let removed = 0
    for (let i = 0; i < pairs.length; i += REMOVE_CHUNK) {
      const args = pairs.slice(i, i + REMOVE_CHUNK).flatMap(([entryId, id]) => [entryId, id])
      removed += Number(await call('remove', () => evalScript(client, REMOVE, keys, args)))
    }
    return removed
  }

  return {
    backend: 'redis',

    async add(entries: readonly DeadLetterInput[]) {
      if (entries.length === 0) return []
      const now = clock.now()
      const ids = entries.map(() => nextId(now))
      const args = [String(maxLen), String(entries.length)]
      entries.forEach((e, i) => {
        const fields = encodeStreamFields(ids[i] ?? '', e, now)
        args.push(ids[i] ?? '', String(fields.length), ...fields)
      })
      try {
        await evalScript(client, ADD, keys, args)
      } catch (err) {
        if (err instanceof Error && err.message.includes('DLQ_FULL')) throw new DlqFullError(maxLen)
        throw unavailable('add', err)
      }
      return ids
    },

    async list(filter: DlqFilter = {}) {
      return (await select('list', filter)).map((x) => x.entry)
    },

    async get(entryId: string) {
      const found = await call('get', async () => {
        const id = (await client.hget(keys[1] ?? '', entryId)) ?? (entryId.startsWith(LEGACY_PREFIX) ? entryId.slice(LEGACY_PREFIX.length) : null)
        return id === null ? [] : client.xrange(stream, id, id)
      })
      const first = found[0]
      return first ? decodeStreamEntry(first[0], toFields(first[1])) : null
    },

    remove(entryIds: readonly string[]) {
      return removePairs(entryIds.map((id) => [id, ''] as const))
    },

    async recordFailure(entryId: string, error: string, atMs: number, maxRetries: number) {
      const reply = await call('recordFailure', () => evalScript(client, RECORD_FAILURE, keys, [entryId, error, new Date(atMs).toISOString(), String(maxRetries)]))
      if (!Array.isArray(reply) || reply.length < 2 || !Array.isArray(reply[1])) return null
      return decodeStreamEntry(String(reply[0]), toFields(reply[1] as unknown[]))
    },

    async purge(filter: DlqFilter) {
      const matched = await select('purge', filter)
      return removePairs(matched.map((x) => [x.entry.entryId, x.id] as const))
    },

    async stats(): Promise<DlqStats> {
      const all = await scan('stats')
      const byStage: Record<string, number> = {}
      const byErrorClass: Record<string, number> = {}
      let pending = 0
      let oldest: string | null = null
      for (const { entry } of all) {
        if (entry.status === 'pending') pending++
        byStage[entry.stage] = (byStage[entry.stage] ?? 0) + 1
        byErrorClass[entry.errorClass] = (byErrorClass[entry.errorClass] ?? 0) + 1
        if (oldest === null || entry.firstFailedAt < oldest) oldest = entry.firstFailedAt
      }
      return { backend: 'redis', depth: all.length, pending, parked: all.length - pending, capacity: maxLen, oldestFailedAt: oldest, byStage, byErrorClass }
    },

    async close() {
      if (options.ownsClient) await client.quit().catch(() => client.disconnect())
    },
  }
}
