import fc from 'fast-check'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'

import { dedupFilterKey, IngestService, type IdReading } from '../../../src/lib/app/ingest/ingest-service.js'
import { createMetrics, type Metrics } from '../../../src/lib/app/metrics.js'
import { BreakerOpenError } from '../../../src/lib/app/resilience/circuit-breaker.js'
import { loadConfig } from '../../../src/lib/config/index.js'
import { TransientStoreError, UnavailableError } from '../../../src/lib/errors/index.js'
import { createLogger } from '../../../src/lib/log/index.js'
import type { DedupFilter } from '../../../src/lib/ports/dedup-filter.js'
import { createMemoryDedupFilter } from '../../../src/lib/app/resilience/memory-dedup.js'
import type { ReplayableReading } from '../../../src/lib/ports/dead-letter-queue.js'
import { fakeClock, outcome, T0, type FakeClock } from '../resilience/fakes.js'
import { FakeDlq, type TxFault, FakeIngestStore, sensorInfo } from './fakes.js'

interface Setup {
  service: IngestService
  store: FakeIngestStore
  dlq: FakeDlq | undefined
  clock: FakeClock
  metrics: Metrics
  breakerClosed: number
}

function setup(env: Record<string, string> = {}, options: { dlq?: FakeDlq | false; dedup?: DedupFilter } = {}): Setup {
  const { config } = loadConfig({ env: { SP_MAX_RETRIES: '3', CB_FAILURE_THRESHOLD: '3', CB_SUCCESS_THRESHOLD: '2', CB_RECOVERY_TIMEOUT: '30', ...env } })
  const clock = fakeClock()
  const store = new FakeIngestStore([sensorInfo(1), sensorInfo(2), sensorInfo(3, { active: false })])
  const dlq = options.dlq === false ? undefined : (options.dlq ?? new FakeDlq())
  const metrics = createMetrics()
  const s: Setup = { service: undefined as unknown as IngestService, store, dlq, clock, metrics, breakerClosed: 0 }
  s.service = new IngestService({
    config,
    logger: createLogger({ level: 'silent' }),
    clock,
    store,
    metrics,
    ...(dlq ? { dlq } : {}),
    ...(options.dedup ? { dedup: options.dedup } : {}),
    onBreakerClosed: () => {
      s.breakerClosed++
    },
  })
  return s
}

/** Reading i of sensor 1: a distinct device time (so a distinct dedup key), a value that is not poison. */
function reading(i: number, over: Partial<IdReading> = {}): IdReading {
  return { sensorId: 1, value: 200 + i, timestamp: T0 - (i + 1) * 1_000, ...over }
}

const batch = (n: number, from = 0) => Array.from({ length: n }, (_, i) => reading(from + i))

/** The pre-filter key of a msgId of sensor 1 (however the service scopes it). */
const fk = (msgId: string): string => dedupFilterKey({ sensorId: 1, dedupKey: msgId }) as string

async function counter(metrics: Metrics, name: 'dlqRefused' | 'deadLettered' | 'flushErrors'): Promise<number> {
  const m = await metrics[name].get()
  return m.values.reduce((sum, v) => sum + v.value, 0)
}

