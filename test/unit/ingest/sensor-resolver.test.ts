import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { SensorResolver } from '../../../src/lib/app/ingest/sensor-resolver.js'
import type { SensorDirectory, SensorInfo } from '../../../src/lib/ports/ingest-store.js'
import { deferred, fakeClock, outcome, settle, type Deferred } from '../resilience/fakes.js'

const DEV = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
const sensor = (id: number, active = true): SensorInfo => ({ id, deviceId: 1, deviceUuid: DEV, sensorUuid: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`, sensorType: 'temperature', active })

/** A directory whose queries are recorded; `hold` makes them wait for the test. */
function directory(sensors: SensorInfo[]) {
  const byId = new Map(sensors.map((s) => [s.id, s]))
  const d = {
    idQueries: [] as number[][],
    uuidQueries: [] as string[][],
    hold: undefined as Deferred<void> | undefined,
    fail: undefined as Error | undefined,
    async findByIds(ids: readonly number[]) {
      d.idQueries.push([...ids])
      if (d.hold) await d.hold.promise
      if (d.fail) throw d.fail
      return ids.flatMap((id) => (byId.has(id) ? [byId.get(id) as SensorInfo] : []))
    },
    async findByUuids(pairs: ReadonlyArray<{ deviceUuid: string; sensorUuid: string }>) {
      d.uuidQueries.push(pairs.map((p) => p.sensorUuid))
      if (d.hold) await d.hold.promise
      if (d.fail) throw d.fail
      return sensors.filter((s) => pairs.some((p) => p.deviceUuid === s.deviceUuid && p.sensorUuid === s.sensorUuid))
    },
  } satisfies SensorDirectory & Record<string, unknown>
  return d
}

describe('SensorResolver', () => {
  it('resolves ids, known and unknown, in one query per batch', async () => {
    const dir = directory([sensor(1), sensor(2)])
    const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000 })
    const out = await r.resolveIds([1, 2, 1, 99, 2])
    expect(out).toEqual(
      new Map([
        ['#1', sensor(1)],
        ['#2', sensor(2)],
        ['#99', null],
      ]),
    )
    expect(dir.idQueries).toEqual([[1, 2, 99]])
    expect(r.queries).toBe(1)
  })

  it('caches hits for the TTL, then asks again', async () => {
    const clock = fakeClock()
    const dir = directory([sensor(1)])
    const r = new SensorResolver(dir, clock, { ttlMs: 300_000, negativeTtlMs: 30_000 })
    await r.resolveIds([1])
    clock.advance(299_999)
    await r.resolveIds([1])
    expect(dir.idQueries).toHaveLength(1)
    clock.advance(1)
    await r.resolveIds([1])
    expect(dir.idQueries).toHaveLength(2)
  })

  it('caches unknown sensors for the (shorter) negative TTL', async () => {
    const clock = fakeClock()
    const dir = directory([])
    const r = new SensorResolver(dir, clock, { ttlMs: 300_000, negativeTtlMs: 30_000 })
    for (let i = 0; i < 100; i++) expect((await r.resolveIds([42])).get('#42')).toBeNull()
    expect(dir.idQueries).toHaveLength(1)
    clock.advance(30_000)
    await r.resolveIds([42])
    expect(dir.idQueries).toHaveLength(2)
  })

  it('concurrent lookups of the same key share one query', async () => {
    const dir = directory([sensor(1)])
    dir.hold = deferred()
    const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000 })
    const lookups = Array.from({ length: 100 }, () => r.resolveIds([1, 77]))
    await settle()
    dir.hold.resolve()
    const results = await Promise.all(lookups)
    expect(dir.idQueries).toEqual([[1, 77]])
    for (const m of results) {
      expect(m.get('#1')).toEqual(sensor(1))
      expect(m.get('#77')).toBeNull()
    }
  })

  it('a concurrent lookup asks only for the keys not already in flight', async () => {
    const dir = directory([sensor(1), sensor(2)])
    dir.hold = deferred()
    const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000 })
    const a = r.resolveIds([1])
    const b = r.resolveIds([1, 2])
    await settle()
    dir.hold.resolve()
    const [ma, mb] = await Promise.all([a, b])
    expect(dir.idQueries).toEqual([[1], [2]])
    expect(ma.get('#1')).toEqual(sensor(1))
    expect(mb.get('#1')).toEqual(sensor(1))
    expect(mb.get('#2')).toEqual(sensor(2))
  })

  it('at most maxEntries are kept; the first cached goes first (a hit does not reorder: the TTL bounds staleness)', async () => {
    const dir = directory([sensor(1), sensor(2), sensor(3)])
    const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000, maxEntries: 2 })
    await r.resolveIds([1])
    await r.resolveIds([2])
    await r.resolveIds([1]) // a hit: no query, no reordering
    await r.resolveIds([3]) // evicts 1, the first cached
    dir.idQueries.length = 0
    await r.resolveIds([2])
    await r.resolveIds([3])
    expect(dir.idQueries).toEqual([])
    await r.resolveIds([1])
    expect(dir.idQueries).toEqual([[1]])
  })

  it('resolves (device, sensor) uuid pairs', async () => {
    const dir = directory([sensor(1), sensor(2)])
    const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000 })
    const s1 = sensor(1)
    const out = await r.resolveUuids([
      { deviceUuid: DEV, sensorUuid: s1.sensorUuid },
      { deviceUuid: DEV, sensorUuid: 'ffffffff-0000-4000-8000-000000000000' },
    ])
    expect(out.get(`${DEV}|${s1.sensorUuid}`)).toEqual(s1)
    expect(out.get(`${DEV}|ffffffff-0000-4000-8000-000000000000`)).toBeNull()
    await r.resolveUuids([{ deviceUuid: DEV, sensorUuid: s1.sensorUuid }])
    expect(dir.uuidQueries).toHaveLength(1)
  })

  it('clear() forgets the cache', async () => {
    const dir = directory([sensor(1)])
    const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000 })
    await r.resolveIds([1])
    r.clear()
    await r.resolveIds([1])
    expect(dir.idQueries).toHaveLength(2)
  })

  describe('when the directory query fails', () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => void unhandled.push(reason)
    beforeEach(() => {
      unhandled.length = 0
      process.on('unhandledRejection', onUnhandled)
    })
    afterEach(() => {
      process.off('unhandledRejection', onUnhandled)
    })

    it('rejects the lookup, caches nothing, and leaves no unhandled rejection behind', async () => {
      const dir = directory([sensor(1)])
      dir.fail = new Error('connection refused')
      const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000 })
      const out = await outcome(r.resolveIds([1]))
      expect(out).toEqual({ ok: false, error: dir.fail })
      await new Promise((resolve) => setTimeout(resolve, 5))
      // An unhandled rejection crashes a Node process (default --unhandled-rejections=throw).
      expect(unhandled).toEqual([])
      dir.fail = undefined
      expect((await r.resolveIds([1])).get('#1')).toEqual(sensor(1))
      expect(dir.idQueries).toHaveLength(2)
    })

    it('a concurrent lookup of the same key fails with it (not a hang, not a wrong "unknown")', async () => {
      const dir = directory([sensor(1)])
      dir.hold = deferred()
      dir.fail = new Error('connection refused')
      const r = new SensorResolver(dir, fakeClock(), { ttlMs: 300_000, negativeTtlMs: 30_000 })
      const a = outcome(r.resolveIds([1]))
      const b = outcome(r.resolveIds([1]))
      await settle()
      dir.hold.resolve()
      expect((await a).ok).toBe(false)
      expect((await b).ok).toBe(false)
      await new Promise((resolve) => setTimeout(resolve, 5))
      expect(unhandled).toEqual([])
    })
  })
})
