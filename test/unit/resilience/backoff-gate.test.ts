import { describe, expect, it } from 'vitest'

import { BackoffGate } from '../../../src/lib/adapters/redis/backoff-gate.js'
import type { RedisClient } from '../../../src/lib/adapters/redis/client.js'
import { createRedisDedupFilter } from '../../../src/lib/adapters/redis/dedup-filter.js'
import { deferred, fakeClock, settle, T0 } from './fakes.js'

const down = () => Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:6379'))

function gate(initialMs = 1_000, maxMs = 30_000) {
  const clock = fakeClock()
  const warnings: unknown[] = []
  const infos: unknown[] = []
  const g = new BackoffGate(clock, { initialMs, maxMs, name: 'test', logger: { warn: (o: unknown) => warnings.push(o), info: (o: unknown) => infos.push(o) } })
  return { g, clock, warnings, infos }
}

describe('BackoffGate', () => {
  it('healthy: runs every call and returns its answer', async () => {
    const { g } = gate()
    await expect(g.run(() => Promise.resolve(1), 0)).resolves.toBe(1)
    await expect(g.run(() => Promise.resolve(2), 0)).resolves.toBe(2)
    expect(g.attempts).toBe(2)
    expect(g.status()).toEqual({ healthy: true, failures: 0, retryAt: null })
  })

  it('a failure returns the fallback and starts a back-off during which fn is never called', async () => {
    const { g, clock } = gate(1_000)
    await expect(g.run(down, 'fallback')).resolves.toBe('fallback')
    expect(g.status()).toEqual({ healthy: false, failures: 1, retryAt: new Date(T0 + 1_000).toISOString() })
    let calls = 0
    for (let i = 0; i < 20; i++) {
      clock.advance(49)
      await expect(
        g.run(() => {
          calls++
          return Promise.resolve('redis')
        }, 'fallback'),
      ).resolves.toBe('fallback')
    }
    expect(calls).toBe(0)
    expect(g.attempts).toBe(1)
  })

  it('at most one attempt per back-off period, the period doubling up to the cap', async () => {
    const { g, clock } = gate(1_000, 4_000)
    const attemptsAt: number[] = []
    // Call every 100 ms for 20 s against a Redis that stays down.
    for (let t = 0; t <= 20_000; t += 100) {
      clock.set(T0 + t)
      const before = g.attempts
      await g.run(down, null)
      if (g.attempts > before) attemptsAt.push(t)
    }
    // failures: 1 -> 1 s, 2 -> 2 s, 3 -> 4 s, then capped at 4 s
    expect(attemptsAt).toEqual([0, 1_000, 3_000, 7_000, 11_000, 15_000, 19_000])
    const gaps = attemptsAt.slice(1).map((t, i) => t - (attemptsAt[i] as number))
    for (const gap of gaps) expect(gap).toBeLessThanOrEqual(4_000)
  })

  it('after the back-off exactly one caller probes while the others get the fallback', async () => {
    const { g, clock } = gate(1_000)
    await g.run(down, 'fallback')
    clock.advance(1_000)
    const probe = deferred<string>()
    let calls = 0
    const slow = () => {
      calls++
      return probe.promise
    }
    const first = g.run(slow, 'fallback')
    const rest = await Promise.all(Array.from({ length: 10 }, () => g.run(slow, 'fallback')))
    expect(rest).toEqual(Array(10).fill('fallback'))
    expect(calls).toBe(1)
    probe.resolve('redis')
    await expect(first).resolves.toBe('redis')
  })

  it('the probe slot is released only by the probe (not by an older call that ends meanwhile)', async () => {
    const { g, clock } = gate(1_000)
    const older = deferred<string>()
    const stale = g.run(() => older.promise, 'fallback') // started while healthy
    await g.run(down, 'fallback') // failures 1, back-off 1 s
    clock.advance(1_000)
    const probe = deferred<string>()
    let probes = 0
    const slowProbe = () => {
      probes++
      return probe.promise
    }
    const first = g.run(slowProbe, 'fallback')
    expect(probes).toBe(1)
    older.reject(new Error('Command timed out')) // failures 2, back-off 2 s
    await stale
    clock.advance(2_000)
    // the first probe is still out: no second one may start
    await expect(
      g.run(() => {
        probes++
        return Promise.resolve('second probe')
      }, 'fallback'),
    ).resolves.toBe('fallback')
    expect(probes).toBe(1)
    probe.resolve('redis')
    await first
  })

  it('a successful probe recovers: every call runs again and the back-off resets', async () => {
    const { g, clock, infos } = gate(1_000)
    await g.run(down, 0)
    clock.advance(1_000)
    await g.run(down, 0) // failures 2: 2 s
    clock.advance(2_000)
    await expect(g.run(() => Promise.resolve(7), 0)).resolves.toBe(7)
    expect(g.status()).toEqual({ healthy: true, failures: 0, retryAt: null })
    expect(infos).toHaveLength(1)
    await expect(g.run(() => Promise.resolve(8), 0)).resolves.toBe(8)
    // a new failure starts again from the initial period
    await g.run(down, 0)
    expect(g.status().retryAt).toBe(new Date(clock.now() + 1_000).toISOString())
  })

  it('a failed probe doubles the back-off', async () => {
    const { g, clock } = gate(1_000)
    await g.run(down, 0)
    clock.advance(1_000)
    await g.run(down, 0)
    expect(g.status()).toEqual({ healthy: false, failures: 2, retryAt: new Date(clock.now() + 2_000).toISOString() })
    clock.advance(1_999)
    let called = false
    await g.run(() => {
      called = true
      return Promise.resolve()
    }, undefined)
    expect(called).toBe(false)
  })

  it('warns once per outage, not once per failure', async () => {
    const { g, clock, warnings } = gate(1_000)
    for (let i = 0; i < 5; i++) {
      await g.run(down, 0)
      clock.advance(60_000)
    }
    expect(warnings).toHaveLength(1)
  })
})