describe('IngestService: poison isolation (R14)', () => {
  it('a permanent error on one row among 100 dead-letters exactly that row; the other 99 commit', async () => {
    const s = setup()
    s.store.poisonValues.add(666)
    const readings = batch(100)
    readings[37] = reading(37, { value: 666 })
    const receipt = await s.service.ingestById(readings, 'http')

    expect(receipt).toMatchObject({ inserted: 99, duplicates: 0, rejected: 0, dead_lettered: 1 })
    expect(receipt.receipts).toHaveLength(100)
    receipt.receipts.forEach((r, i) => {
      expect(r.index).toBe(i)
      if (i === 37) {
        expect(r.status).toBe('dead_lettered')
        expect(r.dlq_id).toBe('dlq-1')
        expect(r.code).toBe('CONSTRAINT')
      } else {
        expect(r.status).toBe('stored')
        expect(r.dlq_id).toBeUndefined()
      }
    })
    // The store holds exactly the 99 good rows.
    expect(s.store.committedValues().sort((a, b) => a - b)).toEqual(readings.filter((_, i) => i !== 37).map((r) => r.value).sort((a, b) => a - b))
    // One DLQ entry, with the full replayable payload.
    expect(s.dlq?.entries).toHaveLength(1)
    const entry = s.dlq?.entries[0]
    expect(entry).toMatchObject({ entryId: 'dlq-1', stage: 'store', errorClass: 'constraint', transport: 'http', sensorId: 1 })
    const payload = entry?.payload as ReplayableReading
    expect(payload).toMatchObject({ kind: 'reading', sensorId: 1, value: 666, deviceTime: T0 - 38_000, transport: 'http' })
    expect(payload.dedupKey).toBe(`1:${((T0 - 38_000) / 1000).toFixed(6)}:666.000000`)
    expect(await counter(s.metrics, 'deadLettered')).toBe(1)
  })

  it('an outage after part of a bisected flush committed: the callers whose items committed are answered, only the others get 503', async () => {
    const s = setup({ SP_MAX_RETRIES: '1', CB_FAILURE_THRESHOLD: '10' })
    s.store.poisonValues.add(666)
    // Transaction 1 (all four) meets the poison row; 2 (the first half) commits; 3 (the rest) meets an outage.
    s.store.faults = [undefined, undefined, { kind: 'outage' }] as unknown as TxFault[]
    const keyless = (i: number, value: number): IdReading => ({ sensorId: 1, value, timestamp: null, sequence: null })
    const a = s.service.ingestById([keyless(0, 200), keyless(1, 201)], 'http')
    const b = s.service.ingestById([keyless(2, 666), keyless(3, 203)], 'http')
    await expect(a).resolves.toMatchObject({ inserted: 2, rejected: 0 })
    await expect(b).rejects.toBeInstanceOf(UnavailableError)
    // A's readings (no dedup key) are stored once; had A been told 503, its retry would store them again.
    expect(s.store.committedValues().sort((x, y) => x - y)).toEqual([200, 201])
  })

  it('no retry loop on a permanent error: bisection only (each attempt holding the poison row is a smaller batch)', async () => {
    const s = setup()
    s.store.poisonValues.add(666)
    const readings = batch(100)
    readings[37] = reading(37, { value: 666 })
    await s.service.ingestById(readings, 'http')
    // Each batch holding the poison row is tried once, then halved (index 37: 100, 50, 25, 13, 6, 3, 1).
    const p = s.store.poisonAttempts
    expect(p[0]).toBe(100)
    expect(p.at(-1)).toBe(1)
    p.slice(1).forEach((size, i) => expect(size).toBeLessThanOrEqual(Math.ceil((p[i] as number) / 2)))
    expect(p.length).toBeLessThanOrEqual(Math.ceil(Math.log2(100)) + 1)
    // the halves without the poison commit at the first try: one transaction each
    expect(s.store.transactions).toBe(1 + 2 * (p.length - 1))
    expect(s.clock.sleeps).toEqual([]) // never slept for a retry
  })

  it('the DLQ entry keeps the SQLSTATE of the failure (R14: stage, sqlstate, payload)', async () => {
    const s = setup()
    s.store.poisonValues.add(666)
    await s.service.ingestById([reading(0, { value: 666 })], 'http')
    expect(JSON.stringify(s.dlq?.inputs[0])).toContain('23514')
  })

  it('without a DLQ the poison row is rejected STORE_REJECTED and the rest still commit', async () => {
    const s = setup({}, { dlq: false })
    s.store.poisonValues.add(666)
    const readings = batch(10)
    readings[4] = reading(4, { value: 666 })
    const receipt = await s.service.ingestById(readings, 'http')
    expect(receipt).toMatchObject({ inserted: 9, rejected: 1, dead_lettered: 0 })
    expect(receipt.receipts[4]).toEqual({ index: 4, status: 'rejected', code: 'STORE_REJECTED' })
    expect(s.store.committedValues()).not.toContain(666)
    expect(s.store.committed).toHaveLength(9)
  })

  it('two poison rows in one batch: both dead-lettered, the rest commit', async () => {
    const s = setup()
    s.store.poisonValues.add(666).add(667)
    const readings = batch(20)
    readings[3] = reading(3, { value: 666 })
    readings[15] = reading(15, { value: 667 })
    const receipt = await s.service.ingestById(readings, 'http')
    expect(receipt).toMatchObject({ inserted: 18, dead_lettered: 2 })
    expect(s.dlq?.entries.map((e) => (e.payload as ReplayableReading).value).sort()).toEqual([666, 667])
  })

  it('guard rejections and unknown/inactive sensors never reach the store or the DLQ', async () => {
    const s = setup()
    const receipt = await s.service.ingestById([reading(0), reading(1, { sensorId: 99 }), reading(2, { sensorId: 3 }), reading(3, { value: 5_000 }), reading(4, { timestamp: T0 + 3_600_000 })], 'http')
    expect(receipt.receipts.map((r) => [r.status, r.code])).toEqual([
      ['stored', undefined],
      ['rejected', 'UNKNOWN_SENSOR'],
      ['rejected', 'SENSOR_INACTIVE'],
      ['rejected', 'VALUE_OUTSIDE_PHYSICAL_LIMITS'],
      ['rejected', 'TIMESTAMP_IN_FUTURE'],
    ])
    expect(s.store.committed).toHaveLength(1)
    expect(s.dlq?.entries).toHaveLength(0)
  })
})

