import { epochMicros, isoMicros } from '../../domain/time.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import { ML_SCHEMA_VERSION, ML_STREAMS, POINT_FIELDS, RAW_FIELDS, VALIDATED_FIELDS, type MlPoint, type MlReading, type MlStream, type MlStreamName, type MlStreamStatus } from '../../ports/ml-stream.js'
import { BackoffGate } from './backoff-gate.js'
import type { RedisClient } from './client.js'

export type MlEntryOutcome = 'published' | 'throttled' | 'dropped'

export interface RedisMlStreamOptions {
  /** ML_STREAM_MAXLEN: each XADD trims with `MAXLEN ~ maxLen`. */
  maxLen: number
  /** ML_PUBLISH_MIN_INTERVAL_SECONDS: per-sensor throttle of readings:validated by data time; 0 = off. */
  minIntervalSeconds: number
  clock: Pick<Clock, 'now'>
  logger?: Logger | undefined
  /** Entries waiting or in flight beyond which new ones are dropped, so a slow Redis never grows memory. Default 100 000. */
  maxQueued?: number
  /** Counts entries by stream and outcome (metrics). */
  onEntries?: ((stream: MlStreamName, outcome: MlEntryOutcome, n: number) => void) | undefined
  /** Defers the send past the callers' answers; default setImmediate. */
  schedule?: (fn: () => void) => void
}

/**
 * The legacy ThrottledReadingBroker rule (reference §11.1), per sensor by DATA time: a reading less than
 * the interval after the last one published for its sensor (or older than it) is not published.
 * Times compared in whole microseconds, so readings exactly one interval apart always pass.
 */
export class DataTimeThrottle {
  private readonly last = new Map<number, number>()
  private readonly minIntervalUs: number

  constructor(
    minIntervalSeconds: number,
    private readonly maxSensors = 500_000,
  ) {
    this.minIntervalUs = Math.round(minIntervalSeconds * 1e6)
  }

  /** Whether a reading of this sensor at this time (epoch ms) is published; remembers it when it is. */
  admit(sensorId: number, time: number): boolean {
    if (this.minIntervalUs <= 0) return true
    const us = epochMicros(time)
    const prev = this.last.get(sensorId)
    if (prev !== undefined && us - prev < this.minIntervalUs) return false
    // Bounded: forgetting a sensor only lets its next reading through.
    if (prev === undefined && this.last.size >= this.maxSensors) this.last.clear()
    this.last.set(sensorId, us)
    return true
  }
}

/** Epoch ms as epoch seconds the way Python's `str(float)` writes them (`1740523306.123456`, `1740523306.0`). */
export function epochSecondsText(ms: number): string {
  const us = epochMicros(ms)
  if (us < 0) return `-${epochSecondsText(-ms)}`
  const whole = Math.floor(us / 1e6)
  const frac = us - whole * 1e6
  return frac === 0 ? `${whole}.0` : `${whole}.${String(frac).padStart(6, '0').replace(/0+$/, '')}`
}

/** A float as Python's `str(float)` would mostly write it (`23.0`, `23.5`); any decimal parses with `float()`. */
export function floatText(v: number): string {
  return Number.isInteger(v) && Math.abs(v) < 1e16 ? `${v}.0` : String(v)
}

/** The values of a readings:validated entry, in VALIDATED_FIELDS order. */
export function validatedValues(r: MlReading): string[] {
  return [String(r.sensorId), r.sensorType ?? 'unknown', floatText(r.value), epochSecondsText(r.time), r.classification, ML_SCHEMA_VERSION]
}

/** The values of a readings:raw entry, in RAW_FIELDS order. */
export function rawValues(r: MlReading): string[] {
  return [String(r.sensorId), r.sensorType ?? 'unknown', floatText(r.value), epochSecondsText(r.time), isoMicros(r.time), r.classification, ML_SCHEMA_VERSION]
}

/** The values of a datapoints:validated entry, in POINT_FIELDS order. */
export function pointValues(p: MlPoint): string[] {
  const metadata = p.metadata === undefined || p.metadata === null ? '{}' : typeof p.metadata === 'string' ? p.metadata : JSON.stringify(p.metadata)
  return [p.seriesId, p.domain, p.sourceId, p.streamId, floatText(p.value), epochSecondsText(p.time), isoMicros(p.time), p.classification, String(p.sequence ?? -1), metadata, ML_SCHEMA_VERSION]
}

