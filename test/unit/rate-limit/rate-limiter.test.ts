import { describe, expect, it } from 'vitest'

import { createMemoryRateLimitStore } from '../../../src/lib/app/rate-limit/memory-store.js'
import { createRateLimiter, type RateLimitResult } from '../../../src/lib/app/rate-limit/rate-limiter.js'
import type { RateLimitDecision } from '../../../src/lib/ports/rate-limit-store.js'
import { failing, fakeClock, rateLimitConfig, silentLogger, spyStore, T0 } from './fixtures.js'

const logger = silentLogger()

async function count(results: Promise<RateLimitResult>[]): Promise<number> {
  return (await Promise.all(results)).filter((r) => r.allowed).length
}

describe('rate limiter: keys and legacy answers', () => {
  it('refuses per IP with the legacy detail and the computed Retry-After', async () => {
    const clock = fakeClock(T0 + 10_000)
    const limiter = createRateLimiter({ config: rateLimitConfig({ globalPerMin: 2 }), clock, logger })
    expect((await limiter.check({ ip: '1.2.3.4' })).allowed).toBe(true)
    expect((await limiter.check({ ip: '1.2.3.4' })).allowed).toBe(true)
    expect(await limiter.check({ ip: '1.2.3.4' })).toEqual({
      allowed: false,
      scope: 'ip',
      key: 'ip:1.2.3.4',
      limit: 2,
      retryAfterSeconds: 51,
      detail: 'Rate limit exceeded for IP. Try again in 60 seconds.',
    })
    expect((await limiter.check({ ip: '5.6.7.8' })).allowed).toBe(true)
  })

  it('refuses per device (case-insensitive) with "Max <n>/min."', async () => {
    const limiter = createRateLimiter({ config: rateLimitConfig({ devicePerMin: 1 }), clock: fakeClock(), logger })
    expect((await limiter.check({ ip: 'a', device: 'ABC-1' })).allowed).toBe(true)
    expect(await limiter.check({ ip: 'b', device: 'abc-1' })).toMatchObject({
      allowed: false,
      scope: 'device',
      key: 'device:abc-1',
      limit: 1,
      detail: 'Rate limit exceeded for device. Max 1/min.',
    })
  })

  it('refuses per sensor, each distinct sensor counting once per request', async () => {
    const limiter = createRateLimiter({ config: rateLimitConfig({ sensorPerMin: 2 }), clock: fakeClock(), logger })
    expect((await limiter.check({ ip: 'a', sensors: [7, 7, 7, 8] })).allowed).toBe(true)
    expect((await limiter.check({ ip: 'a', sensors: [7] })).allowed).toBe(true)
    expect(await limiter.check({ ip: 'a', sensors: [8, 7] })).toMatchObject({
      allowed: false,
      scope: 'sensor',
      key: 'sensor:7',
      detail: 'Rate limit exceeded for sensor 7. Max 2/min.',
    })
    // sensor 8 was not counted by the refused request: it has one unit left.
    expect((await limiter.check({ ip: 'a', sensors: [8] })).allowed).toBe(true)
    expect((await limiter.check({ ip: 'a', sensors: [8] })).allowed).toBe(false)
  })

  it('checks the IP first, then the device, then the sensors', async () => {
    const store = spyStore(() => Promise.resolve({ allowed: true }))
    const limiter = createRateLimiter({ config: rateLimitConfig(), clock: fakeClock(), logger, redisStore: store })
    await limiter.check({ ip: '9.9.9.9', device: 'D', sensors: [3, 1, 3] })
    expect(store.calls[0]?.keys).toEqual(['ip:9.9.9.9', 'device:d', 'sensor:3', 'sensor:1'])
  })

  it('is off entirely when disabled', async () => {
    const store = spyStore(() => Promise.resolve({ allowed: false, key: 'ip:a', limit: 1, retryAfterSeconds: 60 }))
    const limiter = createRateLimiter({ config: rateLimitConfig({ enabled: false, globalPerMin: 1 }), clock: fakeClock(), logger, redisStore: store })
    expect(await count(Array.from({ length: 50 }, () => limiter.check({ ip: 'a', sensors: [1] })))).toBe(50)
    expect(store.calls).toHaveLength(0)
    expect(limiter.status()).toEqual({ enabled: false, store: 'none', redisFailures: 0 })
  })

  it('uses the shared store when it answers', async () => {
    const refusal: RateLimitDecision = { allowed: false, key: 'sensor:4', limit: 60, retryAfterSeconds: 12 }
    const store = spyStore(() => Promise.resolve(refusal))
    const limiter = createRateLimiter({ config: rateLimitConfig(), clock: fakeClock(), logger, redisStore: store })
    expect(await limiter.check({ ip: 'a', sensors: [4] })).toMatchObject({ allowed: false, scope: 'sensor', retryAfterSeconds: 12, detail: 'Rate limit exceeded for sensor 4. Max 60/min.' })
    expect(limiter.status()).toEqual({ enabled: true, store: 'redis', redisFailures: 0 })
  })
})