describe('IngestService: transient errors (R16)', () => {
  it('are retried with backoff, then succeed', async () => {
    const s = setup({ SP_MAX_RETRIES: '3' })
    s.store.faults = [{ kind: 'transient' }, { kind: 'transient' }]
    const receipt = await s.service.ingestById(batch(5), 'http')
    expect(receipt).toMatchObject({ inserted: 5, dead_lettered: 0 })
    expect(s.store.transactions).toBe(3)
    expect(s.clock.sleeps).toHaveLength(2)
    expect(s.clock.sleeps[0]).toBeLessThanOrEqual(50)
    expect(s.clock.sleeps[1]).toBeLessThanOrEqual(100)
    expect(s.service.breaker.current).toBe('closed')
    expect(s.dlq?.entries).toHaveLength(0)
  })

  it('past SP_MAX_RETRIES attempts the request fails with 503, nothing is dead-lettered and the breaker stays closed', async () => {
    const s = setup({ SP_MAX_RETRIES: '3' })
    s.store.always = { kind: 'transient' }
    for (let i = 0; i < 5; i++) {
      const out = await outcome(s.service.ingestById([reading(i)], 'http'))
      expect((out as { error: unknown }).error).toBeInstanceOf(TransientStoreError)
      expect(((out as { error: TransientStoreError }).error).httpStatus).toBe(503)
    }
    expect(s.store.transactions).toBe(15)
    expect(s.service.breaker.current).toBe('closed')
    expect(s.store.committed).toHaveLength(0)
    expect(s.dlq?.entries).toHaveLength(0)
  })
})

