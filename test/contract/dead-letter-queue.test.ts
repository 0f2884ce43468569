import { randomBytes } from 'node:crypto'

import { afterAll, beforeEach, describe, expect, it } from 'vitest'

import { ENTRY_ID_PATTERN } from '../../src/lib/adapters/dlq/entry-id.js'
import { openLocalDlq } from '../../src/lib/adapters/dlq/local.js'
import { openRedisDlq } from '../../src/lib/adapters/dlq/redis.js'
import { createRedisClient, type RedisClient } from '../../src/lib/adapters/redis/client.js'
import type { Clock } from '../../src/lib/ports/clock.js'
import { type DeadLetterInput, type DeadLetterQueue, DlqFullError, type ReplayableReading } from '../../src/lib/ports/dead-letter-queue.js'
import { redisAvailable, REDIS_URL, tempDir } from '../helpers/services.js'

const T0 = Date.parse('2026-11-26T12:00:00.000Z')

class TestClock implements Clock {
  t = T0
  now(): number {
    return this.t
  }
  sleep(ms: number): Promise<void> {
    this.t += ms
    return Promise.resolve()
  }
}


interface Backend {
  name: 'local' | 'redis'
  open(maxLen: number, clock: Clock): Promise<DeadLetterQueue>
  cleanup(): Promise<void>
}

function localBackend(): Backend {
  const dirs: Array<{ remove(): void }> = []
  return {
    name: 'local',
    async open(maxLen, clock) {
      const dir = tempDir('ingest-dlq-')
      dirs.push(dir)
      return openLocalDlq({ dataDir: dir.path, maxLen, clock })
    },
    cleanup() {
      for (const d of dirs) d.remove()
      return Promise.resolve()
    },
  }
}

function redisBackend(): Backend {
  const prefix = `ingest_t_${process.pid}_${randomBytes(4).toString('hex')}:`
  let n = 0
  return {
    name: 'redis',
    async open(maxLen, clock) {
      const client = createRedisClient(REDIS_URL, { keyPrefix: prefix, commandTimeoutMs: 5000 })
      return openRedisDlq({ client, streamName: `dlq:ingest:${n++}`, maxLen, clock, ownsClient: true })
    },
    async cleanup() {
      const admin: RedisClient = createRedisClient(REDIS_URL, { keyPrefix: '', commandTimeoutMs: 5000 })
      await admin.connect()
      let cursor = '0'
      do {
        const [next, keys] = await admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        if (keys.length > 0) await admin.del(...keys)
        cursor = next
      } while (cursor !== '0')
      await admin.quit()
    },
  }
}

const redisUp = await redisAvailable()
const backends: Backend[] = [localBackend(), ...(redisUp ? [redisBackend()] : [])]

function reading(sensorId: number, value: number, extra: Partial<ReplayableReading> = {}): ReplayableReading {
  return { kind: 'reading', sensorId, value, deviceTime: T0 - 60_000, ingestTime: T0, dedupKey: `${sensorId}:${value}`, sequence: null, transport: 'http', backfill: false, alerts: false, ...extra }
}

function input(over: Partial<DeadLetterInput> = {}): DeadLetterInput {
  const r = reading(over.sensorId ?? 1, 21.5)
  return { transport: 'http', stage: 'store', errorClass: 'constraint', error: 'violates check constraint', payload: r, sensorId: r.sensorId, ...over }
}

