import { describe, expect, it } from 'vitest'
import { StreamConfigCache } from '../../../src/lib/app/universal/stream-configs.js'
import { defaultStreamConfig, formatSeriesId, valueConstraints } from '../../../src/lib/domain/universal/index.js'
import type { SeriesKey, StreamConfig } from '../../../src/lib/domain/universal/index.js'
import type { StreamConfigStore } from '../../../src/lib/ports/stream-config-store.js'

const CPU: SeriesKey = { domain: 'infrastructure', source_id: 'web-1', stream_id: 'cpu' }
const KWH: SeriesKey = { domain: 'energy', source_id: 'm1', stream_id: 'kwh' }
const dbConfig = (key: SeriesKey, warningMax: number): StreamConfig => ({
  ...defaultStreamConfig(key),
  source: 'database',
  enableAlerting: true,
  constraints: valueConstraints({ warningMax }),
})

class FakeStore implements StreamConfigStore {
  rows = new Map<string, StreamConfig>()
  calls: string[][] = []
  fail: Error | null = null
  gate: Promise<void> | null = null
  async load(keys: readonly SeriesKey[]): Promise<Map<string, StreamConfig>> {
    this.calls.push(keys.map(formatSeriesId))
    if (this.gate !== null) await this.gate
    if (this.fail !== null) throw this.fail
    const out = new Map<string, StreamConfig>()
    for (const k of keys) {
      const row = this.rows.get(formatSeriesId(k))
      if (row !== undefined) out.set(formatSeriesId(k), row)
    }
    return out
  }
}

function setup(ttlMs = 60_000) {
  const clock = { t: 1_000_000, now(): number { return this.t } }
  const store = new FakeStore()
  const cache = new StreamConfigCache(store, clock, { ttlMs })
  return { clock, store, cache }
}

describe('StreamConfigCache', () => {
  it('loads many keys in one call, with built-in defaults for the series without a row', async () => {
    const { store, cache } = setup()
    store.rows.set('energy:m1:kwh', dbConfig(KWH, 5))
    const got = await cache.get([CPU, KWH, CPU])
    expect(store.calls).toEqual([['infrastructure:web-1:cpu', 'energy:m1:kwh']])
    expect(got.get('energy:m1:kwh')?.source).toBe('database')
    expect(got.get('infrastructure:web-1:cpu')).toEqual(defaultStreamConfig(CPU))
  })

  it('serves hits and misses (negative caching) from the cache within the TTL, and reloads after it', async () => {
    const { clock, store, cache } = setup(60_000)
    await cache.get([CPU, KWH])
    store.rows.set('infrastructure:web-1:cpu', dbConfig(CPU, 50))
    clock.t += 59_999
    expect((await cache.get([CPU])).get('infrastructure:web-1:cpu')?.source).toBe('built_in')
    expect(store.calls).toHaveLength(1)
    clock.t += 1
    expect((await cache.get([CPU, KWH])).get('infrastructure:web-1:cpu')?.source).toBe('database')
    expect(store.calls).toEqual([
      ['infrastructure:web-1:cpu', 'energy:m1:kwh'],
      ['infrastructure:web-1:cpu', 'energy:m1:kwh'],
    ])
  })

  it('loads only the keys it does not hold', async () => {
    const { store, cache } = setup()
    await cache.get([CPU])
    await cache.get([CPU, KWH])
    expect(store.calls).toEqual([['infrastructure:web-1:cpu'], ['energy:m1:kwh']])
  })

  it('shares one in-flight load between concurrent callers', async () => {
    const { store, cache } = setup()
    let open!: () => void
    store.gate = new Promise((resolve) => (open = resolve))
    store.rows.set('energy:m1:kwh', dbConfig(KWH, 5))
    const a = cache.get([CPU, KWH])
    const b = cache.get([KWH])
    const c = cache.get([KWH, CPU])
    open()
    const [ra, rb, rc] = await Promise.all([a, b, c])
    expect(store.calls).toHaveLength(1)
    expect(rb.get('energy:m1:kwh')).toBe(ra.get('energy:m1:kwh'))
    expect(rc.get('infrastructure:web-1:cpu')?.source).toBe('built_in')
  })

  it('does not cache a failed load: every waiting caller gets the error, the next call loads again', async () => {
    const { store, cache } = setup()
    let open!: () => void
    store.gate = new Promise((resolve) => (open = resolve))
    store.fail = new Error('connection refused')
    const a = cache.get([CPU])
    const b = cache.get([CPU])
    open()
    await expect(a).rejects.toThrow('connection refused')
    await expect(b).rejects.toThrow('connection refused')
    store.fail = null
    store.gate = null
    expect((await cache.get([CPU])).get('infrastructure:web-1:cpu')?.source).toBe('built_in')
    expect(store.calls).toHaveLength(2)
  })

  it('with TTL 0 reads every time', async () => {
    const { store, cache } = setup(0)
    await cache.get([CPU])
    await cache.get([CPU])
    expect(store.calls).toHaveLength(2)
  })

  it('invalidate() forgets every entry', async () => {
    const { store, cache } = setup()
    await cache.get([CPU])
    cache.invalidate()
    await cache.get([CPU])
    expect(store.calls).toHaveLength(2)
  })
})