/** An entry as XADD's field/value list. */
export function entryFields(names: readonly string[], values: readonly string[]): string[] {
  const out: string[] = []
  names.forEach((name, i) => out.push(name, values[i] as string))
  return out
}

/**
 * XADDs many entries of one stream in one command: KEYS[1] the stream, ARGV[1] the MAXLEN, ARGV[2] the
 * field names as a JSON array, ARGV[3] the entries' values as a JSON array of arrays. One script call
 * per up to CHUNK entries costs the client ~1 µs per entry where one XADD command each costs ~20 µs
 * (measured with ioredis 5 on this machine); a chunk keeps each call short on the server.
 */
const XADD_MANY = `
local names = cjson.decode(ARGV[2])
local rows = cjson.decode(ARGV[3])
local args = {}
for i = 1, #rows do
  local row = rows[i]
  for j = 1, #names do
    args[2 * j - 1] = names[j]
    args[2 * j] = row[j]
  end
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', unpack(args, 1, 2 * #names))
end
return #rows
`
const CHUNK = 1000
const COMMAND = 'ingestMlXaddMany'

/** The pipeline as the stream uses it: the script command defined on the client (ioredis loads it when missing). */
interface XaddManyPipeline {
  [COMMAND](stream: string, maxLen: string, names: string, rows: string): XaddManyPipeline
  exec(): Promise<Array<[Error | null, unknown]> | null>
}

interface Pending {
  validated: MlReading[]
  raw: MlReading[]
  points: MlPoint[]
}

const emptyPending = (): Pending => ({ validated: [], raw: [], points: [] })

/**
 * The ML stream on Redis (DESIGN §11). Publishing never waits for Redis: entries are queued, and
 * everything queued in one tick goes out in one pipeline (of XADD_MANY calls, `MAXLEN ~ maxLen` on
 * each XADD) after the callers were answered. A failed
 * pipeline is remembered for a back-off period (the dedup filter's gate: logged once per outage),
 * during which entries are dropped and counted instead of paying a timeout each; entries are dropped
 * too while the client is not connected or when `maxQueued` entries already wait.
 */
