import { describe, expect, it } from 'vitest'

import { type ReplayFn, type ReplayOutcome, replayDlq, replayThroughIngest } from '../../../src/lib/app/dlq.js'
import type { IdReading } from '../../../src/lib/app/ingest/ingest-service.js'
import { BugError } from '../../../src/lib/errors/index.js'
import type { ReplayableReading } from '../../../src/lib/ports/dead-letter-queue.js'
import { deadReading, type FakeClock, fakeContext, FakeDlq, reading, T0 } from './fakes.js'

/** The ingest path as replay sees it: a unique dedup key per sensor (stored once), some sensors unknown. */
function fakeStore(options: { unknownSensors?: number[]; down?: boolean } = {}): { replay: ReplayFn; stored: Set<string>; calls: ReplayableReading[][] } {
  const stored = new Set<string>()
  const calls: ReplayableReading[][] = []
  const replay: ReplayFn = (items) => {
    const readings = items.filter((r): r is ReplayableReading => r.kind === 'reading')
    calls.push(readings)
    if (options.down) return Promise.reject(new Error('connect ECONNREFUSED 127.0.0.1:5432'))
    const outcomes = readings.map((r): ReplayOutcome => {
      if (options.unknownSensors?.includes(r.sensorId)) return { status: 'rejected', code: 'UNKNOWN_SENSOR' }
      const key = `${r.sensorId}|${r.dedupKey ?? ''}`
      if (stored.has(key)) return { status: 'duplicate' }
      stored.add(key)
      return { status: 'stored' }
    })
    return Promise.resolve(outcomes)
  }
  return { replay, stored, calls }
}

async function seed(dlq: FakeDlq, clock: FakeClock, readings: ReplayableReading[]): Promise<string[]> {
  const ids: string[] = []
  for (const r of readings) {
    ids.push(...(await dlq.add([deadReading(r)])))
    clock.t += 1000
  }
  return ids
}

