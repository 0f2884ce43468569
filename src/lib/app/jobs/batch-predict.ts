import { engineFor, type PredictionEngine, predictSensor, type PredictionOutcome } from '../../domain/ml/index.js'
import { AppError, TransientStoreError, UnavailableError, UsageError } from '../../errors/index.js'
import type { NewBreachEvent, NewPrediction, PredictionStore, PredictionTx, SensorWindow, Shard } from '../../ports/prediction-store.js'
import type { AppContext } from '../context.js'
import { startJobRun } from '../job-runs.js'

export interface BatchPredictOptions {
  /** --engine; undefined: ML_DEFAULT_ENGINE / ML_USE_TAYLOR_PREDICTOR, and taylor for ML_TAYLOR_SENSOR_WHITELIST. */
  engine?: PredictionEngine | undefined
  window: number
  horizonMinutes: number
  dedupeMinutes: number
  shard: Shard | null
  concurrency: number
  /** Sensors per transaction (default 500). */
  batchSize?: number
  onProgress?: (p: BatchPredictProgress) => void
}

export interface BatchPredictCounts {
  /** Active sensors considered (of this shard). */
  sensors: number
  predictions: number
  /** PRED_THRESHOLD_BREACH events raised (each with its notification). */
  events: number
  /** No new readings, fewer than 2 readings, or taken by a concurrent run. */
  skipped: number
  failed: number
}

export interface BatchPredictProgress extends BatchPredictCounts {
  done: number
  elapsedMs: number
}

export interface SensorFailure {
  sensorId: number
  error: string
}

export interface BatchPredictResult extends BatchPredictCounts {
  jobRunId: number
  engine: PredictionEngine | 'per-sensor'
  shard: string | null
  seconds: number
  sensorsPerSecond: number
  /** The first failures (at most 20). */
  failures: SensorFailure[]
}

const DEFAULT_BATCH = 500
const MAX_FAILURES_LISTED = 20
const TRANSIENT_ATTEMPTS = 3

/** `--shard i/n` -> { index, count }; UsageError when malformed. */
export function parseShard(text: string | undefined): Shard | null {
  if (text === undefined || text.trim() === '') return null
  const m = /^(\d+)\/(\d+)$/.exec(text.trim())
  const index = Number(m?.[1])
  const count = Number(m?.[2])
  if (!m || count < 1 || index >= count) throw new UsageError(`--shard must be i/n with 0 <= i < n (e.g. 0/2), got ${JSON.stringify(text)}`)
  return { index, count }
}

/** An outage or a transient conflict is the whole batch's; anything else is the sensor's own (isolated by a savepoint). */
function isBatchError(err: unknown): boolean {
  return err instanceof UnavailableError || err instanceof TransientStoreError
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 500)

interface Item {
  window: SensorWindow
  engine: PredictionEngine
  outcome: PredictionOutcome | null
}

interface Written {
  predictions: number
  events: number
  skipped: number
  failures: SensorFailure[]
}

/** The writes of some sensors: compare-and-set of their watermarks first, then only the sensors won. */
async function writeItems(tx: PredictionTx, items: readonly Item[], now: number, dedupeMs: number): Promise<Written> {
  const won = await tx.claim(
    items.map((i) => ({ sensorId: i.window.sensorId, from: i.window.watermark, to: i.window.maxReadingId })),
    now,
  )
  const mine = items.filter((i) => won.has(i.window.sensorId))
  const predicted = mine.filter((i): i is Item & { outcome: PredictionOutcome } => i.outcome !== null)
  const models = new Map<number, number>()
  for (const engine of ['baseline', 'taylor'] as const) {
    const ids = predicted.filter((i) => i.engine === engine).map((i) => i.window.sensorId)
    if (ids.length > 0) for (const [k, v] of await tx.models(ids, engine, now)) models.set(k, v)
  }
  const row = (i: Item & { outcome: PredictionOutcome }): NewPrediction => {
    const modelId = models.get(i.window.sensorId)
    if (modelId === undefined) throw new Error(`no ml_models row for sensor ${i.window.sensorId}`)
    return { ...i.outcome.prediction, sensorId: i.window.sensorId, deviceId: i.window.deviceId, modelId }
  }
  const breaching = predicted.filter((i) => i.outcome.breach !== null)
  const recent = breaching.length > 0 ? await tx.recentBreaches(breaching.map((i) => i.window.sensorId), now - dedupeMs) : new Set<number>()
  const eventful = new Set(breaching.filter((i) => !recent.has(i.window.sensorId)).map((i) => i.window.sensorId))
  const ids = await tx.insertPredictions(predicted.map(row), eventful)
  const events: NewBreachEvent[] = []
  for (const i of predicted) {
    const predictionId = ids.get(i.window.sensorId)
    if (!eventful.has(i.window.sensorId) || i.outcome.breach === null) continue
    if (predictionId === undefined) throw new Error(`the prediction of sensor ${i.window.sensorId} was not found after its insert`)
    events.push({ sensorId: i.window.sensorId, deviceId: i.window.deviceId, predictionId, breach: i.outcome.breach, predictedValue: i.outcome.prediction.predictedValue, at: now })
  }
  await tx.insertBreaches(events)
  return { predictions: predicted.length, events: events.length, skipped: items.length - predicted.length, failures: [] }
}