export function createRedisMlStream(client: RedisClient, options: RedisMlStreamOptions): MlStream {
  const { clock, logger } = options
  const gate = new BackoffGate(clock, { initialMs: 1_000, maxMs: 30_000, name: 'ml-stream', logger })
  const throttle = new DataTimeThrottle(options.minIntervalSeconds)
  const maxLen = String(options.maxLen)
  const maxQueued = options.maxQueued ?? 100_000
  const schedule = options.schedule ?? ((fn: () => void) => void setImmediate(fn))
  const count = options.onEntries ?? (() => undefined)
  const published: Record<MlStreamName, number> = { [ML_STREAMS.validated]: 0, [ML_STREAMS.raw]: 0, [ML_STREAMS.points]: 0 }
  let pending = emptyPending()
  let waiting = 0
  let inFlight = 0
  let scheduled = false
  let throttled = 0
  let dropped = 0
  let errors = 0
  let lastPublishAt: number | null = null
  let lastError: string | null = null
  let lastErrorAt: number | null = null
  const running = new Set<Promise<void>>()

  // The client connects lazily with no offline queue (see the dedup filter): connect now.
  if (client.status === 'wait') client.connect().catch(() => undefined)
  // EVALSHA with the script's body loaded by ioredis when the server does not have it (first use, restart).
  if (!(COMMAND in client)) client.defineCommand(COMMAND, { numberOfKeys: 1, lua: XADD_MANY })
  const names = { validated: JSON.stringify(VALIDATED_FIELDS), raw: JSON.stringify(RAW_FIELDS), points: JSON.stringify(POINT_FIELDS) }

  /** Counts entries lost (not connected, back-off, failed pipeline, full queue), by stream. */
  const drop = (n: { validated: number; raw: number; points: number }, why: string): void => {
    const total = n.validated + n.raw + n.points
    if (total === 0) return
    dropped += total
    lastError = why
    lastErrorAt = clock.now()
    if (n.validated > 0) count(ML_STREAMS.validated, 'dropped', n.validated)
    if (n.raw > 0) count(ML_STREAMS.raw, 'dropped', n.raw)
    if (n.points > 0) count(ML_STREAMS.points, 'dropped', n.points)
  }
  const sizes = (b: Pending) => ({ validated: b.validated.length, raw: b.raw.length, points: b.points.length })

  /** Counts one script call's entries as published or dropped; returns its error. */
  const settle = (stream: MlStreamName, n: number, result: [Error | null, unknown] | undefined): Error | null => {
    const err = result === undefined ? new Error('no reply') : result[0]
    if (err) {
      dropped += n
      count(stream, 'dropped', n)
      return err
    }
    published[stream] += n
    count(stream, 'published', n)
    return null
  }

  const send = (): void => {
    scheduled = false
    const batch = pending
    const n = waiting
    pending = emptyPending()
    waiting = 0
    if (n === 0) return
    if (client.status !== 'ready') return drop(sizes(batch), `redis not connected (${client.status})`)
    let started = false
    const done = gate.run(async () => {
      started = true
      const pipe = client.pipeline() as unknown as XaddManyPipeline
      const calls: Array<{ stream: MlStreamName; n: number }> = []
      const add = <T>(stream: MlStreamName, fieldNames: string, items: readonly T[], values: (x: T) => string[]): void => {
        for (let i = 0; i < items.length; i += CHUNK) {
          const part = items.slice(i, i + CHUNK)
          pipe[COMMAND](stream, maxLen, fieldNames, JSON.stringify(part.map(values)))
          calls.push({ stream, n: part.length })
        }
      }
      add(ML_STREAMS.validated, names.validated, batch.validated, validatedValues)
      add(ML_STREAMS.raw, names.raw, batch.raw, rawValues)
      add(ML_STREAMS.points, names.points, batch.points, pointValues)
      inFlight += n
      let results: Array<[Error | null, unknown]>
      try {
        results = (await pipe.exec()) ?? []
      } catch (err) {
        errors++
        drop(sizes(batch), (err as Error).message)
        throw err
      } finally {
        inFlight -= n
      }
      const failures = calls.map((c, i) => settle(c.stream, c.n, results[i]))
      const failure = failures.find((f) => f !== null)
      if (failure) {
        errors++
        lastError = failure.message
        lastErrorAt = clock.now()
        throw failure
      }
      lastPublishAt = clock.now()
    }, undefined)
    if (!started) return drop(sizes(batch), 'redis failing: skipped during back-off')
    const tracked = done.then(() => void running.delete(tracked))
    running.add(tracked)
  }

  const enqueue = (n: number): void => {
    if (n === 0) return
    waiting += n
    if (!scheduled) {
      scheduled = true
      schedule(send)
    }
  }
  const room = (): number => Math.max(0, maxQueued - waiting - inFlight)

  return {
    enabled: true,
    publishReadings({ validated, raw }) {
      let thr = 0
      let over = 0
      let free = room()
      for (const r of validated) {
        if (!throttle.admit(r.sensorId, r.time)) thr++
        else if (free > 0) {
          pending.validated.push(r)
          free--
        } else over++
      }
      const rawTaken = Math.min(free, raw.length)
      for (let i = 0; i < rawTaken; i++) pending.raw.push(raw[i] as MlReading)
      if (thr > 0) {
        throttled += thr
        count(ML_STREAMS.validated, 'throttled', thr)
      }
      drop({ validated: over, raw: raw.length - rawTaken, points: 0 }, 'ML stream queue full')
      enqueue(validated.length - thr - over + rawTaken)
    },
    publishPoints(points) {
      const taken = Math.min(room(), points.length)
      for (let i = 0; i < taken; i++) pending.points.push(points[i] as MlPoint)
      drop({ validated: 0, raw: 0, points: points.length - taken }, 'ML stream queue full')
      enqueue(taken)
    },
    status(): MlStreamStatus {
      const now = clock.now()
      const g = gate.status()
      return {
        enabled: true,
        reason: null,
        available: client.status === 'ready' && g.healthy,
        queued: waiting + inFlight,
        published: { ...published },
        throttled,
        dropped,
        errors,
        lastPublishAt: lastPublishAt === null ? null : new Date(lastPublishAt).toISOString(),
        lastPublishAgeSeconds: lastPublishAt === null ? null : Math.max(0, (now - lastPublishAt) / 1000),
        lastError,
        lastErrorAt: lastErrorAt === null ? null : new Date(lastErrorAt).toISOString(),
        minIntervalSeconds: options.minIntervalSeconds,
        maxLen: options.maxLen,
      }
    },
    async close() {
      if (scheduled) send()
      await Promise.all([...running])
    },
  }
}