describe('replayDlq', () => {
  it('a dry run calls no replay, changes nothing, writes no job run or audit row, and reports what would be replayed', async () => {
    const { ctx, clock, jobRuns, events } = fakeContext()
    const dlq = new FakeDlq(clock)
    const ids = await seed(dlq, clock, [reading(1, 20), reading(2, 21)])
    await dlq.add([{ transport: 'mqtt', stage: 'parse', errorClass: 'invalid_json', error: 'bad', payload: { kind: 'bytes', encoding: 'base64', data: 'AAE=' } }])
    const before = await dlq.list()
    dlq.writes.length = 0
    const store = fakeStore()
    const r = await replayDlq(ctx, dlq, { filter: {}, dryRun: true, maxRetries: 3, replay: store.replay })
    expect(store.calls).toEqual([])
    expect(dlq.writes).toEqual([])
    expect(await dlq.list()).toEqual(before)
    expect(jobRuns.runs).toEqual([])
    expect(events).toEqual([])
    expect(r).toMatchObject({ dryRun: true, jobRunId: null, selected: 3, stored: 0, duplicates: 0, failed: 0, parked: 0, skipped: 1 })
    expect(r.planned?.map((p) => [p.entryId, p.sensorId])).toEqual([
      [ids[0], 1],
      [ids[1], 2],
    ])
  })

  it('stores each reading, removes its entry, and records a job run and a dlq.replay audit row', async () => {
    const { ctx, clock, jobRuns, events } = fakeContext()
    const dlq = new FakeDlq(clock)
    await seed(dlq, clock, [reading(1, 20), reading(2, 21), reading(3, 22)])
    const store = fakeStore()
    const r = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: store.replay })
    expect(r).toMatchObject({ dryRun: false, selected: 3, stored: 3, duplicates: 0, failed: 0, parked: 0, skipped: 0, jobRunId: 1 })
    expect(await dlq.list()).toEqual([])
    expect(store.stored.size).toBe(3)
    expect(jobRuns.runs).toHaveLength(1)
    expect(jobRuns.runs[0]).toMatchObject({ job: 'dlq replay', options: { backend: 'local', filter: { status: 'pending' } }, end: { status: 'succeeded', counts: { selected: 3, stored: 3, duplicates: 0, failed: 0, parked: 0, skipped: 0 }, error: null } })
    expect(events).toHaveLength(1)
    expect(events[0]).toMatchObject({ eventType: 'dlq.replay', outcome: 'success', actorType: 'cli', targetType: 'dlq', targetId: 'local', details: { stored: 3, job_run_id: 1 } })
  })

  it('audits the actor it is given: the service (automatic replay) or an admin API key', async () => {
    const { ctx, clock, events } = fakeContext()
    const dlq = new FakeDlq(clock)
    await seed(dlq, clock, [reading(1, 20)])
    await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: fakeStore().replay, actor: { type: 'system' } })
    await seed(dlq, clock, [reading(2, 20)])
    await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: fakeStore().replay, actor: { type: 'api_key', kid: 'abcdefghijkl', role: 'admin', requestId: 'req-1' } })
    expect(events[0]).toMatchObject({ eventType: 'dlq.replay', actorType: 'system' })
    expect(events[0]?.details).not.toHaveProperty('by')
    expect(events[1]).toMatchObject({ eventType: 'dlq.replay', actorType: 'api_key', actorKid: 'abcdefghijkl', actorRole: 'admin', requestId: 'req-1' })
  })

  it('replaying twice stores once: a reading stored before its entry was removed comes back duplicate and leaves', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    const [id] = await seed(dlq, clock, [reading(1, 20)])
    const store = fakeStore()
    dlq.failNextRemove = true
    await expect(replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: store.replay })).rejects.toThrow(/busy/)
    // The reading is stored but its entry is still queued, with no attempt counted against it.
    expect(store.stored.size).toBe(1)
    expect(await dlq.get(id ?? '')).toMatchObject({ attempts: 0, status: 'pending' })
    const second = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: store.replay })
    expect(second).toMatchObject({ selected: 1, stored: 0, duplicates: 1, failed: 0 })
    expect(store.stored.size).toBe(1)
    expect(await dlq.list()).toEqual([])
  })

  it('the same reading dead-lettered twice is stored once', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    await seed(dlq, clock, [reading(1, 20), reading(1, 20)])
    const store = fakeStore()
    const r = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: store.replay })
    expect(r).toMatchObject({ stored: 1, duplicates: 1 })
    expect(store.stored.size).toBe(1)
    expect(await dlq.list()).toEqual([])
  })

  it('failures add an attempt and keep the entry; at maxRetries it is parked and no longer replayed unless asked for', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    const [bad] = await seed(dlq, clock, [reading(99, 1), reading(1, 20)])
    const store = fakeStore({ unknownSensors: [99] })
    const first = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 2, replay: store.replay })
    expect(first).toMatchObject({ selected: 2, stored: 1, failed: 1, parked: 0 })
    expect(first.failures).toEqual([{ entryId: bad, error: 'rejected: UNKNOWN_SENSOR' }])
    expect(await dlq.list()).toMatchObject([{ entryId: bad, attempts: 1, status: 'pending', error: 'rejected: UNKNOWN_SENSOR' }])
    clock.t += 60_000
    const second = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 2, replay: store.replay })
    expect(second).toMatchObject({ selected: 1, failed: 1, parked: 1 })
    expect(await dlq.get(bad ?? '')).toMatchObject({ attempts: 2, status: 'parked', lastFailedAt: new Date(clock.t).toISOString(), firstFailedAt: new Date(T0).toISOString() })
    const third = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 2, replay: store.replay })
    expect(third).toMatchObject({ selected: 0, failed: 0 })
    const parked = await replayDlq(ctx, dlq, { filter: { status: 'parked' }, dryRun: false, maxRetries: 2, replay: store.replay })
    expect(parked).toMatchObject({ selected: 1, failed: 1, parked: 0 })
    expect(await dlq.get(bad ?? '')).toMatchObject({ attempts: 3, status: 'parked' })
  })

  it('takes entries in first-failure order, up to the limit, with the filter', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    const ids = await seed(dlq, clock, [reading(1, 1), reading(2, 2), reading(1, 3), reading(1, 4)])
    const store = fakeStore()
    const r = await replayDlq(ctx, dlq, { filter: { sensorId: 1 }, dryRun: false, limit: 2, maxRetries: 3, replay: store.replay })
    expect(r).toMatchObject({ selected: 2, stored: 2 })
    expect(store.calls.flat().map((x) => x.value)).toEqual([1, 3])
    expect((await dlq.list()).map((e) => e.entryId)).toEqual([ids[1], ids[3]])
  })

  it('replays in batches no faster than the rate (fake clock)', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    await seed(dlq, clock, Array.from({ length: 12 }, (_, i) => reading(1, i)))
    const store = fakeStore()
    const times: number[] = []
    const timed: ReplayFn = async (rs) => {
      times.push(clock.now())
      return store.replay(rs)
    }
    const start = clock.now()
    const r = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, rate: 4, maxRetries: 3, replay: timed })
    expect(r.stored).toBe(12)
    expect(store.calls.map((c) => c.length)).toEqual([4, 4, 4])
    expect(times.map((t) => t - start)).toEqual([0, 1000, 2000])
  })

  it('entries that are not readings are skipped and left alone', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    const [raw] = await dlq.add([{ transport: 'mqtt', stage: 'parse', errorClass: 'invalid_json', error: 'x', payload: { kind: 'bytes', encoding: 'base64', data: 'AA==' } }])
    const [odd] = await dlq.add([{ transport: 'http', stage: 'store', errorClass: 'outage', error: 'x', payload: { ...reading(1, 1), value: 'NaN' } }])
    const store = fakeStore()
    const r = await replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: store.replay })
    expect(r).toMatchObject({ selected: 2, skipped: 2, stored: 0, failed: 0 })
    expect(store.calls).toEqual([])
    expect((await dlq.list()).map((e) => [e.entryId, e.attempts])).toEqual([
      [raw, 0],
      [odd, 0],
    ])
  })

  it('a store outage stops the run without counting attempts; the job run and audit say failed', async () => {
    const { ctx, clock, jobRuns, events } = fakeContext()
    const dlq = new FakeDlq(clock)
    await seed(dlq, clock, [reading(1, 1), reading(2, 2)])
    const store = fakeStore({ down: true })
    await expect(replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 1, replay: store.replay })).rejects.toThrow(/ECONNREFUSED/)
    expect((await dlq.list()).map((e) => [e.attempts, e.status])).toEqual([
      [0, 'pending'],
      [0, 'pending'],
    ])
    expect(jobRuns.runs[0]?.end).toMatchObject({ status: 'failed', error: expect.stringMatching(/ECONNREFUSED/) as unknown })
    expect(events[0]).toMatchObject({ eventType: 'dlq.replay', outcome: 'failure' })
  })

  it('a replay callback that answers the wrong number of outcomes is a bug', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    await seed(dlq, clock, [reading(1, 1)])
    await expect(replayDlq(ctx, dlq, { filter: {}, dryRun: false, maxRetries: 3, replay: () => Promise.resolve([]) })).rejects.toBeInstanceOf(BugError)
  })

  it('refuses a bad limit or rate (usage errors, exit 2)', async () => {
    const { ctx, clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    const { replay } = fakeStore()
    await expect(replayDlq(ctx, dlq, { filter: {}, dryRun: false, limit: 0, maxRetries: 3, replay })).rejects.toMatchObject({ code: 'USAGE', exitCode: 2 })
    await expect(replayDlq(ctx, dlq, { filter: {}, dryRun: false, rate: 0, maxRetries: 3, replay })).rejects.toMatchObject({ code: 'USAGE', exitCode: 2 })
  })
})

