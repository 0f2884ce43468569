import { z } from 'zod'

import { parseDurationSeconds } from '../config/index.js'
import { BugError, NotFoundError, UsageError } from '../errors/index.js'
import { type Clock, systemClock } from '../ports/clock.js'
import type { DeadLetterEntry, DeadLetterQueue, DlqFilter, DlqStage, DlqStats, DlqStatus, ReplayableItem, ReplayablePoint, ReplayableReading } from '../ports/dead-letter-queue.js'
import type { AppContext } from './context.js'
import type { IdReading, IngestService } from './ingest/ingest-service.js'
import type { Transport } from './ingest/items.js'
import { cliActor, type JobRun, startJobRun } from './job-runs.js'

// ---------------------------------------------------------------- opening the queue

/** What opening the DLQ needs: no database (the DLQ must stay usable while PostgreSQL is down). */
export type DlqEnv = Pick<AppContext, 'config' | 'logger'> & { clock?: Clock }

export interface OpenDlqOptions {
  /** Create the local DLQ file when missing (default true). The dlq commands pass false: a missing file is an error naming the path. */
  create?: boolean
}

/**
 * Opens the configured DLQ backend (DESIGN §6): `local` (`$INGEST_DATA_DIR/dlq.db`, default) or
 * `redis` (`DLQ_BACKEND=redis`: the stream DLQ_STREAM_NAME). The adapters are imported lazily so an
 * unused driver is never loaded. The caller closes it.
 */
export async function openDlq(env: DlqEnv, options: OpenDlqOptions = {}): Promise<DeadLetterQueue> {
  const { config, logger } = env
  const clock = env.clock ?? systemClock
  if (config.dlq.backend === 'redis') {
    const { createRedisClient } = await import('../adapters/redis/client.js')
    const { openRedisDlq } = await import('../adapters/dlq/redis.js')
    // Whole-stream scans and 100 KB payloads: a longer command timeout than the request-path default.
    const client = createRedisClient(config.redis.url ?? '', { keyPrefix: config.redis.keyPrefix, logger, commandTimeoutMs: 10_000 })
    try {
      return await openRedisDlq({ client, streamName: config.dlq.streamName, maxLen: config.dlq.maxLen, clock, ownsClient: true })
    } catch (err) {
      client.disconnect()
      throw err
    }
  }
  const { openLocalDlq } = await import('../adapters/dlq/local.js')
  const dlq = await openLocalDlq({ dataDir: config.dataDir, maxLen: config.dlq.maxLen, clock, create: options.create ?? true })
  logger.debug({ path: dlq.path }, 'local dead-letter queue')
  return dlq
}

// ---------------------------------------------------------------- filters

const STAGE_SET: Record<DlqStage, true> = { parse: true, validation: true, store: true, breaker_open: true, ownership: true, processing: true, replay: true }
const STATUS_SET: Record<DlqStatus, true> = { pending: true, parked: true }
export const DLQ_STAGES = Object.keys(STAGE_SET) as DlqStage[]
export const DLQ_STATUSES = Object.keys(STATUS_SET) as DlqStatus[]

/** Filter options as a command receives them (text times; all optional). */
export interface DlqFilterInput {
  /** ISO-8601, or a duration meaning "that long ago" (`90s`, `30m`, `1h`, `7d`). */
  since?: string | undefined
  until?: string | undefined
  stage?: string | undefined
  errorClass?: string | undefined
  sensorId?: number | undefined
  seriesId?: string | undefined
  status?: string | undefined
  limit?: number | undefined
}

function parseTime(flag: string, text: string, now: number): number {
  const seconds = parseDurationSeconds(text)
  if (seconds !== undefined) return now - Math.round(seconds * 1000)
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text.trim()) ? Date.parse(text.trim()) : NaN
  if (Number.isNaN(ms)) throw new UsageError(`--${flag}: ${JSON.stringify(text)} is neither an ISO-8601 time nor a duration (e.g. 2026-01-31T12:00:00Z, 90m, 1h, 7d)`)
  return ms
}