describe('IngestService: outages and the circuit breaker (R17)', () => {
  it('opens after CB_FAILURE_THRESHOLD failed attempts; then requests fail fast with 503 without calling the store', async () => {
    const s = setup({ CB_FAILURE_THRESHOLD: '6', SP_MAX_RETRIES: '2' })
    s.store.always = { kind: 'outage' }
    for (let i = 0; i < 3; i++) {
      const out = await outcome(s.service.ingestById([reading(i)], 'http'))
      expect((out as { error: unknown }).error).toBeInstanceOf(UnavailableError)
      expect((out as { error: unknown }).error).not.toBeInstanceOf(BreakerOpenError)
    }
    expect(s.store.transactions).toBe(6) // 3 flushes x 2 attempts, each attempt counted by the breaker
    expect(s.service.breaker.current).toBe('open')
    expect((await s.metrics.breakerState.get()).values[0]?.value).toBe(2)

    for (let i = 0; i < 10; i++) {
      const out = await outcome(s.service.ingestById([reading(10 + i)], 'http'))
      const err = (out as { error: unknown }).error
      expect(err).toBeInstanceOf(BreakerOpenError)
      expect((err as BreakerOpenError).httpStatus).toBe(503)
      expect((err as BreakerOpenError).retryAfterSeconds).toBeGreaterThanOrEqual(1)
      expect((err as BreakerOpenError).retryAfterSeconds).toBeLessThanOrEqual(30)
    }
    expect(s.store.transactions).toBe(6)
    expect(s.service.breaker.stats().skippedCalls).toBe(10)
    expect(s.dlq?.entries).toHaveLength(0) // CB_OPEN_ACTION=503 by default
  })

  it('after the recovery timeout a probe goes through; CB_SUCCESS_THRESHOLD successes close it and onBreakerClosed fires', async () => {
    const s = setup({ CB_FAILURE_THRESHOLD: '1', SP_MAX_RETRIES: '1', CB_SUCCESS_THRESHOLD: '2' })
    s.store.faults = [{ kind: 'outage' }]
    await outcome(s.service.ingestById([reading(0)], 'http'))
    expect(s.service.breaker.current).toBe('open')
    s.clock.advance(30_000)
    await expect(s.service.ingestById([reading(1)], 'http')).resolves.toMatchObject({ inserted: 1 })
    expect(s.service.breaker.current).toBe('half_open')
    await expect(s.service.ingestById([reading(2)], 'http')).resolves.toMatchObject({ inserted: 1 })
    expect(s.service.breaker.current).toBe('closed')
    expect(s.breakerClosed).toBe(1)
    expect((await s.metrics.breakerState.get()).values[0]?.value).toBe(0)
  })

  it('an outage is retried inside one flush; each failed attempt counts for the breaker, a success resets it', async () => {
    const s = setup({ CB_FAILURE_THRESHOLD: '3', SP_MAX_RETRIES: '3' })
    s.store.faults = [{ kind: 'outage' }, { kind: 'outage' }]
    await expect(s.service.ingestById(batch(3), 'http')).resolves.toMatchObject({ inserted: 3 })
    expect(s.store.transactions).toBe(3)
    expect(s.service.breaker.stats().consecutiveFailures).toBe(0)
    expect(s.service.breaker.current).toBe('closed')
  })

  it('a commit whose outcome is unknown is not retried: readings without a dedup key are never written twice by a retry', async () => {
    const s = setup({ SP_MAX_RETRIES: '5' })
    s.store.faults = [{ kind: 'commit-unknown' }]
    const keyless = [{ sensorId: 1, value: 21.5, timestamp: null }]
    const out = await outcome(s.service.ingestById(keyless, 'http'))
    expect((out as { error: { code?: string } }).error.code).toBe('COMMIT_UNKNOWN')
    expect(s.store.transactions).toBe(1)
    expect(s.store.committed).toHaveLength(1)
  })

  it('CB_OPEN_ACTION=dlq: a commit whose outcome is unknown is answered 503, never dead-lettered (a replay could store it twice)', async () => {
    const s = setup({ SP_MAX_RETRIES: '3', CB_FAILURE_THRESHOLD: '10', CB_OPEN_ACTION: 'dlq' })
    s.store.faults = [{ kind: 'commit-unknown' }]
    const out = await outcome(s.service.ingestById([reading(0, { sequence: null, timestamp: null })], 'http'))
    expect((out as { error: { code?: string } }).error.code).toBe('COMMIT_UNKNOWN')
    expect(s.dlq?.entries ?? []).toHaveLength(0)
    expect(s.store.committed).toHaveLength(1)
  })

  it('once the breaker opens in the middle of a flush the retries stop at once', async () => {
    const s = setup({ CB_FAILURE_THRESHOLD: '2', SP_MAX_RETRIES: '5' })
    s.store.always = { kind: 'outage' }
    const out = await outcome(s.service.ingestById(batch(1), 'http'))
    expect((out as { error: unknown }).error).toBeInstanceOf(BreakerOpenError)
    expect(s.store.transactions).toBe(2)
  })

  it('CB_OPEN_ACTION=dlq: outage-time items are dead-lettered (OUTAGE, then BREAKER_OPEN) instead of a 503', async () => {
    const s = setup({ CB_OPEN_ACTION: 'dlq', CB_FAILURE_THRESHOLD: '2', SP_MAX_RETRIES: '1' })
    s.store.always = { kind: 'outage' }
    const first = await s.service.ingestById(batch(3, 0), 'mqtt')
    expect(first).toMatchObject({ inserted: 0, dead_lettered: 3 })
    expect(first.receipts.map((r) => r.code)).toEqual(['OUTAGE', 'OUTAGE', 'OUTAGE'])
    expect(first.receipts.every((r) => typeof r.dlq_id === 'string')).toBe(true)
    await s.service.ingestById(batch(1, 3), 'mqtt')
    expect(s.service.breaker.current).toBe('open')
    const calls = s.store.transactions

    const later = await s.service.ingestById(batch(2, 4), 'mqtt')
    expect(later).toMatchObject({ inserted: 0, dead_lettered: 2 })
    expect(later.receipts.map((r) => r.code)).toEqual(['BREAKER_OPEN', 'BREAKER_OPEN'])
    expect(s.store.transactions).toBe(calls) // the store was not called
    expect(s.dlq?.entries.map((e) => [e.stage, e.errorClass])).toEqual([
      ['store', 'outage'],
      ['store', 'outage'],
      ['store', 'outage'],
      ['store', 'outage'],
      ['breaker_open', 'outage'],
      ['breaker_open', 'outage'],
    ])
    expect(new Set(s.dlq?.entries.map((e) => e.entryId)).size).toBe(6)
  })

  it('DLQ full while dead-lettering outage items: UnavailableError DLQ_FULL (503) and the metric counts the items', async () => {
    const s = setup({ CB_OPEN_ACTION: 'dlq', CB_FAILURE_THRESHOLD: '1', SP_MAX_RETRIES: '1' }, { dlq: new FakeDlq(2) })
    s.store.always = { kind: 'outage' }
    const out = await outcome(s.service.ingestById(batch(3), 'http'))
    const err = (out as { error: unknown }).error
    expect(err).toBeInstanceOf(UnavailableError)
    expect((err as UnavailableError).code).toBe('DLQ_FULL')
    expect((err as UnavailableError).httpStatus).toBe(503)
    expect(await counter(s.metrics, 'dlqRefused')).toBe(3)
    expect(s.dlq?.entries).toHaveLength(0) // all or none, nothing trimmed
  })

  it('DLQ full while dead-lettering a poison row: the sender is told to retry (503 DLQ_FULL), not "rejected"', async () => {
    const s = setup({}, { dlq: new FakeDlq(0) })
    s.store.poisonValues.add(666)
    const readings = batch(4)
    readings[2] = reading(2, { value: 666 })
    const out = await outcome(s.service.ingestById(readings, 'http'))
    expect(await counter(s.metrics, 'dlqRefused')).toBe(1)
    // A `rejected` receipt means "never stored, do not retry" (DESIGN §6): the row would be lost.
    expect(out.ok).toBe(false)
    expect(((out as { error: UnavailableError }).error).code).toBe('DLQ_FULL')
  })
})