/**
 * One transaction for a batch: all sensors in one savepoint; if one of them fails, each sensor again
 * in its own savepoint, so only the failing one is left out (its watermark does not move).
 */
async function writeBatch(store: PredictionStore, items: readonly Item[], now: number, dedupeMs: number): Promise<Written> {
  return store.withTransaction(async (tx) => {
    try {
      return await tx.savepoint(() => writeItems(tx, items, now, dedupeMs))
    } catch (err) {
      if (isBatchError(err)) throw err
      const total: Written = { predictions: 0, events: 0, skipped: 0, failures: [] }
      for (const item of items) {
        try {
          const w = await tx.savepoint(() => writeItems(tx, [item], now, dedupeMs))
          total.predictions += w.predictions
          total.events += w.events
          total.skipped += w.skipped
        } catch (one) {
          if (isBatchError(one)) throw one
          total.failures.push({ sensorId: item.window.sensorId, error: errorText(one) })
        }
      }
      return total
    }
  })
}

/**
 * `ingest batch predict` once (DESIGN §11): every active sensor with readings newer than its watermark
 * gets one prediction with every column, a PRED_THRESHOLD_BREACH event when the forecast violates a
 * threshold (deduplicated over --dedupe-minutes), and its watermark moved by compare-and-set in the same
 * transaction, so concurrent runs (cron overlap, shards) never write a prediction twice. A failing sensor
 * is counted and the others go on. One job_runs row per run.
 */