describe.each(backends)('dead-letter queue contract: $name', (backend) => {
  let clock: TestClock
  let dlq: DeadLetterQueue
  const opened: DeadLetterQueue[] = []

  const open = async (maxLen = 1000): Promise<DeadLetterQueue> => {
    const q = await backend.open(maxLen, clock)
    opened.push(q)
    return q
  }

  beforeEach(async () => {
    clock = new TestClock()
    dlq = await open()
  })

  afterAll(async () => {
    for (const q of opened) await q.close()
    await backend.cleanup()
  })

  it('add returns stable, time-sortable entry ids; get and list return every field, typed', async () => {
    const ids = await dlq.add([input({ msgId: 'm-1' }), input({ sensorId: null, seriesId: 'health:ward-3:bpm', transport: 'mqtt', stage: 'parse', errorClass: 'invalid_json', payload: 'not json {' })])
    expect(ids).toHaveLength(2)
    for (const id of ids) expect(id).toMatch(ENTRY_ID_PATTERN)
    expect([...ids].sort()).toEqual(ids)
    const first = await dlq.get(ids[0] ?? '')
    expect(first).toEqual({
      entryId: ids[0],
      transport: 'http',
      stage: 'store',
      errorClass: 'constraint',
      error: 'violates check constraint',
      payload: reading(1, 21.5),
      sensorId: 1,
      seriesId: null,
      msgId: 'm-1',
      status: 'pending',
      attempts: 0,
      firstFailedAt: new Date(T0).toISOString(),
      lastFailedAt: new Date(T0).toISOString(),
    })
    const second = await dlq.get(ids[1] ?? '')
    expect(second).toMatchObject({ sensorId: null, seriesId: 'health:ward-3:bpm', msgId: null, transport: 'mqtt', stage: 'parse', payload: 'not json {' })
    expect((await dlq.list()).map((e) => e.entryId)).toEqual(ids)
    expect(await dlq.get('01ZZZZZZZZZZZZZZZZZZZZZZZZ')).toBeNull()
  })

  it('an empty add is a no-op', async () => {
    expect(await dlq.add([])).toEqual([])
    expect((await dlq.stats()).depth).toBe(0)
  })

  it('lists in first-failure order and filters by time, stage, error class, sensor, series, status, ids and limit', async () => {
    const [a] = await dlq.add([input({ sensorId: 1, stage: 'store', errorClass: 'constraint' })])
    clock.t += 60_000
    const [b] = await dlq.add([input({ sensorId: 2, stage: 'validation', errorClass: 'value_out_of_range' })])
    clock.t += 60_000
    const [c] = await dlq.add([input({ sensorId: null, seriesId: 'finance:x:price', stage: 'breaker_open', errorClass: 'outage' })])
    const ids = async (f: Parameters<DeadLetterQueue['list']>[0]): Promise<string[]> => (await dlq.list(f)).map((e) => e.entryId)
    expect(await ids({})).toEqual([a, b, c])
    expect(await ids({ since: T0 + 60_000 })).toEqual([b, c])
    expect(await ids({ until: T0 + 60_000 })).toEqual([a, b])
    expect(await ids({ since: T0 + 1, until: T0 + 119_999 })).toEqual([b])
    expect(await ids({ stage: 'validation' })).toEqual([b])
    expect(await ids({ errorClass: 'outage' })).toEqual([c])
    expect(await ids({ sensorId: 1 })).toEqual([a])
    expect(await ids({ seriesId: 'finance:x:price' })).toEqual([c])
    expect(await ids({ status: 'parked' })).toEqual([])
    expect(await ids({ status: 'pending', limit: 2 })).toEqual([a, b])
    expect(await ids({ entryIds: [c ?? '', a ?? ''] })).toEqual([a, c])
    expect(await ids({ stage: 'store', errorClass: 'outage' })).toEqual([])
  })

  it('remove deletes exactly the given entries and reports how many', async () => {
    const ids = await dlq.add([input(), input(), input()])
    expect(await dlq.remove([ids[0] ?? '', ids[2] ?? '', 'no-such-entry'])).toBe(2)
    expect((await dlq.list()).map((e) => e.entryId)).toEqual([ids[1]])
    expect(await dlq.remove([ids[0] ?? ''])).toBe(0)
    expect(await dlq.remove([])).toBe(0)
  })

  it('recordFailure adds an attempt, keeps the id and first failure, and parks at maxRetries', async () => {
    const [id] = await dlq.add([input()])
    const entryId = id ?? ''
    clock.t += 5_000
    const once = await dlq.recordFailure(entryId, 'rejected: UNKNOWN_SENSOR', clock.now(), 2)
    expect(once).toMatchObject({ entryId, attempts: 1, status: 'pending', error: 'rejected: UNKNOWN_SENSOR', firstFailedAt: new Date(T0).toISOString(), lastFailedAt: new Date(T0 + 5_000).toISOString() })
    expect(once?.payload).toEqual(reading(1, 21.5))
    clock.t += 5_000
    const twice = await dlq.recordFailure(entryId, 'rejected: UNKNOWN_SENSOR', clock.now(), 2)
    expect(twice).toMatchObject({ entryId, attempts: 2, status: 'parked', firstFailedAt: new Date(T0).toISOString(), lastFailedAt: new Date(T0 + 10_000).toISOString() })
    expect(await dlq.get(entryId)).toEqual(twice)
    expect((await dlq.list({ status: 'parked' })).map((e) => e.entryId)).toEqual([entryId])
    expect(await dlq.list({ status: 'pending' })).toEqual([])
    // Parked entries stay parked on further failures, and the queue still holds one entry.
    expect(await dlq.recordFailure(entryId, 'again', clock.now(), 5)).toMatchObject({ attempts: 3, status: 'parked' })
    expect((await dlq.stats()).depth).toBe(1)
    expect(await dlq.recordFailure('no-such-entry', 'x', clock.now(), 3)).toBeNull()
  })

  it('purge deletes only the entries the filter matches and leaves the rest', async () => {
    const keep1 = await dlq.add([input({ sensorId: 1, errorClass: 'constraint' })])
    const gone = await dlq.add([input({ sensorId: 2, errorClass: 'outage' }), input({ sensorId: 3, errorClass: 'outage' })])
    const keep2 = await dlq.add([input({ sensorId: 2, errorClass: 'constraint' })])
    await dlq.recordFailure(keep1[0] ?? '', 'x', clock.now(), 1)
    expect(await dlq.purge({ errorClass: 'outage' })).toBe(2)
    const left = (await dlq.list()).map((e) => e.entryId)
    expect(left).toEqual([...keep1, ...keep2])
    for (const id of gone) expect(await dlq.get(id)).toBeNull()
    expect(await dlq.purge({ status: 'parked', sensorId: 2 })).toBe(0)
    expect(await dlq.purge({ status: 'parked' })).toBe(1)
    expect((await dlq.list()).map((e) => e.entryId)).toEqual(keep2)
  })

  it('purge with a limit takes the oldest matches first', async () => {
    const a = await dlq.add([input()])
    clock.t += 1000
    const b = await dlq.add([input()])
    expect(await dlq.purge({ limit: 1 })).toBe(1)
    expect((await dlq.list()).map((e) => e.entryId)).toEqual(b)
    expect(await dlq.get(a[0] ?? '')).toBeNull()
  })

  it('stats: depth, pending, parked, capacity, oldest failure, counts by stage and error class', async () => {
    expect(await dlq.stats()).toEqual({ backend: backend.name, depth: 0, pending: 0, parked: 0, capacity: 1000, oldestFailedAt: null, byStage: {}, byErrorClass: {} })
    const [first] = await dlq.add([input({ stage: 'store', errorClass: 'constraint' })])
    clock.t += 1000
    await dlq.add([input({ stage: 'store', errorClass: 'outage' }), input({ stage: 'parse', errorClass: 'invalid_json', payload: 'x' })])
    await dlq.recordFailure(first ?? '', 'x', clock.now(), 1)
    expect(await dlq.stats()).toEqual({
      backend: backend.name,
      depth: 3,
      pending: 2,
      parked: 1,
      capacity: 1000,
      oldestFailedAt: new Date(T0).toISOString(),
      byStage: { store: 2, parse: 1 },
      byErrorClass: { constraint: 1, outage: 1, invalid_json: 1 },
    })
  })

  it('at capacity new entries are refused whole (DlqFullError) and nothing is trimmed', async () => {
    const small = await open(3)
    const firstTwo = await small.add([input({ msgId: 'a' }), input({ msgId: 'b' })])
    await expect(small.add([input({ msgId: 'c' }), input({ msgId: 'd' })])).rejects.toBeInstanceOf(DlqFullError)
    // All or none: the batch that did not fit added nothing.
    expect((await small.list()).map((e) => e.msgId)).toEqual(['a', 'b'])
    const third = await small.add([input({ msgId: 'c' })])
    const err = await small.add([input({ msgId: 'e' })]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(DlqFullError)
    expect((err as DlqFullError).capacity).toBe(3)
    expect((err as DlqFullError).code).toBe('DLQ_FULL')
    expect((await small.list()).map((e) => e.entryId)).toEqual([...firstTwo, ...third])
    // Rewriting an entry (a failed replay) does not change the depth.
    await small.recordFailure(third[0] ?? '', 'x', clock.now(), 3)
    expect((await small.stats()).depth).toBe(3)
    // Room again after a removal.
    await small.remove([firstTwo[0] ?? ''])
    expect(await small.add([input({ msgId: 'f' })])).toHaveLength(1)
  })

  it('keeps the full payload: 100 KB, unicode, nested JSON, raw bytes', async () => {
    const big = 'x'.repeat(100 * 1024)
    const unicode = 'température ✓ 温度 🌡️ 👩‍🔬 مرحبا e\u0301 \u202e \u0000 "quoted" \\ end'
    // A lone surrogate survives in the payload (JSON escapes it); plain text columns hold UTF-8 only.
    const nested = { a: [1, 2.5, -3e-9, null, true, { b: { c: [unicode, 'lone \ud800 surrogate'] } }], big }
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x41, 0x0a, 0x80])
    const ids = await dlq.add([
      input({ payload: nested, error: unicode }),
      input({ payload: big }),
      input({ payload: bytes, transport: 'mqtt', stage: 'parse', errorClass: 'invalid_json' }),
      input({ payload: reading(7, -0.000001, { dedupKey: unicode, sequence: 42 }) }),
    ])
    const got = await Promise.all(ids.map((id) => dlq.get(id)))
    expect(got[0]?.payload).toEqual(nested)
    expect(got[0]?.error).toBe(unicode)
    expect(got[1]?.payload).toBe(big)
    expect(got[2]?.payload).toEqual({ kind: 'bytes', encoding: 'base64', data: bytes.toString('base64') })
    expect(Buffer.from((got[2]?.payload as { data: string }).data, 'base64').equals(bytes)).toBe(true)
    expect(got[3]?.payload).toEqual(reading(7, -0.000001, { dedupKey: unicode, sequence: 42 }))
    expect((await dlq.list()).map((e) => e.payload)).toEqual(got.map((e) => e?.payload))
    // A rewrite keeps the payload whole.
    expect((await dlq.recordFailure(ids[0] ?? '', 'x', clock.now(), 3))?.payload).toEqual(nested)
  })
})
