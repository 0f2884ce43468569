import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { createRedisClient, type RedisClient } from '../../src/lib/adapters/redis/client.js'
import { createRedisDedupFilter } from '../../src/lib/adapters/redis/dedup-filter.js'
import { createMemoryDedupFilter, layerDedupFilters } from '../../src/lib/app/resilience/memory-dedup.js'
import { redisAvailable, REDIS_URL } from '../helpers/services.js'
import { fakeClock } from '../unit/resilience/fakes.js'


const redisUp = await redisAvailable()

const PREFIX = `ingest_t_${process.pid}_${randomBytes(4).toString('hex')}:`
const opened: RedisClient[] = []

async function connected(keyPrefix = PREFIX): Promise<RedisClient> {
  const client = createRedisClient(REDIS_URL, { keyPrefix })
  opened.push(client)
  await client.connect()
  return client
}

/** remember() is fire-and-forget: wait (briefly) until the marker shows up. */
async function eventually(check: () => Promise<boolean>, timeoutMs = 2_000): Promise<void> {
  const end = performance.now() + timeoutMs
  while (!(await check())) {
    if (performance.now() > end) throw new Error('condition not met in time')
    await new Promise((r) => setTimeout(r, 5))
  }
}

describe.skipIf(!redisUp)('Redis dedup pre-filter (real server)', () => {
  let admin: RedisClient

  beforeAll(async () => {
    admin = await connected('')
  })

  afterAll(async () => {
    if (admin) {
      let cursor = '0'
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 500)
        if (keys.length > 0) await admin.del(...keys)
        cursor = next
      } while (cursor !== '0')
      expect(await admin.keys(`${PREFIX}*`)).toEqual([])
    }
    for (const client of opened) client.disconnect()
  })

  it('remember writes dedup:msg:<key> markers with the TTL; seen() finds exactly those', async () => {
    const client = await connected()
    const filter = createRedisDedupFilter(client, { ttlSeconds: 300, clock: fakeClock() })
    const keys = ['7:1700000000.000000:21.500000', '7:evt-1', '8:evt-1']
    expect(await filter.seen(keys)).toEqual(new Set())
    filter.remember(keys.slice(0, 2))
    await eventually(async () => (await admin.exists(`${PREFIX}dedup:msg:7:evt-1`)) === 1)

    for (const k of keys.slice(0, 2)) {
      expect(await admin.get(`${PREFIX}dedup:msg:${k}`)).toBe('1')
      const ttl = await admin.ttl(`${PREFIX}dedup:msg:${k}`)
      expect(ttl).toBeGreaterThan(290)
      expect(ttl).toBeLessThanOrEqual(300)
    }
    expect(await admin.exists(`${PREFIX}dedup:msg:8:evt-1`)).toBe(0)
    expect(await filter.seen(keys)).toEqual(new Set(keys.slice(0, 2)))
    expect(filter.gate.status().healthy).toBe(true)
  })

  it('a client as serve builds it (lazy, never connected): once it is ready, the filter answers from Redis (no back-off left over from start-up)', async () => {
    await admin.set(`${PREFIX}dedup:msg:13:k`, '1', 'EX', 60)
    const lazy = createRedisClient(REDIS_URL, { keyPrefix: PREFIX })
    opened.push(lazy)
    const clock = fakeClock() // frozen: a back-off taken at start-up would last for the whole test
    const filter = createRedisDedupFilter(lazy, { ttlSeconds: 60, clock })
    // First request while the client is still connecting: no hit is fine, but it must not wait.
    const t0 = performance.now()
    await filter.seen(['13:k'])
    expect(performance.now() - t0).toBeLessThan(100)
    await eventually(() => Promise.resolve(lazy.status === 'ready'))
    expect(await filter.seen(['13:k'])).toEqual(new Set(['13:k']))
    filter.remember(['13:new'])
    await eventually(async () => (await admin.exists(`${PREFIX}dedup:msg:13:new`)) === 1)
  })

  it('markers are shared between replicas (two clients, two filters)', async () => {
    const a = createRedisDedupFilter(await connected(), { ttlSeconds: 60, clock: fakeClock() })
    const b = createRedisDedupFilter(await connected(), { ttlSeconds: 60, clock: fakeClock() })
    a.remember(['9:shared'])
    await eventually(async () => (await b.seen(['9:shared'])).has('9:shared'))
    expect(await b.seen(['9:shared', '9:other'])).toEqual(new Set(['9:shared']))
  })

  it('layered behind the memory filter: a Redis hit written by another replica is found', async () => {
    const other = createRedisDedupFilter(await connected(), { ttlSeconds: 60, clock: fakeClock() })
    const clock = fakeClock()
    const layered = layerDedupFilters(createMemoryDedupFilter({ ttlMs: 60_000, clock }), createRedisDedupFilter(await connected(), { ttlSeconds: 60, clock }))
    other.remember(['10:x'])
    await eventually(async () => (await admin.exists(`${PREFIX}dedup:msg:10:x`)) === 1)
    expect(await layered.seen(['10:x', '10:y'])).toEqual(new Set(['10:x']))
  })

  it('keyPrefix isolates tenants: a marker under another prefix is not seen', async () => {
    const mine = createRedisDedupFilter(await connected(), { ttlSeconds: 60, clock: fakeClock() })
    const theirs = createRedisDedupFilter(await connected(`${PREFIX}other:`), { ttlSeconds: 60, clock: fakeClock() })
    theirs.remember(['11:k'])
    await eventually(async () => (await admin.exists(`${PREFIX}other:dedup:msg:11:k`)) === 1)
    expect(await mine.seen(['11:k'])).toEqual(new Set())
  })

  it('Redis unreachable (closed port): seen() answers "none" fast, and the client is tried at most once per back-off period', async () => {
    const dead = createRedisClient('redis://127.0.0.1:1', { keyPrefix: PREFIX, connectTimeoutMs: 500, reconnect: { initialMs: 60_000, maxMs: 60_000 } })
    opened.push(dead)
    const sent: string[] = []
    const originalMget = dead.mget.bind(dead)
    dead.mget = ((...args: Parameters<RedisClient['mget']>) => {
      sent.push('mget')
      return originalMget(...args)
    }) as RedisClient['mget']
    const clock = fakeClock()
    const filter = createRedisDedupFilter(dead, { ttlSeconds: 300, clock })

    // Upper bounds: skipping Redis entirely while it is not connected is allowed too.
    let slowest = 0
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now()
      expect(await filter.seen(['1:a', '1:b'])).toEqual(new Set())
      slowest = Math.max(slowest, performance.now() - t0)
      clock.advance(10) // 500 ms of calls, inside the first 1 s back-off
    }
    expect(slowest).toBeLessThan(100)
    expect(sent.length).toBeLessThanOrEqual(1)
    expect(filter.gate.attempts).toBeLessThanOrEqual(1)

    // remember() is skipped during the back-off too and never throws
    expect(() => filter.remember(['1:a'])).not.toThrow()
    expect(filter.gate.attempts).toBeLessThanOrEqual(1)

    // the next back-off period: at most one more attempt however many calls
    clock.advance(500)
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now()
      expect(await filter.seen(['1:a'])).toEqual(new Set())
      slowest = Math.max(slowest, performance.now() - t0)
      clock.advance(50) // 1 s in all: inside the doubled (2 s) back-off
    }
    expect(sent.length).toBeLessThanOrEqual(2)
    expect(filter.gate.attempts).toBeLessThanOrEqual(2)
    expect(slowest).toBeLessThan(100)
  })

  it('recovers: once Redis answers again the probe succeeds and markers are used', async () => {
    const client = await connected()
    const clock = fakeClock()
    const filter = createRedisDedupFilter(client, { ttlSeconds: 60, clock })
    // Simulate an outage by failing one command, then let the real server answer.
    const originalMget = client.mget.bind(client)
    let failNext = true
    client.mget = ((...args: Parameters<RedisClient['mget']>) => {
      if (failNext) {
        failNext = false
        return Promise.reject(new Error('Command timed out'))
      }
      return originalMget(...args)
    }) as RedisClient['mget']
    await admin.set(`${PREFIX}dedup:msg:12:k`, '1', 'EX', 60)
    expect(await filter.seen(['12:k'])).toEqual(new Set())
    expect(filter.gate.status().healthy).toBe(false)
    clock.advance(1_000)
    expect(await filter.seen(['12:k'])).toEqual(new Set(['12:k']))
    expect(filter.gate.status().healthy).toBe(true)
  })
})
