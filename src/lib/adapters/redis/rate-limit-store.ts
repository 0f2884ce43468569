import { UnavailableError } from '../../errors/index.js'
import {
  RATE_LIMIT_WINDOW_MS,
  type RateLimitDecision,
  type RateLimitKey,
  type RateLimitStore,
  retryAfterSeconds,
  windowStartOf,
} from '../../ports/rate-limit-store.js'
import { defineScript, evalScript, type RedisClient } from './client.js'

/** Keys live 2 windows after their last count: older counts read as zero anyway. */
export const RATE_LIMIT_TTL_MS = 120_000

/**
 * One round trip per request. Every key is a hash {p: previous-window count, c: current-window count,
 * w: window start}. The admission test mirrors `admits()` of the port operation for operation (Lua
 * numbers are IEEE doubles like JS numbers), first checking every key in order, then counting all of
 * them only if none refused. Refused: {0, index of the key, p, c} as rolled to the current window.
 *
 * KEYS: the keys in check order. ARGV[1] now (ms), ARGV[2] window start, ARGV[3] window (ms),
 * ARGV[4] TTL (ms), ARGV[4 + i] the limit of KEYS[i].
 */
export const RATE_LIMIT_SCRIPT = `
local now = tonumber(ARGV[1])
local ws = tonumber(ARGV[2])
local win = tonumber(ARGV[3])
local elapsed = now - ws
local prevs, currs = {}, {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[4 + i])
  local h = redis.call('HMGET', KEYS[i], 'p', 'c', 'w')
  local p = tonumber(h[1]) or 0
  local c = tonumber(h[2]) or 0
  local w = tonumber(h[3])
  if w ~= ws then
    if w == ws - win then p = c else p = 0 end
    c = 0
  end
  if math.floor(p * (1 - elapsed / win)) + c + 1 > limit then
    return {0, i, p, c}
  end
  prevs[i] = p
  currs[i] = c
end
for i = 1, #KEYS do
  redis.call('HSET', KEYS[i], 'p', prevs[i], 'c', currs[i] + 1, 'w', ARGV[2])
  redis.call('PEXPIRE', KEYS[i], ARGV[4])
end
return {1}
`

const SCRIPT = defineScript(RATE_LIMIT_SCRIPT)

export interface RedisRateLimitStoreOptions {
  /** Prepended to each key after the client's own prefix. Default `ratelimit:`. */
  namespace?: string
}

function toInt(value: unknown): number {
  return typeof value === 'number' ? value : Number(value)
}

/**
 * Rate-limit counters in Redis, shared by every replica: keys `<REDIS_KEY_PREFIX>ratelimit:<key>` (the
 * client created by `createRedisClient` adds the prefix), TTL 120 s. When the client is not connected
 * the call fails at once with `UnavailableError` (code `REDIS_UNAVAILABLE`) and the caller falls back.
 */
export function createRedisRateLimitStore(client: RedisClient, options: RedisRateLimitStoreOptions = {}): RateLimitStore {
  const namespace = options.namespace ?? 'ratelimit:'
  // The client is lazy: start connecting now so the first requests find it ready.
  if (client.status === 'wait') client.connect().catch(() => undefined)

  return {
    async hit(keys: readonly RateLimitKey[], rawNowMs: number): Promise<RateLimitDecision> {
      if (keys.length === 0) return { allowed: true }
      if (client.status !== 'ready') {
        throw new UnavailableError(`Redis is not connected (${client.status})`, { code: 'REDIS_UNAVAILABLE' })
      }
      const nowMs = Math.floor(rawNowMs)
      const windowStart = windowStartOf(nowMs)
      const args = [String(nowMs), String(windowStart), String(RATE_LIMIT_WINDOW_MS), String(RATE_LIMIT_TTL_MS), ...keys.map((k) => String(k.limit))]
      let reply: unknown
      try {
        reply = await evalScript(client, SCRIPT, keys.map((k) => namespace + k.key), args)
      } catch (err) {
        throw new UnavailableError('Redis rate-limit call failed', { code: 'REDIS_UNAVAILABLE', cause: err })
      }
      if (!Array.isArray(reply) || reply.length === 0) throw new UnavailableError('unexpected Redis rate-limit reply', { code: 'REDIS_UNAVAILABLE' })
      if (toInt(reply[0]) === 1) return { allowed: true }
      const refused = keys[toInt(reply[1]) - 1]
      if (refused === undefined) throw new UnavailableError('unexpected Redis rate-limit reply', { code: 'REDIS_UNAVAILABLE' })
      const counts = { prev: toInt(reply[2]), curr: toInt(reply[3]), windowStart }
      return { allowed: false, key: refused.key, limit: refused.limit, retryAfterSeconds: retryAfterSeconds(counts, nowMs, refused.limit) }
    },
  }
}
