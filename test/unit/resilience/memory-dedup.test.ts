import { describe, expect, it } from 'vitest'

import { createMemoryDedupFilter, layerDedupFilters } from '../../../src/lib/app/resilience/memory-dedup.js'
import type { DedupFilter } from '../../../src/lib/ports/dedup-filter.js'
import { fakeClock } from './fakes.js'

/** A filter that records what it was asked and remembers into a plain set. */
function spyFilter(kind: 'memory' | 'redis', known: Iterable<string> = []): DedupFilter & { asked: string[][]; remembered: string[][]; known: Set<string> } {
  const f = {
    kind,
    known: new Set(known),
    asked: [] as string[][],
    remembered: [] as string[][],
    seen(keys: readonly string[]): Promise<Set<string>> {
      f.asked.push([...keys])
      return Promise.resolve(new Set(keys.filter((k) => f.known.has(k))))
    },
    remember(keys: readonly string[]) {
      f.remembered.push([...keys])
      for (const k of keys) f.known.add(k)
    },
  }
  return f
}

describe('createMemoryDedupFilter', () => {
  it('knows only remembered keys', async () => {
    const clock = fakeClock()
    const f = createMemoryDedupFilter({ ttlMs: 300_000, clock })
    expect(f.kind).toBe('memory')
    expect(await f.seen(['a', 'b'])).toEqual(new Set())
    f.remember(['a', 'c'])
    expect(await f.seen(['a', 'b', 'c'])).toEqual(new Set(['a', 'c']))
    expect(await f.seen([])).toEqual(new Set())
  })

  it('forgets a key once its TTL has passed (and not a millisecond before)', async () => {
    const clock = fakeClock()
    const f = createMemoryDedupFilter({ ttlMs: 300_000, clock })
    f.remember(['a'])
    clock.advance(299_999)
    expect(await f.seen(['a'])).toEqual(new Set(['a']))
    clock.advance(1)
    expect(await f.seen(['a'])).toEqual(new Set())
  })

  it('remembering again restarts the TTL', async () => {
    const clock = fakeClock()
    const f = createMemoryDedupFilter({ ttlMs: 1_000, clock })
    f.remember(['a'])
    clock.advance(800)
    f.remember(['a'])
    clock.advance(800)
    expect(await f.seen(['a'])).toEqual(new Set(['a']))
    clock.advance(200)
    expect(await f.seen(['a'])).toEqual(new Set())
  })

  it('holds at most maxEntries: a key stays known for at least maxEntries/2 later keys, then its generation is dropped', async () => {
    const clock = fakeClock()
    const f = createMemoryDedupFilter({ ttlMs: 60_000, maxEntries: 4, clock })
    f.remember(['a', 'b']) // a full generation (2): becomes the previous one
    f.remember(['c'])
    expect(await f.seen(['a', 'b', 'c'])).toEqual(new Set(['a', 'b', 'c']))
    f.remember(['d']) // the current generation fills: a and b are dropped together
    expect(await f.seen(['a', 'b', 'c', 'd'])).toEqual(new Set(['c', 'd']))
    f.remember(['c']) // remembered again: now in the current generation, so it outlives d
    f.remember(['e'])
    expect(await f.seen(['c', 'd', 'e'])).toEqual(new Set(['c', 'e']))
  })

  it('never holds more than maxEntries keys however many are remembered', async () => {
    const clock = fakeClock()
    const f = createMemoryDedupFilter({ ttlMs: 60_000, maxEntries: 1_000, clock })
    const all = Array.from({ length: 10_000 }, (_, i) => `k${i}`)
    for (let i = 0; i < all.length; i += 100) f.remember(all.slice(i, i + 100))
    const known = await f.seen(all)
    expect(known.size).toBeLessThanOrEqual(1_000)
    expect(known.size).toBeGreaterThanOrEqual(500)
    // The newest 500 are always among them.
    for (const k of all.slice(-500)) expect(known.has(k)).toBe(true)
  })

  it('a refreshed key keeps its newer expiry even while an older copy is in the previous generation', async () => {
    const clock = fakeClock()
    const f = createMemoryDedupFilter({ ttlMs: 1_000, maxEntries: 4, clock })
    f.remember(['a', 'x']) // -> previous, expiring at 1 000
    clock.advance(900)
    f.remember(['a']) // current, expiring at 1 900
    clock.advance(500)
    expect(await f.seen(['a', 'x'])).toEqual(new Set(['a']))
  })

  it('a miss proves nothing, a hit is a remembered key: keys are exact strings', async () => {
    const clock = fakeClock()
    const f = createMemoryDedupFilter({ ttlMs: 60_000, clock })
    f.remember(['7:1700000000.000000:21.500000'])
    expect(await f.seen(['7:1700000000.000000:21.5', '17:1700000000.000000:21.500000', '7:1700000000.000000:21.500000'])).toEqual(new Set(['7:1700000000.000000:21.500000']))
  })
})

describe('layerDedupFilters', () => {
  it('asks the shared filter only for the memory misses, and answers the union', async () => {
    const memory = spyFilter('memory', ['a'])
    const shared = spyFilter('redis', ['b'])
    const layered = layerDedupFilters(memory, shared)
    expect(layered.kind).toBe('redis')
    expect(await layered.seen(['a', 'b', 'c'])).toEqual(new Set(['a', 'b']))
    expect(memory.asked).toEqual([['a', 'b', 'c']])
    expect(shared.asked).toEqual([['b', 'c']])
  })

  it('does not call the shared filter when memory knows every key', async () => {
    const memory = spyFilter('memory', ['a', 'b'])
    const shared = spyFilter('redis')
    const layered = layerDedupFilters(memory, shared)
    expect(await layered.seen(['a', 'b'])).toEqual(new Set(['a', 'b']))
    expect(shared.asked).toEqual([])
  })

  it('remembers in both', () => {
    const memory = spyFilter('memory')
    const shared = spyFilter('redis')
    layerDedupFilters(memory, shared).remember(['x', 'y'])
    expect(memory.remembered).toEqual([['x', 'y']])
    expect(shared.remembered).toEqual([['x', 'y']])
  })

  it('with a real memory layer: a key remembered through the layer is then answered from memory', async () => {
    const clock = fakeClock()
    const memory = createMemoryDedupFilter({ ttlMs: 60_000, clock })
    const shared = spyFilter('redis')
    const layered = layerDedupFilters(memory, shared)
    layered.remember(['k'])
    shared.asked.length = 0
    expect(await layered.seen(['k'])).toEqual(new Set(['k']))
    expect(shared.asked).toEqual([])
  })
})