describe('IngestService: the dedup pre-filter (R10)', () => {
  it('a key is remembered only after a successful commit: the retry of a failed request is stored', async () => {
    const s = setup({ SP_MAX_RETRIES: '1', CB_FAILURE_THRESHOLD: '10' })
    const r = reading(0, { msgId: 'evt-1' })
    s.store.faults = [{ kind: 'outage' }]
    await expect(s.service.ingestById([r], 'http')).rejects.toBeInstanceOf(UnavailableError)
    expect(await s.service.dedup.seen([fk('evt-1')])).toEqual(new Set())

    const retry = await s.service.ingestById([r], 'http')
    expect(retry.receipts[0]?.status).toBe('stored')
    expect(s.store.committed.map((row) => row.dedupKey)).toEqual(['evt-1'])
    expect(await s.service.dedup.seen([fk('evt-1')])).toEqual(new Set([fk('evt-1')]))
  })

  it('a permanent failure (dead-lettered item) leaves no marker either', async () => {
    const s = setup()
    s.store.poisonValues.add(666)
    await s.service.ingestById([reading(0, { value: 666, msgId: 'bad' }), reading(1, { msgId: 'good' })], 'http')
    expect(await s.service.dedup.seen([fk('bad'), fk('good')])).toEqual(new Set([fk('good')]))
  })

  it('a second send of a committed item is answered duplicate without calling the store', async () => {
    const s = setup()
    const items = batch(3)
    await s.service.ingestById(items, 'http')
    const calls = s.store.transactions
    const again = await s.service.ingestById(items, 'http')
    expect(again).toMatchObject({ inserted: 0, duplicates: 3 })
    expect(again.receipts.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate'])
    expect(s.store.transactions).toBe(calls)
    expect(s.store.committed).toHaveLength(3)
  })

  it('a partly known batch sends only the unknown items to the store', async () => {
    const s = setup()
    await s.service.ingestById(batch(2), 'http')
    const receipt = await s.service.ingestById(batch(4), 'http')
    expect(receipt.receipts.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'stored', 'stored'])
    expect(s.store.attempts.at(-1)).toBe(2)
  })

  it('the markers are written after the commit, never before (spy filter)', async () => {
    const log: string[] = []
    const dedup: DedupFilter = {
      kind: 'memory',
      seen: (keys) => {
        log.push(`seen ${keys.join(',')}`)
        return Promise.resolve(new Set())
      },
      remember: (keys) => void log.push(`remember ${keys.join(',')}`),
    }
    const s = setup({ SP_MAX_RETRIES: '1', CB_FAILURE_THRESHOLD: '10' }, { dedup })
    s.store.log = log
    s.store.faults = [{ kind: 'outage' }]
    await outcome(s.service.ingestById([reading(0, { msgId: 'a' })], 'http'))
    await s.service.ingestById([reading(0, { msgId: 'a' })], 'http')
    expect(log).toEqual([`seen ${fk('a')}`, `seen ${fk('a')}`, 'commit a', `remember ${fk('a')}`])
  })

  it('readings newer than every committed one of their sensor skip the in-process lookup; retries and older ones do not', async () => {
    const looked: string[][] = []
    const spy = (kind: 'memory' | 'redis'): DedupFilter => {
      const inner = createMemoryDedupFilter({ ttlMs: 300_000, clock: fakeClock() })
      return { kind, seen: async (keys) => (looked.push([...keys]), inner.seen(keys)), remember: (keys) => inner.remember(keys) }
    }
    const s = setup({}, { dedup: spy('memory') })
    const at = (i: number): IdReading => ({ sensorId: 1, value: 200 + i, timestamp: T0 - 100_000 + i * 1_000 })
    await s.service.ingestById([at(0), at(1)], 'http')
    await s.service.ingestById([at(2), at(3)], 'http')
    expect(looked).toEqual([]) // a live device sending newer readings: no lookups at all
    const retry = await s.service.ingestById([at(3), at(4), at(-5)], 'http')
    expect(retry.receipts.map((r) => r.status)).toEqual(['duplicate', 'stored', 'stored'])
    // The retry (same time as a committed reading) and the older reading are looked up; the newer one is not.
    expect(looked).toHaveLength(1)
    expect(looked[0]).toHaveLength(2)
    expect(s.store.committed).toHaveLength(6)

    // A shared filter (Redis) also holds other replicas' keys: every key is looked up there.
    looked.length = 0
    const r = setup({}, { dedup: spy('redis') })
    await r.service.ingestById([at(0), at(1)], 'http')
    await r.service.ingestById([at(2)], 'http')
    expect(looked.map((k) => k.length)).toEqual([2, 1])
  })

  it('an ambiguous commit (committed, then the connection died) is answered duplicate on retry, stored once', async () => {
    const s = setup({ SP_MAX_RETRIES: '1', CB_FAILURE_THRESHOLD: '10' })
    s.store.faults = [{ kind: 'commit-then-outage' }]
    const r = reading(0, { msgId: 'evt-9' })
    await expect(s.service.ingestById([r], 'http')).rejects.toBeInstanceOf(UnavailableError)
    const retry = await s.service.ingestById([r], 'http')
    expect(retry.receipts[0]?.status).toBe('duplicate')
    expect(s.store.committed).toHaveLength(1)
  })

  it('two different msgIds of one sensor are never confused by the pre-filter', async () => {
    const s = setup()
    await s.service.ingestById([reading(0, { msgId: 'abc' })], 'http')
    const other = await s.service.ingestById([reading(1, { msgId: '1:abc' })], 'http')
    // The database keeps (1, 'abc') and (1, '1:abc') apart; a `duplicate` here would lose the reading.
    expect(other.receipts[0]?.status).toBe('stored')
    expect(s.store.committed.map((r) => r.dedupKey)).toEqual(['abc', '1:abc'])
  })

  it('property (fc.scheduler): over interleavings of concurrent sends and store failures, a marker exists only for committed events and the event is stored once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.scheduler(),
        fc.array(fc.constantFrom<'ok' | 'outage' | 'transient' | 'commit-then-outage'>('ok', 'outage', 'transient', 'commit-then-outage'), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 4 }),
        async (sched, plan, senders) => {
          const s = setup({ SP_MAX_RETRIES: '1', CB_FAILURE_THRESHOLD: '100' })
          // Interleave the store's answers: every transaction waits for the scheduler.
          const real = s.store.transaction.bind(s.store)
          const faults = [...plan]
          s.store.faults = []
          s.store.transaction = async (fn) => {
            const kind = faults.shift() ?? 'ok'
            await sched.schedule(Promise.resolve(), `tx ${kind}`)
            if (kind !== 'ok') s.store.faults = [{ kind }]
            return real(fn)
          }
          const event = reading(0, { msgId: 'evt' })
          // Senders start at scheduler-chosen moments, so flushes hold different subsets of them.
          const sends = Array.from({ length: senders }, (_, i) => outcome(sched.schedule(Promise.resolve(), `send ${i}`).then(() => s.service.ingestById([event], 'mqtt'))))
          const results = await sched.waitFor(Promise.all(sends))

          const committed = s.store.committed.filter((r) => r.dedupKey === 'evt').length
          expect(committed).toBeLessThanOrEqual(1)
          const marked = (await s.service.dedup.seen([fk('evt')])).has(fk('evt'))
          if (marked) expect(committed).toBe(1) // a marker exists only for a committed event
          for (const r of results) {
            if (r.ok) {
              expect(['stored', 'duplicate']).toContain(r.value.receipts[0]?.status)
              expect(committed).toBe(1) // acknowledged => committed
            }
          }
          // Every failed sender retries once the store is healthy: the event ends up stored exactly once.
          faults.length = 0
          const retry = s.service.ingestById([event], 'mqtt')
          const final = await sched.waitFor(retry)
          expect(['stored', 'duplicate']).toContain(final.receipts[0]?.status)
          expect(s.store.committed.filter((r) => r.dedupKey === 'evt')).toHaveLength(1)
        },
      ),
      { numRuns: 150 },
    )
  })
})

