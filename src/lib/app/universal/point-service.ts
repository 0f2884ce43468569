import type { Config } from '../../config/index.js'
import type { DataPointInput, PointPacket } from '../../domain/ingest/points.js'
import type { IngestTransport } from '../../domain/ingest/readings.js'
import { roundToMicros } from '../../domain/time.js'
import { classifyPoints, decodeStreamRuleState, domainMetadata, encodeStreamRuleState, formatSeriesId, initialStreamRuleState, type SeriesKey, type StreamConfig, type StreamRuleState } from '../../domain/universal/index.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import { TransientStoreError } from '../../errors/index.js'
import type { DeadLetterQueue, ReplayablePoint } from '../../ports/dead-letter-queue.js'
import { DuplicateKeyError } from '../../ports/ingest-store.js'
import type { MlPoint } from '../../ports/ml-stream.js'
import { type AuditRow, type PointRow, pointKeyString, type SeriesRef, type StreamAlertWrite, type UniversalStore, type UniversalTx } from '../../ports/universal-store.js'
import { GroupCommitter, submitWithin } from '../group-commit.js'
import type { ItemOutcome, Receipt } from '../ingest/items.js'
import { createResilientFlush, type DeliveryCounters, FailedOutcome } from '../ingest/resilient-flush.js'
import type { Metrics } from '../metrics.js'
import type { CircuitBreaker } from '../resilience/circuit-breaker.js'

/**
 * The universal write path (DESIGN §3, §5): points of `domain:source:stream` series through the same
 * group commit, retries, breaker (the universal store's own), poison isolation and DLQ as IoT readings.
 * A flush locks its series, drops points whose unique key is stored, classifies each series in time
 * order with its stored state, and writes points, stream alerts, states and audit rows in one transaction.
 */

/** One point on its way to a flush. Times are epoch ms. */
export interface PointItem {
  series: SeriesRef
  value: number
  /** The point's own time (now when it sent none). */
  time: number
  /** -1 when none (the column's default: part of the unique key). */
  sequence: number
  /** False when the point sent no time: it got "now" and is not idempotent. */
  timed: boolean
  metadata: Record<string, unknown>
  streamType: string | null
  ingestTime: number
  transport: IngestTransport
  backfill: boolean
  alerts: boolean
  /** Who sent it (one object per batch), for the audit row of a refused point. */
  caller: PointCaller
  /** Audit rows that commit with this item (a request's summary and its refused points ride on its first item). */
  audit: AuditRow[] | null
}

/** Who sent a batch, for `ingestion_audit_log` (never a secret). */
export interface PointCaller {
  transport: IngestTransport
  /** The first characters of the credential's SHA-256. */
  credential: string | null
  clientIp: string | null
  backfill?: boolean
  alerts?: boolean
}

/** A point the ML stream gets after the commit (clean and the stream's `enable_ml_prediction`). */
export type CommittedPoint = MlPoint

export interface PointReceipt {
  inserted: number
  rejected: number
  /** The original's per-point answer: `ok` with the class, `rejected` with the reason, `error`. */
  results: Array<{ stream_id: string; status: 'ok' | 'rejected' | 'error'; classification?: string; reason?: string; duplicate?: true }>
  duplicates: number
  dead_lettered: number
  receipts: Receipt[]
}

/** Stream configs by series id (the TTL cache over `stream_configs`, built-in defaults when none). */
export interface StreamConfigSource {
  get(keys: readonly SeriesKey[]): Promise<Map<string, StreamConfig>>
}

export interface PointServiceDeps {
  config: Config
  logger: Logger
  clock: Clock
  store: UniversalStore
  configs: StreamConfigSource
  metrics: Metrics
  breaker: CircuitBreaker
  counters: DeliveryCounters
  dlq?: DeadLetterQueue | undefined
  /** After the commit (ML stream): best effort, never fails the request. */
  afterCommit?(points: readonly CommittedPoint[]): void
}

/** A point's outcome with what its answer needs. */
interface PointOutcome extends ItemOutcome {
  message?: string
}

const DUPLICATE: PointOutcome = Object.freeze({ status: 'duplicate' })