export async function runBatchPredict(ctx: AppContext, options: BatchPredictOptions): Promise<BatchPredictResult> {
  if (!(Number.isSafeInteger(options.window) && options.window >= 2)) throw new UsageError('--window must be a whole number of 2 or more')
  if (!(options.horizonMinutes > 0)) throw new UsageError('--horizon-minutes must be above 0')
  if (!(options.dedupeMinutes >= 0)) throw new UsageError('--dedupe-minutes must be 0 or more')
  if (!(Number.isSafeInteger(options.concurrency) && options.concurrency >= 1)) throw new UsageError('--concurrency must be a whole number of 1 or more')
  const store = ctx.iot.predictions
  const ml = ctx.config.ml
  const whitelist = new Set(ml.taylorSensorWhitelist)
  const shardText = options.shard ? `${options.shard.index}/${options.shard.count}` : null
  const started = ctx.clock.now()
  const run = await startJobRun(ctx, 'batch predict', {
    engine: options.engine ?? ml.defaultEngine,
    window: options.window,
    horizonMinutes: options.horizonMinutes,
    dedupeMinutes: options.dedupeMinutes,
    shard: shardText,
    concurrency: options.concurrency,
  })
  const counts: BatchPredictCounts = { sensors: 0, predictions: 0, events: 0, skipped: 0, failed: 0 }
  const failures: SensorFailure[] = []
  const fail = (f: SensorFailure): void => {
    counts.failed++
    if (failures.length < MAX_FAILURES_LISTED) failures.push(f)
  }
  let done = 0
  try {
    const sensors = await store.activeSensors(options.shard)
    counts.sensors = sensors.length
    const size = Math.max(1, options.batchSize ?? DEFAULT_BATCH)
    const batches: Array<typeof sensors> = []
    for (let i = 0; i < sensors.length; i += size) batches.push(sensors.slice(i, i + size))
    const dedupeMs = options.dedupeMinutes * 60_000

    const processBatch = async (batch: typeof sensors): Promise<void> => {
      try {
        const windows = await store.pendingWindows(batch, options.window)
        counts.skipped += batch.length - windows.length
        if (windows.length === 0) return
        const thresholds = await store.thresholds(windows.map((w) => w.sensorId))
        for (let attempt = 1; ; attempt++) {
          const now = ctx.clock.now()
          const items = windows.map((w): Item => {
            const engine = engineFor(w.sensorId, options.engine, ml.defaultEngine, whitelist)
            const predictOptions = { engine, window: options.window, horizonMinutes: options.horizonMinutes, taylorOrder: ml.taylorOrder, taylorHorizon: ml.taylorHorizon, now }
            return { window: w, engine, outcome: predictSensor(w.points, thresholds.get(w.sensorId) ?? [], predictOptions) }
          })
          try {
            const written = await writeBatch(store, items, now, dedupeMs)
            counts.predictions += written.predictions
            counts.events += written.events
            counts.skipped += written.skipped
            for (const f of written.failures) fail(f)
            return
          } catch (err) {
            // A deadlock between overlapping runs: the retry finds the other run's watermarks and skips those sensors.
            if (err instanceof TransientStoreError && attempt < TRANSIENT_ATTEMPTS) continue
            throw err
          }
        }
      } catch (err) {
        // The batch could not be read or written at all: each of its sensors not yet counted failed.
        ctx.logger.error({ err, sensors: batch.length, first: batch[0]?.sensorId }, 'batch predict: a batch failed')
        for (const s of batch) fail({ sensorId: s.sensorId, error: errorText(err) })
      } finally {
        done += batch.length
        options.onProgress?.({ ...counts, done, elapsedMs: ctx.clock.now() - started })
      }
    }

    let next = 0
    const worker = async (): Promise<void> => {
      while (next < batches.length) {
        const batch = batches[next++]
        if (batch) await processBatch(batch)
      }
    }
    await Promise.all(Array.from({ length: Math.min(options.concurrency, Math.max(1, batches.length)) }, worker))
  } catch (err) {
    await run.fail(err, { ...counts }).catch(() => undefined)
    throw err
  }
  const seconds = (ctx.clock.now() - started) / 1000
  const result: BatchPredictResult = {
    jobRunId: run.id,
    engine: options.engine ?? (whitelist.size > 0 ? 'per-sensor' : ml.defaultEngine),
    shard: shardText,
    ...counts,
    seconds,
    sensorsPerSecond: seconds > 0 ? Math.round(counts.sensors / seconds) : counts.sensors,
    failures,
  }
  if (counts.failed > 0) await run.fail(new Error(`${counts.failed} sensor(s) failed; first: sensor ${failures[0]?.sensorId}: ${failures[0]?.error}`), { ...counts })
  else await run.succeed({ ...counts })
  return result
}

export interface BatchPredictLoopOptions extends BatchPredictOptions {
  intervalMs: number
  /** Ends the loop (between cycles, or during the sleep). */
  signal: AbortSignal
  onCycle?: (result: BatchPredictResult) => void
}

/** `ingest batch predict` without --once: a cycle every --interval until the signal; a failing cycle is logged and the loop goes on. */
export async function runBatchPredictLoop(ctx: AppContext, options: BatchPredictLoopOptions): Promise<{ cycles: number; last: BatchPredictResult | null }> {
  let cycles = 0
  let last: BatchPredictResult | null = null
  while (!options.signal.aborted) {
    try {
      last = await runBatchPredict(ctx, options)
      options.onCycle?.(last)
    } catch (err) {
      if (err instanceof UsageError) throw err
      ctx.logger.error({ err: err instanceof AppError ? err.message : err }, 'batch predict cycle failed')
    }
    cycles++
    if (options.signal.aborted) break
    await Promise.race([ctx.clock.sleep(options.intervalMs), new Promise<void>((resolve) => options.signal.addEventListener('abort', () => resolve(), { once: true }))])
  }
  return { cycles, last }
}