describe('rate limiter: Redis failure policy', () => {
  it('falls back to the in-process store and calls Redis at most once per back-off period (5 s doubling to 60 s)', async () => {
    const clock = fakeClock()
    const store = spyStore(failing)
    const limiter = createRateLimiter({ config: rateLimitConfig({ sensorPerMin: 1_000_000 }), clock, logger, redisStore: store })
    const expectedCalls: number[] = []
    // Failure k sets a back-off of min(60 s, 5 s × 2^(k-1)): calls at 0, 5, 15, 35, 75, 135, 195 s.
    const callTimes = [0, 5, 15, 35, 75, 135, 195].map((s) => T0 + s * 1000)
    for (let t = T0; t <= T0 + 200_000; t += 500) {
      clock.set(t)
      for (let i = 0; i < 3; i++) {
        const r = await limiter.check({ ip: 'a', sensors: [1] })
        expect(r.allowed).toBe(true)
      }
      if (callTimes.includes(t)) expectedCalls.push(t)
    }
    expect(store.calls.map((c) => c.nowMs)).toEqual(expectedCalls)
    expect(limiter.status()).toMatchObject({ enabled: true, store: 'memory', redisFailures: 7, redisRetryAtMs: T0 + 255_000 })
  })

  it('still enforces the limits from the in-process store while Redis is down', async () => {
    const clock = fakeClock()
    const store = spyStore(failing)
    const limiter = createRateLimiter({ config: rateLimitConfig({ sensorPerMin: 3 }), clock, logger, redisStore: store })
    const results = []
    for (let i = 0; i < 5; i++) results.push(await limiter.check({ ip: 'a', sensors: [1] }))
    expect(results.map((r) => r.allowed)).toEqual([true, true, true, false, false])
    expect(results[4]).toMatchObject({ scope: 'sensor', detail: 'Rate limit exceeded for sensor 1. Max 3/min.' })
    expect(store.calls).toHaveLength(1)
  })

  it('lets one probe through when the back-off ends; the others meanwhile use the in-process store', async () => {
    const clock = fakeClock()
    let release: (d: RateLimitDecision) => void = () => undefined
    let mode: 'fail' | 'hold' | 'ok' = 'fail'
    const store = spyStore(() => {
      if (mode === 'fail') return failing()
      if (mode === 'ok') return Promise.resolve({ allowed: true })
      return new Promise<RateLimitDecision>((resolve) => (release = resolve))
    })
    const limiter = createRateLimiter({ config: rateLimitConfig(), clock, logger, redisStore: store })
    await limiter.check({ ip: 'a' })
    expect(store.calls).toHaveLength(1)
    mode = 'hold'
    clock.advance(4_999)
    await limiter.check({ ip: 'a' })
    expect(store.calls).toHaveLength(1)
    clock.advance(1)
    const probe = limiter.check({ ip: 'a' })
    const others = await Promise.all(Array.from({ length: 10 }, () => limiter.check({ ip: 'b' })))
    expect(others.every((r) => r.allowed)).toBe(true)
    expect(store.calls).toHaveLength(2)
    mode = 'ok'
    release({ allowed: true })
    expect((await probe).allowed).toBe(true)
    // Healthy again: every request goes to Redis.
    await Promise.all(Array.from({ length: 3 }, () => limiter.check({ ip: 'c' })))
    expect(store.calls).toHaveLength(5)
    expect(limiter.status()).toEqual({ enabled: true, store: 'redis', redisFailures: 0 })
  })

  it('counts requests that failed together as one failure', async () => {
    const clock = fakeClock()
    const store = spyStore(failing)
    const limiter = createRateLimiter({ config: rateLimitConfig(), clock, logger, redisStore: store })
    await Promise.all(Array.from({ length: 10 }, () => limiter.check({ ip: 'a' })))
    expect(store.calls).toHaveLength(10)
    expect(limiter.status()).toMatchObject({ redisFailures: 1, redisRetryAtMs: T0 + 5_000 })
  })

  it('honours a configured back-off', async () => {
    const clock = fakeClock()
    const store = spyStore(failing)
    const limiter = createRateLimiter({ config: rateLimitConfig(), clock, logger, redisStore: store, backoff: { initialMs: 100, maxMs: 150 } })
    for (let t = 0; t <= 500; t += 50) {
      clock.set(T0 + t)
      await limiter.check({ ip: 'a' })
    }
    expect(store.calls.map((c) => c.nowMs - T0)).toEqual([0, 100, 250, 400])
  })

  it('keeps the in-process counts when no Redis is configured', async () => {
    const memory = createMemoryRateLimitStore()
    const limiter = createRateLimiter({ config: rateLimitConfig({ globalPerMin: 1 }), clock: fakeClock(), logger, memoryStore: memory })
    expect((await limiter.check({ ip: 'a' })).allowed).toBe(true)
    expect((await limiter.check({ ip: 'a' })).allowed).toBe(false)
    expect(memory.size()).toBe(1)
    expect(limiter.status()).toEqual({ enabled: true, store: 'memory', redisFailures: 0 })
  })
})