/** The subset of ioredis the dedup filter uses, recording calls. */
function fakeRedis(opts: { failing?: boolean; store?: Map<string, { value: string; ex: number }> } = {}) {
  const store = opts.store ?? new Map<string, { value: string; ex: number }>()
  const calls: string[] = []
  const client = {
    // as a connected ioredis client reports it
    status: 'ready',
    connect: () => Promise.resolve(),
    failing: opts.failing ?? false,
    calls,
    store,
    mget(...keys: string[]): Promise<Array<string | null>> {
      calls.push(`mget ${keys.join(' ')}`)
      if (client.failing) return Promise.reject(new Error("Stream isn't writeable and enableOfflineQueue options is false"))
      return Promise.resolve(keys.map((k) => store.get(k)?.value ?? null))
    },
    pipeline() {
      const ops: Array<[string, string, number]> = []
      const pipe = {
        set(key: string, value: string, ex: 'EX', seconds: number) {
          expect(ex).toBe('EX')
          ops.push([key, value, seconds])
          return pipe
        },
        exec(): Promise<Array<[Error | null, unknown]>> {
          calls.push(`pipeline ${ops.map(([k]) => `set ${k}`).join(' ')}`)
          if (client.failing) return Promise.reject(new Error('Connection is closed.'))
          for (const [k, value, ex] of ops) store.set(k, { value, ex })
          return Promise.resolve(ops.map(() => [null, 'OK'] as [Error | null, unknown]))
        },
      }
      return pipe
    },
  }
  return client
}

describe('createRedisDedupFilter (fake client)', () => {
  it('remember writes dedup:msg:<key> = 1 with EX ttl; seen reads them back', async () => {
    const clock = fakeClock()
    const redis = fakeRedis()
    const f = createRedisDedupFilter(redis as unknown as RedisClient, { ttlSeconds: 300, clock })
    expect(f.kind).toBe('redis')
    f.remember(['5:1700000000.000000:1.000000', '5:abc'])
    await settle()
    expect(redis.store).toEqual(
      new Map([
        ['dedup:msg:5:1700000000.000000:1.000000', { value: '1', ex: 300 }],
        ['dedup:msg:5:abc', { value: '1', ex: 300 }],
      ]),
    )
    expect(await f.seen(['5:abc', '5:nope'])).toEqual(new Set(['5:abc']))
    expect(redis.calls.at(-1)).toBe('mget dedup:msg:5:abc dedup:msg:5:nope')
  })

  it('no keys: no Redis call', async () => {
    const clock = fakeClock()
    const redis = fakeRedis()
    const f = createRedisDedupFilter(redis as unknown as RedisClient, { ttlSeconds: 300, clock })
    expect(await f.seen([])).toEqual(new Set())
    f.remember([])
    await settle()
    expect(redis.calls).toEqual([])
  })

  it('Redis failing: seen answers "none" and Redis is not asked again during the back-off', async () => {
    const clock = fakeClock()
    const redis = fakeRedis({ failing: true })
    const f = createRedisDedupFilter(redis as unknown as RedisClient, { ttlSeconds: 300, clock })
    expect(await f.seen(['a'])).toEqual(new Set())
    expect(await f.seen(['a'])).toEqual(new Set())
    f.remember(['a'])
    await settle()
    expect(redis.calls).toEqual(['mget dedup:msg:a'])
    expect(f.gate.status().healthy).toBe(false)
    // back again after the back-off: one probe, then normal service
    redis.failing = false
    clock.advance(1_000)
    f.remember(['a'])
    await settle()
    expect(await f.seen(['a', 'b'])).toEqual(new Set(['a']))
    expect(f.gate.status().healthy).toBe(true)
  })

  it('a failed pipelined SET counts as a Redis failure (back-off), never throws to the caller', async () => {
    const clock = fakeClock()
    const redis = fakeRedis({ failing: true })
    const f = createRedisDedupFilter(redis as unknown as RedisClient, { ttlSeconds: 300, clock })
    expect(() => f.remember(['a'])).not.toThrow()
    await settle()
    expect(f.gate.status().failures).toBe(1)
  })
})