/** A point as the DLQ keeps it: enough to re-run it through this path. */
function toReplayablePoint(item: PointItem): ReplayablePoint {
  const s = item.series
  return { kind: 'point', domain: s.domain, sourceId: s.sourceId, streamId: s.streamId, value: item.value, time: item.time, timed: item.timed, sequence: item.sequence, metadata: item.metadata, streamType: item.streamType, ingestTime: item.ingestTime, transport: item.transport, backfill: item.backfill, alerts: item.alerts }
}

/** `series|time|sequence` of an item (its unique key). */
const keyOf = (item: PointItem): string => pointKeyString(item)

function seriesRef(domain: string, sourceId: string, streamId: string): SeriesRef {
  return { seriesId: formatSeriesId({ domain, source_id: sourceId, stream_id: streamId }), domain, sourceId, streamId }
}

function auditRow(item: { series: SeriesRef; value: number | null; time: number }, caller: PointCaller, status: string, fields: { classification?: string | null; error?: string | null; metadata?: unknown }): AuditRow {
  return {
    seriesId: item.series.seriesId,
    domain: item.series.domain,
    sourceId: item.series.sourceId,
    value: item.value,
    classification: fields.classification ?? null,
    transport: caller.transport,
    credential: caller.credential,
    clientIp: caller.clientIp,
    dataTime: item.time,
    status,
    error: fields.error ?? null,
    metadata: fields.metadata === undefined ? null : JSON.stringify(fields.metadata),
  }
}

export class PointService {
  readonly committer: GroupCommitter<PointItem, PointOutcome>
  private readonly deps: PointServiceDeps

  constructor(deps: PointServiceDeps) {
    this.deps = deps
    const { config, clock, logger, metrics } = deps
    const flush = createResilientFlush<PointItem>({
      config,
      clock,
      logger,
      metrics,
      breaker: deps.breaker,
      counters: deps.counters,
      dlq: deps.dlq,
      write: (items) => this.flush(items),
      deadLetterOf: (item, failure) => ({
        transport: item.transport,
        ...failure,
        payload: toReplayablePoint(item),
        seriesId: item.series.seriesId,
      }),
      describe: (item) => ({ seriesId: item.series.seriesId }),
    })
    this.committer = new GroupCommitter<PointItem, PointOutcome>({
      concurrency: deps.store.flushConcurrency,
      maxBatch: config.ingest.batchMaxSize,
      maxQueued: config.ingest.bufferSize,
      lingerMs: config.ingest.flushIntervalMs,
      // Concurrent flushes never share a series: none waits on another's state-row locks.
      keyOf: (item) => item.series.seriesId,
      flush,
      onQueueWait: (ms) => metrics.queueWaitSeconds.observe(ms / 1000),
      onFlush: ({ size, ms, error }) => {
        metrics.flushSize.observe(size)
        metrics.commitSeconds.observe(ms / 1000)
        if (error) {
          metrics.flushErrors.inc()
          logger.warn({ err: error, size }, 'point flush failed')
        }
      },
    })
  }

  /** The time-window guard of live points (DESIGN §3); backfill is exempt from the age window. */
  private guard(time: number, now: number, backfill: boolean): string | null {
    const { maxFutureSkewSeconds, maxAgeDays } = this.deps.config.ingest
    if (time - now > maxFutureSkewSeconds * 1000) return 'TIMESTAMP_IN_FUTURE'
    if (!backfill && now - time > maxAgeDays * 86_400_000) return 'TIMESTAMP_TOO_OLD'
    return null
  }

  /**
   * One transaction over the items (already key-disjoint from concurrent flushes by series). Where the
   * store allows it (PostgreSQL), optimistically: no stored-key check for timed points (the common case
   * is all new), and a stored key aborts the insert (DuplicateKeyError), the flush then being redone with
   * the check, which answers it as a duplicate.
   */
  private async flush(items: PointItem[]): Promise<PointOutcome[]> {
    if (!this.deps.store.optimisticInsert) return this.flushOnce(items, true)
    try {
      return await this.flushOnce(items, false)
    } catch (err) {
      if (!(err instanceof DuplicateKeyError)) throw err
      return this.flushOnce(items, true)
    }
  }