describe('IngestService: packets timed only by the packet ts', () => {
  it('two equal readings of one packet get distinct keys (#index), both stored; a resend is two duplicates', async () => {
    const s = setup()
    const s1 = sensorInfo(1)
    const packet = {
      deviceUuid: s1.deviceUuid,
      ts: T0 - 5_000,
      transport: 'http' as const,
      readings: [
        { sensorUuid: s1.sensorUuid, value: 230, sensorTs: null, sequence: null },
        { sensorUuid: s1.sensorUuid, value: 230, sensorTs: null, sequence: null },
      ],
    }
    const first = await s.service.ingestPacket(packet)
    expect(first).toMatchObject({ inserted: 2, duplicates: 0, unknown_sensors: [] })
    const ts = ((T0 - 5_000) / 1000).toFixed(6)
    expect(s.store.committed.map((r) => r.dedupKey)).toEqual([`1:${ts}:230.000000#0`, `1:${ts}:230.000000#1`])
    const calls = s.store.transactions
    const again = await s.service.ingestPacket(packet)
    expect(again).toMatchObject({ inserted: 0, duplicates: 2 })
    expect(s.store.transactions).toBe(calls)
  })
})

describe('IngestService: commit deadline', () => {
  it('a store that never answers fails the request with COMMIT_TIMEOUT after INGEST_COMMIT_TIMEOUT_SECONDS', async () => {
    const s = setup({ INGEST_COMMIT_TIMEOUT_SECONDS: '0.2' })
    s.store.always = { kind: 'hang' }
    const t0 = performance.now()
    const out = await outcome(s.service.ingestById([reading(0)], 'http'))
    const ms = performance.now() - t0
    const err = (out as { error: unknown }).error
    expect(err).toBeInstanceOf(UnavailableError)
    expect((err as UnavailableError).code).toBe('COMMIT_TIMEOUT')
    expect((err as UnavailableError).httpStatus).toBe(503)
    expect(ms).toBeGreaterThanOrEqual(190)
    expect(ms).toBeLessThan(1_000)
  })

  it('a flush that answers in time is not affected by the deadline', async () => {
    const s = setup({ INGEST_COMMIT_TIMEOUT_SECONDS: '0.2' })
    await expect(s.service.ingestById(batch(3), 'http')).resolves.toMatchObject({ inserted: 3 })
  })
})

describe('IngestService: the sensor directory failing (a database outage while resolving)', () => {
  const unhandled: unknown[] = []
  const onUnhandled = (reason: unknown) => void unhandled.push(reason)
  beforeEach(() => {
    unhandled.length = 0
    process.on('unhandledRejection', onUnhandled)
  })
  afterEach(() => {
    process.off('unhandledRejection', onUnhandled)
  })

  it('fails the request with 503 and leaves no unhandled rejection (which would crash the process)', async () => {
    const s = setup()
    s.store.directoryFailure = new UnavailableError('PostgreSQL unavailable', { code: 'POSTGRES_UNAVAILABLE' })
    const out = await outcome(s.service.ingestById([reading(0)], 'http'))
    expect(((out as { error: UnavailableError }).error).httpStatus).toBe(503)
    await new Promise((resolve) => setTimeout(resolve, 5))
    expect(unhandled).toEqual([])
  })
})