/** Validates filter options into a DlqFilter (bounds inclusive, on the first failure). UsageError on bad input. */
export function parseDlqFilter(input: DlqFilterInput, now: number): DlqFilter {
  const f: DlqFilter = {}
  if (input.since !== undefined) f.since = parseTime('since', input.since, now)
  if (input.until !== undefined) f.until = parseTime('until', input.until, now)
  if (f.since !== undefined && f.until !== undefined && f.since > f.until) throw new UsageError('--since is after --until')
  if (input.stage !== undefined) {
    if (!Object.hasOwn(STAGE_SET, input.stage)) throw new UsageError(`--stage must be one of ${DLQ_STAGES.join(', ')}`)
    f.stage = input.stage as DlqStage
  }
  if (input.status !== undefined) {
    if (!Object.hasOwn(STATUS_SET, input.status)) throw new UsageError(`--status must be one of ${DLQ_STATUSES.join(', ')}`)
    f.status = input.status as DlqStatus
  }
  if (input.errorClass !== undefined) f.errorClass = input.errorClass
  if (input.seriesId !== undefined) f.seriesId = input.seriesId
  if (input.sensorId !== undefined) {
    if (!Number.isSafeInteger(input.sensorId)) throw new UsageError('--sensor-id must be an integer')
    f.sensorId = input.sensorId
  }
  if (input.limit !== undefined) {
    if (!(Number.isSafeInteger(input.limit) && input.limit >= 1)) throw new UsageError('--limit must be a whole number of 1 or more')
    f.limit = input.limit
  }
  return f
}

/** A filter as JSON for results, job_runs options and audit details (times ISO). */
export function describeFilter(f: DlqFilter): Record<string, string | number> {
  const out: Record<string, string | number> = {}
  if (f.since !== undefined) out['since'] = new Date(f.since).toISOString()
  if (f.until !== undefined) out['until'] = new Date(f.until).toISOString()
  for (const k of ['stage', 'errorClass', 'sensorId', 'seriesId', 'status', 'limit'] as const) {
    const v = f[k]
    if (v !== undefined) out[k] = v
  }
  return out
}

// ---------------------------------------------------------------- read-only use-cases

export interface DlqListResult {
  backend: DeadLetterQueue['backend']
  count: number
  entries: DeadLetterEntry[]
}

/** `ingest dlq list`: entries matching the filter, oldest first failure first, payloads whole. */
export async function listDlq(dlq: DeadLetterQueue, filter: DlqFilter): Promise<DlqListResult> {
  const entries = await dlq.list(filter)
  return { backend: dlq.backend, count: entries.length, entries }
}

/** `ingest dlq show ID`: one entry with its full payload; NotFoundError when there is none. */
export async function showDlq(dlq: DeadLetterQueue, entryId: string): Promise<DeadLetterEntry> {
  const entry = await dlq.get(entryId.trim())
  if (!entry) throw new NotFoundError(`no dead letter with id ${entryId}`, { suggestions: ['ingest dlq list'] })
  return entry
}

/** `ingest dlq stats`: depth, pending/parked, capacity, oldest failure, counts by stage and error class. */
export function dlqStats(dlq: DeadLetterQueue): Promise<DlqStats> {
  return dlq.stats()
}

// ---------------------------------------------------------------- purge

export interface PurgeDlqOptions {
  filter: DlqFilter
  /** Purging deletes for good: refused without it. */
  yes: boolean
  /** Default: the CLI user. */
  actor?: DlqActor
}

export interface PurgeDlqResult {
  backend: DeadLetterQueue['backend']
  purged: number
  filter: Record<string, string | number>
  jobRunId: number
}

/** Who asked: the CLI user (default), the service itself (automatic replay), or an API key (admin route). */
export type DlqActor = { type: 'cli' } | { type: 'system' } | { type: 'api_key'; kid: string | null; role: string | null; sourceIp?: string | null; requestId?: string | null }

async function audit(ctx: AppContext, dlq: DeadLetterQueue, actor: DlqActor | undefined, eventType: string, outcome: 'success' | 'failure', details: Record<string, unknown>): Promise<void> {
  const a = actor ?? { type: 'cli' }
  const who = a.type === 'api_key' ? { actorKid: a.kid, actorRole: a.role, sourceIp: a.sourceIp ?? null, requestId: a.requestId ?? null } : {}
  await ctx.universal.securityAudit.record({
    eventType,
    outcome,
    actorType: a.type,
    ...who,
    at: ctx.clock.now(),
    targetType: 'dlq',
    targetId: dlq.backend,
    details: a.type === 'cli' ? { ...details, by: cliActor() } : details,
  })
}

/**
 * `ingest dlq purge --yes`: deletes only the entries the filter matches (none of the rest), and
 * records a `job_runs` row and a `dlq.purge` security audit row. Refused (exit 2) without `yes`.
 */