  private async flushOnce(items: PointItem[], precheck: boolean): Promise<PointOutcome[]> {
    const outcomes = new Array<PointOutcome | undefined>(items.length)
    const bySeries = new Map<string, { series: SeriesRef; indexes: number[] }>()
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as PointItem
      let g = bySeries.get(item.series.seriesId)
      if (!g) bySeries.set(item.series.seriesId, (g = { series: item.series, indexes: [] }))
      g.indexes.push(i)
    }
    const seriesList = [...bySeries.values()].map((g) => g.series)
    // Configs come from a cache, outside the transaction's locks.
    const configs = await this.deps.configs.get(seriesList.map((s) => ({ domain: s.domain, source_id: s.sourceId, stream_id: s.streamId })))
    const committed: CommittedPoint[] = []
    const result = await this.deps.store.transaction(async (tx) => {
      const states = await tx.lockSeries(seriesList)
      const seeded = await this.seed(tx, seriesList, states)
      const untimed = items.filter((item) => !item.timed)
      const existing = precheck ? await tx.existingKeys(items) : untimed.length > 0 ? await tx.existingKeys(untimed) : new Set<string>()
      await this.separateUntimed(tx, items, existing)
      const rows: PointRow[] = []
      const alerts: StreamAlertWrite[] = []
      const stateWrites: Array<{ seriesId: string; state: string }> = []
      const audit: AuditRow[] = []
      const seen = new Set<string>()
      for (const item of items) if (item.audit) audit.push(...item.audit)
      for (const { series, indexes } of bySeries.values()) {
        // Stored keys and repeats within the flush are duplicates: they move no state.
        const fresh = indexes.filter((i) => {
          const item = items[i] as PointItem
          if (!item.timed) return true
          const k = keyOf(item)
          if (existing.has(k) || seen.has(k)) {
            outcomes[i] = DUPLICATE
            return false
          }
          seen.add(k)
          return true
        })
        if (fresh.length === 0) continue
        // In time order (arrival order on ties); live and backfill-with-alerts points move the state.
        fresh.sort((a, b) => (items[a] as PointItem).time - (items[b] as PointItem).time || a - b)
        const first = items[fresh[0] as number] as PointItem
        const config = configs.get(series.seriesId)
        if (!config) throw new Error(`no stream config for ${series.seriesId}`)
        const before = seeded.get(series.seriesId) ?? initialStreamRuleState()
        const cls = classifyPoints(
          config,
          before,
          fresh.map((i) => ({ value: (items[i] as PointItem).value, time: (items[i] as PointItem).time })),
          { mode: first.backfill ? 'backfill' : 'live', alerts: first.backfill ? first.alerts : true },
        )
        cls.outcomes.forEach((o, k) => {
          const index = fresh[k] as number
          const item = items[index] as PointItem
          for (const a of o.alertActions) {
            if (a.kind === 'resolve') alerts.push({ kind: 'resolve', series, reason: a.reason, time: a.time })
            else alerts.push({ kind: a.kind, series, severity: a.severity, value: a.value, thresholdViolated: a.thresholdViolated, message: a.message, time: a.time })
          }
          if (!o.stored) {
            outcomes[index] = { status: 'rejected', code: 'VALUE_OUTSIDE_PHYSICAL_LIMITS', classification: o.classification, message: o.message }
            audit.push(auditRow(item, item.caller, 'rejected', { classification: o.classification, error: o.message, metadata: { reasons: o.reasons } }))
            return
          }
          const metadata = domainMetadata(item.streamType === null ? item.metadata : { ...item.metadata, stream_type: item.streamType }, o.reasons)
          rows.push({ series, time: item.time, sequence: item.sequence, value: item.value, classification: o.classification, metadata: JSON.stringify(metadata), ingestTime: item.ingestTime })
          outcomes[index] = { status: 'stored', classification: o.classification }
          if (o.publishToMl) committed.push({ seriesId: series.seriesId, domain: series.domain, sourceId: series.sourceId, streamId: series.streamId, value: item.value, time: item.time, sequence: item.sequence, classification: o.classification, metadata: item.metadata })
        })
        if (cls.stateChanged) stateWrites.push({ seriesId: series.seriesId, state: encodeStreamRuleState(cls.state) })
      }
      try {
        await tx.write({ rows, alerts, states: stateWrites, audit })
      } catch (err) {
        // With the check done under the series locks, a stored key can only come from a writer that
        // bypassed them: an outage-class retry, whose check then sees it.
        if (precheck && err instanceof DuplicateKeyError) throw new TransientStoreError('a point key was stored behind the series locks: the flush is retried', { cause: err, code: 'POINT_KEY_RACE' })
        throw err
      }
      return outcomes.map((o) => o ?? DUPLICATE)
    })
    if (committed.length > 0) {
      try {
        this.deps.afterCommit?.(committed)
      } catch (err) {
        this.deps.logger.warn({ err }, 'point after-commit hook failed')
      }
    }
    return result
  }

  /**
   * A point sent without a time got "now": it is a new point, never a duplicate, so one whose key is
   * taken (a point of the same series in the same microsecond, stored or earlier in this flush) moves
   * on by a microsecond until its key is free. Under the series locks, so the check is exact.
   */
  private async separateUntimed(tx: UniversalTx, items: readonly PointItem[], existing: Set<string>): Promise<void> {
    const taken = new Set<string>()
    for (const item of items) if (item.timed) taken.add(keyOf(item))
    let pending = items.filter((item) => !item.timed)
    for (let round = 0; pending.length > 0; round++) {
      if (round > 1000) throw new Error('could not find a free microsecond for an untimed point')
      const clash: PointItem[] = []
      for (const item of pending) {
        const k = keyOf(item)
        if (existing.has(k) || taken.has(k)) {
          item.time = roundToMicros(item.time + 0.001)
          clash.push(item)
        } else taken.add(k)
      }
      if (clash.length > 0) for (const k of await tx.existingKeys(clash)) existing.add(k)
      pending = clash
    }
  }

  /** Series without a stored state start from their newest stored point and active alert (a database written before us). */
  private async seed(tx: UniversalTx, series: readonly SeriesRef[], stored: Map<string, unknown>): Promise<Map<string, StreamRuleState | null>> {
    const out = new Map<string, StreamRuleState | null>()
    const fresh: SeriesRef[] = []
    for (const s of series) {
      const st = decodeStreamRuleState(stored.get(s.seriesId) ?? null)
      out.set(s.seriesId, st)
      if (st === null) fresh.push(s)
    }
    if (fresh.length === 0) return out
    const [last, active] = await Promise.all([tx.lastPoints(fresh), tx.activeAlerts(fresh)])
    for (const s of fresh) {
      const p = last.get(s.seriesId)
      const a = active.get(s.seriesId)
      if (!p && !a) continue
      out.set(s.seriesId, {
        ...initialStreamRuleState(),
        ...(p ? { lastTime: p.time, prevValue: p.value, prevTime: p.time } : {}),
        ...(a && (a.severity === 'WARNING' || a.severity === 'CRITICAL') ? { activeAlert: { severity: a.severity, openedAt: a.triggeredAt }, lastAlertAt: a.triggeredAt } : {}),
      })
    }
    return out
  }

  /** A packet of points of one source and domain (`/ingest/data`, a WebSocket batch, a CSV chunk). */
  async ingestPoints(packet: Pick<PointPacket, 'domain' | 'sourceId' | 'points'>, caller: PointCaller): Promise<PointReceipt> {
    const now = this.deps.clock.now()
    const backfill = caller.backfill ?? false
    const total = packet.points.length
    const byIndex = new Array<PointOutcome | undefined>(total)
    const items: PointItem[] = []
    const indexes: number[] = []
    const refused: AuditRow[] = []
    packet.points.forEach((p: DataPointInput, index) => {
      const item: PointItem = {
        series: seriesRef(packet.domain, packet.sourceId, p.streamId),
        value: p.value,
        time: p.timestamp ?? now,
        sequence: p.sequence ?? -1,
        timed: p.timestamp !== null,
        metadata: p.metadata,
        streamType: p.streamType,
        ingestTime: now,
        transport: caller.transport,
        backfill,
        alerts: caller.alerts ?? false,
        caller,
        audit: null,
      }
      const code = this.guard(item.time, now, backfill)
      if (code) {
        byIndex[index] = { status: 'rejected', code, message: code === 'TIMESTAMP_IN_FUTURE' ? 'timestamp is in the future' : 'timestamp is too old' }
        refused.push(auditRow(item, caller, 'rejected', { error: code }))
        return
      }
      items.push(item)
      indexes.push(index)
    })
    // One summary row per request, plus one per refused point, committed with the request's first item.
    const summary = auditRow({ series: seriesRef(packet.domain, packet.sourceId, '*'), value: null, time: now }, caller, 'accepted', { metadata: { points: total, refused_early: refused.length } })
    const audit = [summary, ...refused]
    const first = items[0]
    if (first) first.audit = audit
    else await this.deps.store.audit(audit)
    return this.commit(packet.points.map((p) => p.streamId), items, indexes, byIndex, caller.transport)
  }

  /**
   * `ingest dlq replay` and the automatic replay: dead-lettered points re-run with their own time,
   * sequence and first ingest time, so a point already stored comes back `duplicate`. No audit rows:
   * the request that carried them was audited.
   */
  async replayPoints(points: readonly ReplayablePoint[]): Promise<PointReceipt> {
    const caller: PointCaller = { transport: 'replay', credential: null, clientIp: null }
    const items = points.map((p): PointItem => ({
      series: seriesRef(p.domain, p.sourceId, p.streamId),
      value: p.value,
      time: p.time,
      sequence: p.sequence,
      timed: p.timed,
      metadata: p.metadata,
      streamType: p.streamType,
      ingestTime: p.ingestTime,
      transport: 'replay',
      backfill: p.backfill,
      alerts: p.alerts,
      caller,
      audit: null,
    }))
    return this.commit(
      points.map((p) => p.streamId),
      items,
      items.map((_, i) => i),
      new Array<PointOutcome | undefined>(items.length),
      'replay',
    )
  }

  /** Commits the accepted items (at `indexes` of the batch) and merges their outcomes with the early rejections. */
  private async commit(streamIds: readonly string[], items: PointItem[], indexes: readonly number[], byIndex: Array<PointOutcome | undefined>, transport: IngestTransport): Promise<PointReceipt> {
    const outcomes = items.length > 0 ? await submitWithin(this.committer, items, this.deps.config.ingest.commitTimeoutMs) : []
    for (let i = 0; i < indexes.length; i++) {
      const o = outcomes[i]
      if (o instanceof FailedOutcome) throw o.error
      byIndex[indexes[i] as number] = o
    }
    return this.receipt(streamIds, byIndex, transport)
  }

  private receipt(streamIds: readonly string[], byIndex: ReadonlyArray<PointOutcome | undefined>, transport: IngestTransport): PointReceipt {
    const r: PointReceipt = { inserted: 0, rejected: 0, results: [], duplicates: 0, dead_lettered: 0, receipts: [] }
    streamIds.forEach((streamId, index) => {
      const o = byIndex[index] ?? { status: 'rejected', code: 'INTERNAL' }
      const rc: Receipt = { index, status: o.status }
      if (o.code !== undefined) rc.code = o.code
      if (o.dlqId !== undefined) rc.dlq_id = o.dlqId
      if (o.classification !== undefined) rc.classification = o.classification
      r.receipts.push(rc)
      if (o.status === 'stored') {
        r.inserted++
        r.results.push({ stream_id: streamId, status: 'ok', classification: o.classification ?? 'normal' })
      } else if (o.status === 'duplicate') {
        r.duplicates++
        r.results.push({ stream_id: streamId, status: 'ok', duplicate: true })
      } else if (o.status === 'rejected') {
        r.rejected++
        r.results.push({ stream_id: streamId, status: 'rejected', reason: o.message ?? o.code ?? 'rejected' })
      } else {
        r.dead_lettered++
        r.results.push({ stream_id: streamId, status: 'error', reason: `dead-lettered (${o.code ?? 'store'})` })
      }
      this.deps.metrics.items.inc({ transport, class: o.classification ?? 'none', outcome: o.status })
    })
    return r
  }

  /** Stops accepting and flushes everything queued (graceful shutdown). */
  close(): Promise<void> {
    return this.committer.close()
  }
}
