import type { Config } from '../../config/index.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import type { RateLimitDecision, RateLimitKey, RateLimitStore } from '../../ports/rate-limit-store.js'
import { createMemoryRateLimitStore } from './memory-store.js'

export type RateLimitScope = 'ip' | 'device' | 'sensor'

export interface RateLimitRequest {
  /** From `clientIp()`. */
  ip: string
  /** Device UUID on `/ingest/packets` (compared case-insensitively). */
  device?: string | undefined
  /** Sensor ids on the legacy endpoints; each distinct one is one key. */
  sensors?: readonly (number | string)[] | undefined
}

export type RateLimitResult =
  | { readonly allowed: true }
  | {
      readonly allowed: false
      readonly scope: RateLimitScope
      readonly key: string
      /** For `X-RateLimit-Limit`. */
      readonly limit: number
      /** For `Retry-After`: 1..60. */
      readonly retryAfterSeconds: number
      /** The legacy 429 `detail` (reference §3). */
      readonly detail: string
    }

export interface RateLimiterStatus {
  enabled: boolean
  /** Which store answers now: `memory` when Redis is not configured or in its back-off period. */
  store: 'redis' | 'memory' | 'none'
  /** Consecutive Redis failures (0 when healthy). */
  redisFailures: number
  /** Epoch ms before which Redis is not tried; absent when Redis is healthy or not configured. */
  redisRetryAtMs?: number
}

export interface RateLimiter {
  check(request: RateLimitRequest): Promise<RateLimitResult>
  status(): RateLimiterStatus
}

export interface RateLimiterOptions {
  config: Pick<Config, 'rateLimit'>
  clock: Clock
  logger: Logger
  /** Shared counters for several replicas; without it counts are per process. */
  redisStore?: RateLimitStore | undefined
  /** The in-process store (default: a new one); also the fallback while Redis fails. */
  memoryStore?: RateLimitStore | undefined
  /** Back-off after a Redis failure: `initialMs` doubling per consecutive failure up to `maxMs`. */
  backoff?: { initialMs: number; maxMs: number } | undefined
}

const ALLOWED: RateLimitResult = { allowed: true }

/**
 * The request rate limits of DESIGN §7: per client address, per device, per sensor, one unit per
 * request per key, all in one atomic store call. A refused request consumes nothing.
 *
 * Redis failure policy: fail open to the in-process store and remember the failure. For the back-off
 * period (5 s doubling to 60 s by default) Redis is not called at all; when it expires exactly one
 * request probes it while the others keep using the in-process store. A request therefore never
 * queues behind an unreachable Redis: only the probe can wait, at most the client's command timeout.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const { config, clock, logger, redisStore } = options
  const limits = config.rateLimit
  const memory = options.memoryStore ?? createMemoryRateLimitStore()
  const initialMs = options.backoff?.initialMs ?? 5_000
  const maxMs = options.backoff?.maxMs ?? 60_000

  let failures = 0
  let retryAtMs = 0
  // Bumped on every change of Redis health, so that requests that failed together count as one failure.
  let epoch = 0
  let probing = false

  const keysOf = (request: RateLimitRequest): { keys: RateLimitKey[]; scopes: Map<string, { scope: RateLimitScope; id: string }> } => {
    const keys: RateLimitKey[] = []
    const scopes = new Map<string, { scope: RateLimitScope; id: string }>()
    const add = (scope: RateLimitScope, id: string, limit: number): void => {
      const key = `${scope}:${id}`
      if (scopes.has(key)) return
      scopes.set(key, { scope, id })
      keys.push({ key, limit })
    }
    add('ip', request.ip, limits.globalPerMin)
    if (request.device !== undefined) add('device', request.device.toLowerCase(), limits.devicePerMin)
    for (const sensor of request.sensors ?? []) add('sensor', String(sensor), limits.sensorPerMin)
    return { keys, scopes }
  }

  const detailOf = (scope: RateLimitScope, id: string, limit: number): string => {
    switch (scope) {
      case 'ip':
        return 'Rate limit exceeded for IP. Try again in 60 seconds.'
      case 'device':
        return `Rate limit exceeded for device. Max ${limit}/min.`
      case 'sensor':
        return `Rate limit exceeded for sensor ${id}. Max ${limit}/min.`
    }
  }

  const viaRedis = async (store: RateLimitStore, keys: RateLimitKey[], nowMs: number): Promise<RateLimitDecision> => {
    const startEpoch = epoch
    const isProbe = failures > 0
    if (isProbe) probing = true
    try {
      const decision = await store.hit(keys, nowMs)
      if (failures > 0) {
        logger.info({ failures }, 'rate limits: Redis is back; counts are shared again')
        failures = 0
        retryAtMs = 0
        epoch++
      }
      return decision
    } catch (err) {
      if (epoch === startEpoch) {
        failures++
        epoch++
        const backoffMs = Math.min(maxMs, initialMs * 2 ** (failures - 1))
        retryAtMs = clock.now() + backoffMs
        logger.warn({ err, failures, backoffMs }, 'rate limits: Redis failed; counting in process during the back-off')
      }
      return memory.hit(keys, nowMs)
    } finally {
      if (isProbe) probing = false
    }
  }

  const redisUsable = (nowMs: number): boolean => {
    if (redisStore === undefined) return false
    if (failures === 0) return true
    return nowMs >= retryAtMs && !probing
  }

  return {
    async check(request) {
      if (!limits.enabled) return ALLOWED
      const { keys, scopes } = keysOf(request)
      const nowMs = clock.now()
      const decision = redisStore !== undefined && redisUsable(nowMs) ? await viaRedis(redisStore, keys, nowMs) : await memory.hit(keys, nowMs)
      if (decision.allowed) return ALLOWED
      const refused = scopes.get(decision.key) ?? { scope: 'ip' as const, id: request.ip }
      return {
        allowed: false,
        scope: refused.scope,
        key: decision.key,
        limit: decision.limit,
        retryAfterSeconds: decision.retryAfterSeconds,
        detail: detailOf(refused.scope, refused.id, decision.limit),
      }
    },
    status() {
      if (!limits.enabled) return { enabled: false, store: 'none', redisFailures: 0 }
      const usingRedis = redisStore !== undefined && (failures === 0 || clock.now() >= retryAtMs)
      return {
        enabled: true,
        store: usingRedis ? 'redis' : 'memory',
        redisFailures: failures,
        ...(failures > 0 ? { redisRetryAtMs: retryAtMs } : {}),
      }
    },
  }
}