export async function purgeDlq(ctx: AppContext, dlq: DeadLetterQueue, options: PurgeDlqOptions): Promise<PurgeDlqResult> {
  const filter = describeFilter(options.filter)
  if (!options.yes) {
    throw new UsageError('purge deletes dead letters for good: add --yes to confirm', {
      suggestions: ['ingest dlq list (same filters) shows what would be deleted', 'ingest dlq purge (same filters) --yes'],
    })
  }
  const run = await startJobRun(ctx, 'dlq purge', { backend: dlq.backend, filter })
  let purged: number
  try {
    purged = await dlq.purge(options.filter)
  } catch (err) {
    await run.fail(err)
    await audit(ctx, dlq, options.actor, 'dlq.purge', 'failure', { filter, job_run_id: run.id })
    throw err
  }
  await run.succeed({ purged })
  await audit(ctx, dlq, options.actor, 'dlq.purge', 'success', { filter, purged, job_run_id: run.id })
  ctx.logger.info({ purged, filter }, 'dead letters purged')
  return { backend: dlq.backend, purged, filter, jobRunId: run.id }
}

// ---------------------------------------------------------------- replay

export type ReplayStatus = 'stored' | 'duplicate' | 'rejected' | 'dead_lettered' | 'failed'

/** What became of one replayed reading (one per input, same order). */
export interface ReplayOutcome {
  status: ReplayStatus
  code?: string
  error?: string
}

/** Re-runs readings through the normal ingest path (idempotent: a stored reading comes back `duplicate`). */
export type ReplayFn = (items: ReplayableItem[]) => Promise<ReplayOutcome[]>

export interface ReplayDlqOptions {
  filter: DlqFilter
  /** Report what would be replayed; write nothing (no replay, no DLQ change, no job_runs or audit row). */
  dryRun: boolean
  /** At most this many entries (default: the filter's limit, else all). */
  limit?: number | undefined
  /** Entries per second (default: unlimited). */
  rate?: number | undefined
  /** Entries per replay call. Default 50. */
  batchSize?: number | undefined
  /** DLQ_MAX_RETRIES: an entry is parked once its failed replays reach this. */
  maxRetries: number
  replay: ReplayFn
  /** Default: the CLI user. */
  actor?: DlqActor
}

export interface ReplayCounts {
  /** Entries taken from the queue (skipped ones included). */
  selected: number
  stored: number
  duplicates: number
  /** Replays that did not store (rejected, dead-lettered, failed): attempts + 1. */
  failed: number
  /** Of the failed, those that became parked in this run. */
  parked: number
  /** Entries whose payload is not a replayable reading (raw MQTT messages, legacy entries): left as they are. */
  skipped: number
}

export interface PlannedReplay {
  entryId: string
  /** The reading's sensor, or null for a universal point (then seriesId). */
  sensorId: number | null
  seriesId: string | null
  transport: string
  stage: DlqStage
  errorClass: string
  attempts: number
  firstFailedAt: string
}

export interface ReplayDlqResult extends ReplayCounts {
  backend: DeadLetterQueue['backend']
  dryRun: boolean
  filter: Record<string, string | number>
  /** null on a dry run. */
  jobRunId: number | null
  /** Dry run: the entries that would be replayed, in order. */
  planned?: PlannedReplay[]
  /** The first failures of this run (at most 100). */
  failures: Array<{ entryId: string; error: string }>
}

const ReplayableReadingSchema = z.object({
  kind: z.literal('reading'),
  sensorId: z.number().int(),
  value: z.number(),
  deviceTime: z.number().nullable(),
  ingestTime: z.number(),
  dedupKey: z.string().nullable(),
  sequence: z.number().nullable(),
  transport: z.string(),
  backfill: z.boolean(),
  alerts: z.boolean(),
}) satisfies z.ZodType<ReplayableReading>

const ReplayablePointSchema = z.object({
  kind: z.literal('point'),
  domain: z.string(),
  sourceId: z.string(),
  streamId: z.string(),
  value: z.number(),
  time: z.number(),
  timed: z.boolean(),
  sequence: z.number().int(),
  metadata: z.record(z.string(), z.unknown()),
  streamType: z.string().nullable(),
  ingestTime: z.number(),
  transport: z.string(),
  backfill: z.boolean(),
  alerts: z.boolean(),
}) satisfies z.ZodType<ReplayablePoint>