describe('replayThroughIngest', () => {
  it('sends a batch in one call, each reading with its dedup key, ingest time, transport and flags, and maps receipts back in order', async () => {
    const calls: Array<{ readings: IdReading[]; transport: string; options: unknown }> = []
    const service = {
      ingestById: (readings: readonly IdReading[], transport: string, options: unknown = {}) => {
        calls.push({ readings: [...readings], transport, options })
        const receipts = readings.map((r, index) => (r.sensorId === 99 ? { index, status: 'rejected' as const, code: 'UNKNOWN_SENSOR' } : { index, status: r.sensorId === 2 ? ('duplicate' as const) : ('stored' as const) }))
        return Promise.resolve({ inserted: 0, duplicates: 0, rejected: 0, dead_lettered: 0, receipts })
      },
    }
    const replay = replayThroughIngest(service)
    const out = await replay([
      reading(1, 1, { transport: 'mqtt', dedupKey: 'm-1', sequence: 7 }),
      reading(99, 2, { transport: 'http' }),
      reading(2, 3, { transport: 'mqtt', backfill: true, alerts: true }),
      reading(3, 4, { transport: 'carrier-pigeon' }),
      reading(4, 5, { transport: 'mqtt', dedupKey: null, deviceTime: null }),
    ])
    expect(out).toEqual([{ status: 'stored' }, { status: 'rejected', code: 'UNKNOWN_SENSOR' }, { status: 'duplicate' }, { status: 'stored' }, { status: 'stored' }])
    expect(calls).toHaveLength(1)
    expect(calls[0]?.transport).toBe('replay')
    expect(calls[0]?.readings).toEqual([
      { sensorId: 1, value: 1, timestamp: T0 - 1000, sequence: 7, dedupKey: 'm-1', ingestTime: T0 - 500, transport: 'mqtt', backfill: false, alerts: false },
      { sensorId: 99, value: 2, timestamp: T0 - 1000, sequence: null, dedupKey: '99:2', ingestTime: T0 - 500, transport: 'http', backfill: false, alerts: false },
      { sensorId: 2, value: 3, timestamp: T0 - 1000, sequence: null, dedupKey: '2:3', ingestTime: T0 - 500, transport: 'mqtt', backfill: true, alerts: true },
      { sensorId: 3, value: 4, timestamp: T0 - 1000, sequence: null, dedupKey: '3:4', ingestTime: T0 - 500, transport: 'replay', backfill: false, alerts: false },
      { sensorId: 4, value: 5, timestamp: null, sequence: null, dedupKey: null, ingestTime: T0 - 500, transport: 'mqtt', backfill: false, alerts: false },
    ])
  })
})
