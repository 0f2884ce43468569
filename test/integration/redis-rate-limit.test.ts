import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'

import fc from 'fast-check'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createRedisClient, defineScript, evalScript, type RedisClient } from '../../src/lib/adapters/redis/client.js'
import { createRedisRateLimitStore, RATE_LIMIT_TTL_MS } from '../../src/lib/adapters/redis/rate-limit-store.js'
import { createMemoryRateLimitStore } from '../../src/lib/app/rate-limit/memory-store.js'
import { createRateLimiter } from '../../src/lib/app/rate-limit/rate-limiter.js'
import type { RateLimitKey, RateLimitStore } from '../../src/lib/ports/rate-limit-store.js'
import { redisAvailable, REDIS_URL } from '../helpers/services.js'
import { fakeClock, rateLimitConfig, silentLogger, T0, W } from '../unit/rate-limit/fixtures.js'


const redisUp = await redisAvailable()

const PREFIX = `ingest_t_${process.pid}_${randomBytes(4).toString('hex')}:`
const logger = silentLogger()
const opened: RedisClient[] = []

async function connected(keyPrefix = PREFIX): Promise<RedisClient> {
  const client = createRedisClient(REDIS_URL, { keyPrefix })
  opened.push(client)
  await client.connect()
  return client
}

/** A store that counts its calls (to show which one answered). */
function counting(store: RateLimitStore): RateLimitStore & { calls: number } {
  const wrapped = {
    calls: 0,
    hit: (keys: readonly RateLimitKey[], nowMs: number) => {
      wrapped.calls++
      return store.hit(keys, nowMs)
    },
  }
  return wrapped
}

describe.skipIf(!redisUp)('rate limits in Redis (real server)', () => {
  let admin: RedisClient

  beforeAll(async () => {
    admin = await connected('')
  })

  afterAll(async () => {
    let cursor = '0'
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 500)
      if (keys.length > 0) await admin.del(...keys)
      cursor = next
    } while (cursor !== '0')
    expect(await admin.keys(`${PREFIX}*`)).toEqual([])
    for (const client of opened) client.disconnect()
  })

  it('shares counts between two limiter instances (two replicas)', async () => {
    const clock = fakeClock(T0 + 1000)
    const config = rateLimitConfig({ sensorPerMin: 3 })
    const storeA = counting(createRedisRateLimitStore(await connected()))
    const storeB = counting(createRedisRateLimitStore(await connected()))
    const a = createRateLimiter({ config, clock, logger, redisStore: storeA })
    const b = createRateLimiter({ config, clock, logger, redisStore: storeB })
    const request = { ip: '192.0.2.10', sensors: [42] }

    const answers = []
    for (const limiter of [a, b, a, b, a, b]) answers.push(await limiter.check(request))
    expect(answers.map((r) => r.allowed)).toEqual([true, true, true, false, false, false])
    expect(answers[3]).toMatchObject({ scope: 'sensor', limit: 3, retryAfterSeconds: 60, detail: 'Rate limit exceeded for sensor 42. Max 3/min.' })
    expect(storeA.calls + storeB.calls).toBe(6)

    // Without Redis each replica would have admitted 3: the sharing is what refused above.
    const alone = [createRateLimiter({ config, clock, logger }), createRateLimiter({ config, clock, logger })]
    let admittedAlone = 0
    for (let i = 0; i < 3; i++) for (const limiter of alone) if ((await limiter.check(request)).allowed) admittedAlone++
    expect(admittedAlone).toBe(6)

    // The window slides for both: half way through the next window prev 3 weighs 1, so 2 fit.
    clock.set(T0 + W + 30_000)
    const later = []
    for (const limiter of [b, a, b]) later.push((await limiter.check(request)).allowed)
    expect(later).toEqual([true, true, false])
  })

  it('stores prefixed hashes with a 120 s TTL and counts only admitted requests', async () => {
    const store = createRedisRateLimitStore(await connected())
    const keys = [
      { key: 'ip:198.51.100.1', limit: 10 },
      { key: 'device:dev-1', limit: 1 },
    ]
    expect(await store.hit(keys, T0 + 5)).toEqual({ allowed: true })
    expect(await store.hit(keys, T0 + 6)).toMatchObject({ allowed: false, key: 'device:dev-1', limit: 1 })
    const ipKey = `${PREFIX}ratelimit:ip:198.51.100.1`
    expect(await admin.hgetall(ipKey)).toEqual({ p: '0', c: '1', w: String(T0) })
    expect(await admin.hgetall(`${PREFIX}ratelimit:device:dev-1`)).toEqual({ p: '0', c: '1', w: String(T0) })
    const ttl = await admin.pttl(ipKey)
    expect(ttl).toBeGreaterThan(RATE_LIMIT_TTL_MS - 5_000)
    expect(ttl).toBeLessThanOrEqual(RATE_LIMIT_TTL_MS)
  })

  it('loads a script on first use (NOSCRIPT -> EVAL) and then runs it by EVALSHA, keys prefixed', async () => {
    const client = await connected()
    const script = defineScript(`-- ${PREFIX}\nredis.call('SET', KEYS[1], ARGV[1]) return KEYS[1]`)
    expect(await admin.script('EXISTS', script.sha)).toEqual([0])
    expect(await evalScript(client, script, ['probe'], ['1'])).toBe(`${PREFIX}probe`)
    expect(await admin.script('EXISTS', script.sha)).toEqual([1])
    expect(await evalScript(client, script, ['probe'], ['2'])).toBe(`${PREFIX}probe`)
    expect(await admin.get(`${PREFIX}probe`)).toBe('2')
  })

  it('answers exactly as the in-process store for any sequence of requests', async () => {
    const client = await connected()
    let run = 0
    const retryAfters = new Set<number>()
    const keyPool: RateLimitKey[] = [
      { key: 'ip:a', limit: 6 },
      { key: 'device:d', limit: 4 },
      { key: 'sensor:1', limit: 3 },
      { key: 'sensor:2', limit: 2 },
    ]
    const step = fc.record({ advanceMs: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 45_000 })), pick: fc.subarray(keyPool, { minLength: 1 }) })
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: W - 1 }), fc.array(step, { minLength: 1, maxLength: 40 }), async (offset, steps) => {
        run++
        const redis = createRedisRateLimitStore(client, { namespace: `ratelimit:diff${run}:` })
        const memory = createMemoryRateLimitStore()
        let now = T0 + offset
        for (const { advanceMs, pick } of steps) {
          now += advanceMs
          const decision = await redis.hit(pick, now)
          expect(decision).toEqual(await memory.hit(pick, now))
          if (!decision.allowed) retryAfters.add(decision.retryAfterSeconds)
        }
      }),
      { numRuns: 60 },
    )
    // The sequences did reach refusals in both windows' regimes, not only admissions.
    expect(retryAfters.size).toBeGreaterThan(5)
  })
})