/** The payload as a replayable reading, or null (raw messages, universal points, legacy entries). */
export function asReplayableReading(payload: unknown): ReplayableReading | null {
  const parsed = ReplayableReadingSchema.safeParse(payload)
  return parsed.success ? parsed.data : null
}

/** The payload as a replayable reading or point, or null (raw messages, legacy entries). */
export function asReplayable(payload: unknown): ReplayableItem | null {
  const point = ReplayablePointSchema.safeParse(payload)
  return point.success ? point.data : asReplayableReading(payload)
}

const DEFAULT_BATCH = 50
const MAX_FAILURES_SHOWN = 100

function describeOutcome(o: ReplayOutcome): string {
  return `${o.status}${o.code ? `: ${o.code}` : ''}${o.error ? ` (${o.error})` : ''}`.slice(0, 1000)
}

/**
 * `ingest dlq replay` (DESIGN §6): takes pending entries (parked ones only when the filter asks for
 * `status: parked`) in first-failure order, up to `limit`, and re-runs their readings through `replay`
 * in small batches at most `rate` entries per second. Stored or duplicate: the entry leaves the
 * queue (so replaying twice stores once). Anything else: attempts + 1, parked at `maxRetries`. An
 * error thrown by `replay` (the store is down) stops the run without counting it against the
 * entries. Writes a `job_runs` row and a `dlq.replay` audit row; a dry run writes nothing.
 */
export async function replayDlq(ctx: AppContext, dlq: DeadLetterQueue, options: ReplayDlqOptions): Promise<ReplayDlqResult> {
  const limit = options.limit ?? options.filter.limit
  if (limit !== undefined && !(Number.isSafeInteger(limit) && limit >= 1)) throw new UsageError('--limit must be a whole number of 1 or more')
  if (options.rate !== undefined && !(Number.isFinite(options.rate) && options.rate > 0)) throw new UsageError('--rate must be a number of entries per second above 0')
  const selection: DlqFilter = { ...options.filter, status: options.filter.status ?? 'pending', ...(limit === undefined ? {} : { limit }) }
  const filter = describeFilter(selection)
  const entries = await dlq.list(selection)
  const counts: ReplayCounts = { selected: entries.length, stored: 0, duplicates: 0, failed: 0, parked: 0, skipped: 0 }
  const work: Array<{ entry: DeadLetterEntry; reading: ReplayableItem }> = []
  for (const entry of entries) {
    const reading = asReplayable(entry.payload)
    if (reading) work.push({ entry, reading })
    else counts.skipped++
  }
  const base = { backend: dlq.backend, filter, failures: [] as Array<{ entryId: string; error: string }> }
  if (options.dryRun) {
    const planned = work.map(({ entry, reading }) => ({ entryId: entry.entryId, sensorId: reading.kind === 'reading' ? reading.sensorId : null, seriesId: reading.kind === 'point' ? `${reading.domain}:${reading.sourceId}:${reading.streamId}` : null, transport: reading.transport, stage: entry.stage, errorClass: entry.errorClass, attempts: entry.attempts, firstFailedAt: entry.firstFailedAt }))
    return { ...base, ...counts, dryRun: true, jobRunId: null, planned }
  }

  const run = await startJobRun(ctx, 'dlq replay', { backend: dlq.backend, filter, rate: options.rate ?? null, maxRetries: options.maxRetries })
  try {
    await replayBatches(ctx, dlq, options, work, counts, base.failures)
  } catch (err) {
    await finishReplay(ctx, dlq, options.actor, run, counts, filter, err)
    ctx.logger.warn({ err, ...counts }, 'dlq replay stopped')
    throw err
  }
  await finishReplay(ctx, dlq, options.actor, run, counts, filter, null)
  ctx.logger.info({ ...counts }, 'dlq replay done')
  return { ...base, ...counts, dryRun: false, jobRunId: run.id }
}

