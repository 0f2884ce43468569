import { describe, expect, it } from 'vitest'

import { createNoopMlStream } from '../../../src/lib/adapters/ml-stream-noop.js'
import type { RedisClient } from '../../../src/lib/adapters/redis/client.js'
import { createRedisMlStream, DataTimeThrottle, entryFields, epochSecondsText, floatText, pointValues, rawValues, validatedValues } from '../../../src/lib/adapters/redis/ml-stream.js'
import { ML_STREAMS, type MlPoint, type MlReading, POINT_FIELDS, RAW_FIELDS, VALIDATED_FIELDS } from '../../../src/lib/ports/ml-stream.js'
import { deferred, type Deferred, fakeClock, T0 } from '../resilience/fakes.js'

const validatedFields = (r: MlReading) => entryFields(VALIDATED_FIELDS, validatedValues(r))
const rawFields = (r: MlReading) => entryFields(RAW_FIELDS, rawValues(r))
const pointFields = (p: MlPoint) => entryFields(POINT_FIELDS, pointValues(p))

/**
 * A Redis client as far as the ML stream uses it: pipelines of its XADD-many script command, each
 * exec() answered by the test. `sent` holds each pipeline's entries as the XADDs the script makes.
 */
class FakeRedis {
  status = 'ready'
  connects = 0
  defined: string[] = []
  /** Script calls per pipeline (entries per call). */
  readonly calls: number[][] = []
  readonly sent: Array<{ stream: string; args: string[] }[]> = []
  readonly execs: Array<Deferred<Array<[Error | null, unknown]> | null>> = []
  /** Answer every exec at once with success (else the test answers `execs`). */
  autoAnswer = true

  connect(): Promise<void> {
    this.connects++
    return Promise.resolve()
  }

  defineCommand(name: string): void {
    this.defined.push(name)
  }

  pipeline() {
    const cmds: { stream: string; args: string[] }[] = []
    const calls: number[] = []
    const pipe = {
      ingestMlXaddMany: (stream: string, maxLen: string, names: string, rows: string) => {
        const fieldNames = JSON.parse(names) as string[]
        const values = JSON.parse(rows) as string[][]
        for (const v of values) cmds.push({ stream, args: ['MAXLEN', '~', maxLen, '*', ...entryFields(fieldNames, v)] })
        calls.push(values.length)
        return pipe
      },
      exec: () => {
        this.sent.push(cmds)
        this.calls.push(calls)
        const d = deferred<Array<[Error | null, unknown]> | null>()
        this.execs.push(d)
        if (this.autoAnswer) d.resolve(calls.map((n) => [null, n]))
        return d.promise
      },
    }
    return pipe
  }

  asClient(): RedisClient {
    return this as unknown as RedisClient
  }
}

const reading = (sensorId: number, seconds: number, classification = 'ML_PREDICTION'): MlReading => ({ sensorId, sensorType: 'temperature', value: 21.5, time: seconds * 1000, classification })