describe('rate limits with Redis unreachable (closed port)', () => {
  it('answers every request in < 100 ms from the in-process store and retries Redis once per back-off period', async () => {
    const client = createRedisClient('redis://127.0.0.1:1', { keyPrefix: PREFIX, connectTimeoutMs: 5_000 })
    opened.push(client)
    try {
      const store = counting(createRedisRateLimitStore(client))
      const clock = fakeClock()
      const limiter = createRateLimiter({ config: rateLimitConfig({ sensorPerMin: 2 }), clock, logger, redisStore: store })
      const callsAt: number[] = []
      let slowest = 0
      for (let t = 0; t <= 16_000; t += 250) {
        clock.set(T0 + t)
        for (let i = 0; i < 4; i++) {
          const before = store.calls
          const started = performance.now()
          const r = await limiter.check({ ip: '203.0.113.5', sensors: [t] })
          slowest = Math.max(slowest, performance.now() - started)
          // The in-process store answers and still enforces the limit (2 per sensor).
          expect(r.allowed).toBe(i < 2)
          if (store.calls > before) callsAt.push(t)
        }
      }
      expect(slowest).toBeLessThan(100)
      // Back-off 5 s then 10 s: Redis is tried at 0, 5 s and 15 s, never in between.
      expect(callsAt).toEqual([0, 5_000, 15_000])
      expect(limiter.status()).toMatchObject({ store: 'memory', redisFailures: 3, redisRetryAtMs: T0 + 35_000 })
    } finally {
      client.disconnect()
    }
  })

  it('fails at once, without queueing, even on a client that would queue offline', async () => {
    // A plain ioredis client queues commands while disconnected; the store must not wait on that queue.
    const queueing = new Redis('redis://127.0.0.1:1', { lazyConnect: true, retryStrategy: () => 1000 })
    queueing.on('error', () => undefined)
    opened.push(queueing)
    const store = createRedisRateLimitStore(queueing)
    const started = performance.now()
    await expect(store.hit([{ key: 'ip:a', limit: 1 }], T0)).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' })
    expect(performance.now() - started).toBeLessThan(100)
    queueing.disconnect()
  })
})