async function replayBatches(
  ctx: AppContext,
  dlq: DeadLetterQueue,
  options: ReplayDlqOptions,
  work: ReadonlyArray<{ entry: DeadLetterEntry; reading: ReplayableItem }>,
  counts: ReplayCounts,
  failures: Array<{ entryId: string; error: string }>,
): Promise<void> {
  const rate = options.rate
  const size = Math.max(1, Math.min(options.batchSize ?? DEFAULT_BATCH, rate === undefined ? Infinity : Math.floor(rate) || 1))
  const started = ctx.clock.now()
  for (let done = 0; done < work.length; done += size) {
    // Pace by the schedule (entry k is due at start + k/rate), so slow batches are not slowed further.
    if (rate !== undefined) {
      const wait = started + (done * 1000) / rate - ctx.clock.now()
      if (wait > 0) await ctx.clock.sleep(wait)
    }
    const batch = work.slice(done, done + size)
    const outcomes = await options.replay(batch.map((w) => w.reading))
    if (outcomes.length !== batch.length) throw new BugError(`replay returned ${outcomes.length} outcomes for ${batch.length} readings`)
    const replayed: string[] = []
    for (const [i, { entry }] of batch.entries()) {
      const o = outcomes[i] as ReplayOutcome
      if (o.status === 'stored' || o.status === 'duplicate') {
        replayed.push(entry.entryId)
        if (o.status === 'stored') counts.stored++
        else counts.duplicates++
        continue
      }
      counts.failed++
      const error = describeOutcome(o)
      if (failures.length < MAX_FAILURES_SHOWN) failures.push({ entryId: entry.entryId, error })
      const after = await dlq.recordFailure(entry.entryId, error, ctx.clock.now(), options.maxRetries)
      if (after?.status === 'parked' && entry.status !== 'parked') counts.parked++
    }
    if (replayed.length > 0) await dlq.remove(replayed)
  }
}

async function finishReplay(ctx: AppContext, dlq: DeadLetterQueue, actor: DlqActor | undefined, run: JobRun, counts: ReplayCounts, filter: Record<string, string | number>, err: unknown): Promise<void> {
  const numbers = { ...counts }
  if (err === null) await run.succeed(numbers)
  else await run.fail(err, numbers)
  await audit(ctx, dlq, actor, 'dlq.replay', err === null ? 'success' : 'failure', { filter, ...numbers, job_run_id: run.id })
}

// ---------------------------------------------------------------- replay through the ingest path

const TRANSPORTS: Record<Transport, true> = { http: true, mqtt: true, websocket: true, csv: true, replay: true }

type IngestById = Pick<IngestService, 'ingestById'>
/** The point path's replay (PointService.replayPoints). */
export interface PointReplayer {
  replayPoints(points: readonly ReplayablePoint[]): Promise<{ receipts: ReadonlyArray<{ status: ReplayStatus; code?: string }> }>
}

const outcomeOf = (rc: { status: ReplayStatus; code?: string } | undefined): ReplayOutcome => (rc ? { status: rc.status, ...(rc.code === undefined ? {} : { code: rc.code }) } : { status: 'failed', error: 'no receipt' })

/**
 * The replay callback over the one ingest path: readings through one `ingestById` call per batch
 * (transport `replay` for metrics), each keeping its original dedup key, ingest time, transport,
 * backfill and alerts flags, so a reading already stored comes back `duplicate`; universal points
 * through the point path the same way (their own time and sequence: the unique key decides).
 */
export function replayThroughIngest(service: IngestById, points?: PointReplayer): ReplayFn {
  return async (items) => {
    const readingAt: number[] = []
    const pointAt: number[] = []
    items.forEach((item, i) => (item.kind === 'point' ? pointAt : readingAt).push(i))
    const out = new Array<ReplayOutcome>(items.length)
    if (readingAt.length > 0) {
      const batch: IdReading[] = readingAt.map((i) => {
        const r = items[i] as ReplayableReading
        return {
          sensorId: r.sensorId,
          value: r.value,
          timestamp: r.deviceTime,
          sequence: r.sequence,
          dedupKey: r.dedupKey,
          ingestTime: r.ingestTime,
          transport: Object.hasOwn(TRANSPORTS, r.transport) ? r.transport : 'replay',
          backfill: r.backfill,
          alerts: r.alerts,
        }
      })
      const receipt = await service.ingestById(batch, 'replay')
      readingAt.forEach((i, k) => (out[i] = outcomeOf(receipt.receipts[k])))
    }
    if (pointAt.length > 0) {
      if (!points) for (const i of pointAt) out[i] = { status: 'failed', error: 'no point path in this replayer' }
      else {
        const receipt = await points.replayPoints(pointAt.map((i) => items[i] as ReplayablePoint))
        pointAt.forEach((i, k) => (out[i] = outcomeOf(receipt.receipts[k])))
      }
    }
    return out
  }
}