/** Runs queued callbacks when told (instead of setImmediate), so a test sees exactly what one send carries. */
function manualSchedule() {
  const queue: Array<() => void> = []
  return {
    schedule: (fn: () => void) => void queue.push(fn),
    run: () => {
      for (const fn of queue.splice(0)) fn()
    },
    get pending() {
      return queue.length
    },
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('ML stream field lists and formats', () => {
  it('readings:validated and readings:raw carry the reference §11.2 / §11.3 fields plus the class and the schema version', () => {
    expect(VALIDATED_FIELDS).toEqual(['sensor_id', 'sensor_type', 'value', 'timestamp', 'classification', 'schema_version'])
    expect(RAW_FIELDS).toEqual(['sensor_id', 'sensor_type', 'value', 'timestamp', 'timestamp_iso', 'classification', 'schema_version'])
    const r: MlReading = { sensorId: 42, sensorType: null, value: 23, time: 1740523306123.456, classification: 'ALERT' }
    const names = (f: string[]) => f.filter((_, i) => i % 2 === 0)
    expect(names(validatedFields(r))).toEqual([...VALIDATED_FIELDS])
    expect(names(rawFields(r))).toEqual([...RAW_FIELDS])
    expect(rawFields(r)).toEqual(['sensor_id', '42', 'sensor_type', 'unknown', 'value', '23.0', 'timestamp', '1740523306.123456', 'timestamp_iso', '2025-02-25T22:41:46.123456Z', 'classification', 'ALERT', 'schema_version', '1'])
  })

  it('datapoints:validated fields: sequence -1 and metadata {} when absent, metadata objects as JSON', () => {
    const base = { seriesId: 'infrastructure:web-1:cpu', domain: 'infrastructure', sourceId: 'web-1', streamId: 'cpu', value: 12.25, time: Date.UTC(2026, 0, 2, 3, 4, 5), classification: 'normal' }
    const f = pointFields({ ...base, sequence: null })
    expect(f.filter((_, i) => i % 2 === 0)).toEqual([...POINT_FIELDS])
    expect(f).toEqual(['series_id', 'infrastructure:web-1:cpu', 'domain', 'infrastructure', 'source_id', 'web-1', 'stream_id', 'cpu', 'value', '12.25', 'timestamp', '1767323045.0', 'timestamp_iso', '2026-01-02T03:04:05.000000Z', 'classification', 'normal', 'sequence', '-1', 'metadata', '{}', 'schema_version', '1'])
    expect(pointFields({ ...base, sequence: 7, metadata: { host: 'a' } })).toContain('{"host":"a"}')
    expect(pointFields({ ...base, sequence: 7, metadata: '{"x":1}' })).toEqual(expect.arrayContaining(['7', '{"x":1}']))
  })

  it('epoch seconds like Python str(float), to the microsecond; floats parse back', () => {
    expect(epochSecondsText(1740523306000)).toBe('1740523306.0')
    expect(epochSecondsText(1740523306500)).toBe('1740523306.5')
    expect(epochSecondsText(1740523306000.001)).toBe('1740523306.000001')
    expect(epochSecondsText(-500)).toBe('-0.5')
    for (const v of [0, -3, 23.5, 1e-5, 1e21, -0.1]) expect(Number(floatText(v))).toBe(v)
    expect(floatText(23)).toBe('23.0')
  })
})

describe('DataTimeThrottle (reference §11.1 rule, by data time)', () => {
  it('passes the first reading of a sensor, then one per interval of data time; older readings are dropped; sensors are independent', () => {
    const t = new DataTimeThrottle(1)
    expect(t.admit(1, 1000)).toBe(true)
    expect(t.admit(1, 1999.999)).toBe(false)
    expect(t.admit(2, 1500)).toBe(true)
    expect(t.admit(1, 2000)).toBe(true)
    expect(t.admit(1, 1500)).toBe(false) // out of order: negative difference
    expect(t.admit(1, 2999)).toBe(false)
    expect(t.admit(1, 3000)).toBe(true)
  })

  it('exactly one interval apart passes even where float ms are not exact (microseconds compared)', () => {
    const t = new DataTimeThrottle(1)
    let ms = 1796386296799.9998
    let passed = 0
    for (let i = 0; i < 1000; i++, ms += 1000) if (t.admit(9, ms)) passed++
    expect(passed).toBe(1000)
  })

  it('an interval of 0 passes everything, in any order', () => {
    const t = new DataTimeThrottle(0)
    expect([5, 5, 4, 3].map((s) => t.admit(1, s * 1000))).toEqual([true, true, true, true])
  })

  it('its memory is bounded: past maxSensors it forgets (the next reading of a forgotten sensor passes)', () => {
    const t = new DataTimeThrottle(10, 3)
    for (const id of [1, 2, 3]) expect(t.admit(id, 0)).toBe(true)
    expect(t.admit(1, 1)).toBe(false)
    expect(t.admit(4, 0)).toBe(true) // clears
    expect(t.admit(1, 1)).toBe(true)
  })
})

describe('Redis ML stream adapter (fake client)', () => {
  it('publishReadings returns before anything is sent; one tick of calls goes out as one pipelined XADD MAXLEN ~ per entry', async () => {
    const redis = new FakeRedis()
    const s = manualSchedule()
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 500, minIntervalSeconds: 1, clock: fakeClock(), schedule: s.schedule })
    ml.publishReadings({ validated: [reading(1, 100), reading(2, 100)], raw: [reading(1, 100)] })
    ml.publishReadings({ validated: [reading(3, 100)], raw: [] })
    ml.publishPoints([{ seriesId: 'a:b:c', domain: 'a', sourceId: 'b', streamId: 'c', value: 1, time: 0, classification: 'normal', sequence: null }])
    expect(redis.sent).toHaveLength(0)
    expect(s.pending).toBe(1)
    expect(ml.status().queued).toBe(5)
    s.run()
    expect(redis.sent).toHaveLength(1)
    expect(redis.defined).toEqual(['ingestMlXaddMany'])
    expect(redis.calls[0]).toEqual([3, 1, 1])
    const cmds = redis.sent[0] ?? []
    expect(cmds.map((c) => c.stream)).toEqual([ML_STREAMS.validated, ML_STREAMS.validated, ML_STREAMS.validated, ML_STREAMS.raw, ML_STREAMS.points])
    for (const c of cmds) expect(c.args.slice(0, 4)).toEqual(['MAXLEN', '~', '500', '*'])
    expect(cmds[0]?.args.slice(4)).toEqual(validatedFields(reading(1, 100)))
    await settle()
    expect(ml.status()).toMatchObject({ queued: 0, published: { 'readings:validated': 3, 'readings:raw': 1, 'datapoints:validated': 1 }, dropped: 0, errors: 0, lastPublishAgeSeconds: 0 })
  })

  it('entries go in script calls of at most 1000 per stream, all in one pipeline', () => {
    const redis = new FakeRedis()
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 10, minIntervalSeconds: 0, clock: fakeClock(), schedule: (fn) => fn() })
    ml.publishReadings({ validated: Array.from({ length: 2500 }, (_, i) => reading(i, 1)), raw: [reading(1, 1)] })
    expect(redis.calls).toEqual([[1000, 1000, 500, 1]])
    expect(redis.sent[0]?.[2499]?.args.slice(4, 6)).toEqual(['sensor_id', '2499'])
  })

  it('the throttle applies to readings:validated only; throttled entries are counted', () => {
    const redis = new FakeRedis()
    const counted: Array<[string, string, number]> = []
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 10, minIntervalSeconds: 1, clock: fakeClock(), schedule: (fn) => fn(), onEntries: (stream, outcome, n) => counted.push([stream, outcome, n]) })
    const times = [100, 100.25, 100.5, 101, 101.75, 102]
    ml.publishReadings({ validated: times.map((t) => reading(1, t)), raw: times.map((t) => reading(1, t)) })
    const streams = (redis.sent[0] ?? []).map((c) => c.stream)
    expect(streams.filter((x) => x === ML_STREAMS.validated)).toHaveLength(3)
    expect(streams.filter((x) => x === ML_STREAMS.raw)).toHaveLength(6)
    expect(ml.status().throttled).toBe(3)
    expect(counted).toContainEqual([ML_STREAMS.validated, 'throttled', 3])
  })

  it('a failed pipeline: counted once as an error, its entries dropped, then Redis is skipped (entries dropped at once, nothing sent) until the back-off period ends', async () => {
    const redis = new FakeRedis()
    redis.autoAnswer = false
    const clock = fakeClock()
    const warned: unknown[] = []
    const logger = { warn: (o: unknown) => warned.push(o), info: () => undefined, debug: () => undefined, error: () => undefined }
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 10, minIntervalSeconds: 0, clock, schedule: (fn) => fn(), logger: logger as never })
    ml.publishReadings({ validated: [reading(1, 1), reading(1, 2)], raw: [] })
    redis.execs[0]?.reject(new Error('Connection is closed.'))
    await settle()
    expect(ml.status()).toMatchObject({ errors: 1, dropped: 2, available: false, lastError: 'Connection is closed.', queued: 0 })
    expect(warned).toHaveLength(1)
    for (let i = 0; i < 5; i++) ml.publishReadings({ validated: [reading(1, 10 + i)], raw: [] })
    expect(redis.sent).toHaveLength(1)
    expect(ml.status()).toMatchObject({ errors: 1, dropped: 7 })
    clock.advance(1_000)
    redis.autoAnswer = true
    ml.publishReadings({ validated: [reading(1, 20)], raw: [] })
    expect(redis.sent).toHaveLength(2)
    await settle()
    expect(ml.status()).toMatchObject({ available: true, published: { 'readings:validated': 1 }, dropped: 7, errors: 1 })
    expect(warned).toHaveLength(1)
  })

  it('a failed script call in a pipeline drops its entries and counts an error (the other calls are published)', async () => {
    const redis = new FakeRedis()
    redis.autoAnswer = false
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 10, minIntervalSeconds: 0, clock: fakeClock(), schedule: (fn) => fn() })
    ml.publishReadings({ validated: [reading(1, 1), reading(2, 1)], raw: [reading(1, 1)] })
    expect(redis.calls[0]).toEqual([2, 1])
    redis.execs[0]?.resolve([[new Error('WRONGTYPE'), null], [null, 1]])
    await settle()
    expect(ml.status()).toMatchObject({ published: { 'readings:validated': 0, 'readings:raw': 1 }, dropped: 2, errors: 1, lastError: 'WRONGTYPE' })
  })

  it('a Redis that never answers never holds a publisher; past maxQueued entries waiting or in flight, new ones are dropped and counted', async () => {
    const redis = new FakeRedis()
    redis.autoAnswer = false
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 10, minIntervalSeconds: 0, clock: fakeClock(), schedule: (fn) => fn(), maxQueued: 5 })
    ml.publishReadings({ validated: [1, 2, 3].map((i) => reading(i, 1)), raw: [] })
    ml.publishReadings({ validated: [4, 5, 6].map((i) => reading(i, 1)), raw: [reading(1, 1)] })
    ml.publishPoints([{ seriesId: 'a:b:c', domain: 'a', sourceId: 'b', streamId: 'c', value: 1, time: 0, classification: 'normal', sequence: 1 }])
    expect(ml.status()).toMatchObject({ queued: 5, dropped: 3, lastError: 'ML stream queue full' })
    expect(redis.sent.map((p) => p.length)).toEqual([3, 2])
    for (const e of redis.execs) e.resolve([])
    await settle()
    expect(ml.status().queued).toBe(0)
  })

  it('while the client is not connected entries are dropped without a command; a never-connected lazy client is connected at creation', () => {
    const redis = new FakeRedis()
    redis.status = 'wait'
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 10, minIntervalSeconds: 0, clock: fakeClock(), schedule: (fn) => fn() })
    expect(redis.connects).toBe(1)
    redis.status = 'reconnecting'
    ml.publishReadings({ validated: [reading(1, 1)], raw: [reading(1, 1)] })
    expect(redis.sent).toHaveLength(0)
    expect(ml.status()).toMatchObject({ dropped: 2, available: false, errors: 0, lastError: 'redis not connected (reconnecting)', lastErrorAt: new Date(T0).toISOString() })
  })

  it('close() sends what waits and waits for the pipelines in flight', async () => {
    const redis = new FakeRedis()
    redis.autoAnswer = false
    const s = manualSchedule()
    const ml = createRedisMlStream(redis.asClient(), { maxLen: 10, minIntervalSeconds: 0, clock: fakeClock(), schedule: s.schedule })
    ml.publishReadings({ validated: [reading(1, 1)], raw: [] })
    let closed = false
    const closing = ml.close().then(() => (closed = true))
    expect(redis.sent).toHaveLength(1)
    await settle()
    expect(closed).toBe(false)
    redis.execs[0]?.resolve([[null, 1]])
    await closing
    expect(ml.status().published['readings:validated']).toBe(1)
  })
})

describe('no-op ML stream (Redis off)', () => {
  it('is off, says why, and publishing does nothing', () => {
    const ml = createNoopMlStream('Redis not configured', { minIntervalSeconds: 1, maxLen: 10_000 })
    ml.publishReadings({ validated: [reading(1, 1)], raw: [] })
    expect(ml.enabled).toBe(false)
    expect(ml.status()).toMatchObject({ enabled: false, available: false, reason: 'Redis not configured', queued: 0, published: { 'readings:validated': 0 } })
  })
})
