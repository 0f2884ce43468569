import { describe, expect, it } from 'vitest'

import { createMemoryRateLimitStore } from '../../../src/lib/app/rate-limit/memory-store.js'
import type { RateLimitKey, RateLimitStore } from '../../../src/lib/ports/rate-limit-store.js'
import { T0, W } from './fixtures.js'

async function admitted(store: RateLimitStore, keys: RateLimitKey[], nowMs: number, times: number): Promise<number> {
  let n = 0
  for (let i = 0; i < times; i++) if ((await store.hit(keys, nowMs)).allowed) n++
  return n
}

const sensor = (limit: number, id = '1'): RateLimitKey => ({ key: `sensor:${id}`, limit })

describe('in-process rate-limit store: windows', () => {
  it('admits the limit within a window and refuses the next one', async () => {
    const store = createMemoryRateLimitStore()
    expect(await admitted(store, [sensor(3)], T0 + 1000, 3)).toBe(3)
    expect(await store.hit([sensor(3)], T0 + 59_999)).toMatchObject({ allowed: false, key: 'sensor:1', limit: 3 })
  })

  it('carries the previous window weighted by the time left of it', async () => {
    const store = createMemoryRateLimitStore()
    expect(await admitted(store, [sensor(10)], T0 + 100, 10)).toBe(10)
    // At the next window start the previous 10 still count whole.
    expect((await store.hit([sensor(10)], T0 + W)).allowed).toBe(false)
    // Half way through: floor(10 × 0.5) = 5 weighted, so 5 more fit.
    expect(await admitted(store, [sensor(10)], T0 + W + 30_000, 20)).toBe(5)
    // Two windows later the first window is gone; the second (5) weighs floor(5 × 0.5) = 2.
    expect(await admitted(store, [sensor(10)], T0 + 2 * W + 30_000, 20)).toBe(8)
    // Three empty windows: a fresh start.
    expect(await admitted(store, [sensor(10)], T0 + 5 * W, 20)).toBe(10)
  })

  it('does not count refused requests, so a refused flood does not extend the block', async () => {
    const store = createMemoryRateLimitStore()
    expect(await admitted(store, [sensor(2)], T0, 2)).toBe(2)
    expect(await admitted(store, [sensor(2)], T0 + 1000, 500)).toBe(0)
    // The legacy limiter would carry 502 into the next window and block it all; here prev is 2.
    expect((await store.hit([sensor(2)], T0 + W + 30_000)).allowed).toBe(true)
  })

  it('answers retryAfterSeconds from the window, the request then being admitted', async () => {
    const store = createMemoryRateLimitStore()
    await admitted(store, [sensor(2)], T0, 2)
    const refused = await store.hit([sensor(2)], T0 + 10_000)
    expect(refused).toEqual({ allowed: false, key: 'sensor:1', limit: 2, retryAfterSeconds: 51 })
    expect((await store.hit([sensor(2)], T0 + 10_000 + 50_000)).allowed).toBe(false)
    expect((await store.hit([sensor(2)], T0 + 10_000 + 51_000)).allowed).toBe(true)

    const other = createMemoryRateLimitStore()
    await admitted(other, [sensor(10)], T0, 10)
    expect((await other.hit([sensor(10)], T0 + W + 1000)).allowed).toBe(true)
    expect(await other.hit([sensor(10)], T0 + W + 1000)).toMatchObject({ allowed: false, retryAfterSeconds: 6 })
    expect((await other.hit([sensor(10)], T0 + W + 6000)).allowed).toBe(false)
    expect((await other.hit([sensor(10)], T0 + W + 7000)).allowed).toBe(true)
  })
})

describe('in-process rate-limit store: several keys', () => {
  const ip = { key: 'ip:10.0.0.1', limit: 5 }
  const device = { key: 'device:abc', limit: 1 }

  it('refuses on the first key over its limit and then counts no key at all', async () => {
    const store = createMemoryRateLimitStore()
    expect((await store.hit([ip, device, sensor(5)], T0)).allowed).toBe(true)
    expect(await store.hit([ip, device, sensor(5)], T0)).toMatchObject({ allowed: false, key: 'device:abc', limit: 1 })
    expect(await store.hit([ip, device, sensor(5)], T0)).toMatchObject({ allowed: false, key: 'device:abc' })
    // ip and sensor were counted once (the admitted request), not for the two refused ones.
    expect(await admitted(store, [ip], T0, 10)).toBe(4)
    expect(await admitted(store, [sensor(5)], T0, 10)).toBe(4)
  })

  it('reports the earliest key in check order when several are over', async () => {
    const store = createMemoryRateLimitStore()
    await admitted(store, [{ key: 'ip:x', limit: 1 }, sensor(1)], T0, 1)
    expect(await store.hit([{ key: 'ip:x', limit: 1 }, sensor(1)], T0)).toMatchObject({ key: 'ip:x' })
    expect(await store.hit([sensor(1), { key: 'ip:x', limit: 1 }], T0)).toMatchObject({ key: 'sensor:1' })
  })
})

describe('in-process rate-limit store: bounded memory', () => {
  it('sweeps keys of every type once their counts no longer matter', async () => {
    const store = createMemoryRateLimitStore({ cleanupIntervalMs: W })
    for (let i = 0; i < 300; i++) {
      const kind = ['ip', 'device', 'sensor'][i % 3] ?? 'ip'
      await store.hit([{ key: `${kind}:${i}`, limit: 10 }], T0)
    }
    expect(store.size()).toBe(300)
    // Next window: the keys still weigh in (prev), so they stay.
    await store.hit([{ key: 'ip:fresh', limit: 10 }], T0 + W)
    expect(store.size()).toBe(301)
    // Two windows on, the first 300 read as zero: the sweep drops them whatever their type.
    await store.hit([{ key: 'ip:later', limit: 10 }], T0 + 2 * W + 1)
    expect(store.size()).toBe(2)
  })

  it('keeps within the hard cap by evicting the least recently counted key', async () => {
    const store = createMemoryRateLimitStore({ maxEntries: 100 })
    const cold = sensor(1, 'cold')
    const hot = sensor(21, 'hot')
    await store.hit([cold], T0)
    await store.hit([hot], T0)
    for (let i = 0; i < 1000; i++) {
      await store.hit([{ key: `ip:${i}`, limit: 10 }], T0 + i)
      if (i % 50 === 0) expect((await store.hit([hot], T0 + i)).allowed).toBe(true)
      expect(store.size()).toBeLessThanOrEqual(100)
    }
    expect(store.size()).toBe(100)
    // 'hot' was counted all along (21 times): kept with its count, so the 22nd is refused.
    expect((await store.hit([hot], T0 + 2000)).allowed).toBe(false)
    // 'cold' was the least recently counted: forgotten, so admitted again (the cap fails open).
    expect((await store.hit([cold], T0 + 2000)).allowed).toBe(true)
    // A key counted recently survives with its count: 1 of 10 used, 9 left.
    expect(await admitted(store, [{ key: 'ip:999', limit: 10 }], T0 + 2000, 20)).toBe(9)
  })
})
