import type { Config } from '../../config/index.js'
import { type GuardInput, guardReading, isSuspiciousZero } from '../../domain/rules/index.js'
import { classifyStoreError, UnavailableError } from '../../errors/index.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import { type DeadLetterQueue, DlqFullError, type ReplayableReading } from '../../ports/dead-letter-queue.js'
import type { DedupFilter } from '../../ports/dedup-filter.js'
import type { IngestStore, SensorInfo } from '../../ports/ingest-store.js'
import { GroupCommitter } from '../group-commit.js'
import type { Metrics } from '../metrics.js'
import { BreakerOpenError, type CircuitBreaker } from '../resilience/circuit-breaker.js'
import { createMemoryDedupFilter } from '../resilience/memory-dedup.js'
import { retryTransient } from '../resilience/retry.js'
import { createStoreBreaker } from '../resilience/store-breaker.js'
import { flushReadings, type FlushResult } from './flush.js'
import { RulesCache } from './rules-cache.js'
import { buildDedupKey, filterKeyOf, type ItemOutcome, type ReadingItem, type Receipt, type Transport } from './items.js'
import { SensorResolver } from './sensor-resolver.js'

/** One reading of a device packet, already schema-valid (numbers finite or not, uuids normalised). */
export interface PacketReading {
  sensorUuid: string
  value: number
  /** Precise epoch seconds from the sensor, as sent. */
  sensorTs: number | null
  sequence: number | null
  msgId?: string | null
}

export interface PacketInput {
  deviceUuid: string
  /** Packet-level device time, epoch ms. */
  ts: number | null
  readings: readonly PacketReading[]
  transport: Transport
  backfill?: boolean
  alerts?: boolean
}

/** A reading addressed by internal sensor id (legacy endpoints, MQTT). */
export interface IdReading {
  sensorId: number
  value: number
  /** Device time, epoch ms. */
  timestamp: number | null
  /** The device time in epoch seconds as sent (for the legacy dedup key), when known. */
  deviceTsSeconds?: number | null
  sequence?: number | null
  msgId?: string | null
  /** A replay keeps the original dedup key and ingest time (so a stored item is found as a duplicate). */
  dedupKey?: string | null
  ingestTime?: number
  transport?: string
  backfill?: boolean
  alerts?: boolean
}

export interface BatchReceipt {
  inserted: number
  duplicates: number
  rejected: number
  dead_lettered: number
  receipts: Receipt[]
}

export interface PacketReceipt extends BatchReceipt {
  unknown_sensors: string[]
  ingested_ts: number
}

/** Per-reading observations for diagnostics (reference §1.12), fed by every transport. */
export interface ReadingObserver {
  record(r: { sensorId: number; sensorTsMs?: number | null; ingestedTsMs: number; sequence?: number | null }): void
}

export interface IngestServiceDeps {
  config: Config
  logger: Logger
  clock: Clock
  store: IngestStore
  metrics: Metrics
  diagnostics?: ReadingObserver
  /** Poison rows and (with CB_OPEN_ACTION=dlq) outage-time items go here. */
  dlq?: DeadLetterQueue
  /** The pre-filter; default: an in-process LRU. */
  dedup?: DedupFilter
  /** After-commit hook (ML stream, push): best effort, never fails the request. */
  afterCommit?(result: FlushResult): void
  /** Called when the store breaker closes again (automatic DLQ replay). */
  onBreakerClosed?(): void
  /** The IoT store's breaker when the caller shares it (serve: also used for the universal store when it is the same database). */
  breaker?: CircuitBreaker
}

/**
 * The outcome of an item whose flush part failed (outage, DLQ full) after another part of the same flush
 * committed: the other callers are answered, the request holding this item fails with `error`.
 */
class FailedOutcome implements ItemOutcome {
  readonly status = 'rejected' as const
  readonly code = 'STORE_FAILED'
  constructor(readonly error: unknown) {}
}

const DUPLICATE: ItemOutcome = Object.freeze({ status: 'duplicate' })
const INTERNAL: ItemOutcome = Object.freeze({ status: 'rejected', code: 'INTERNAL' })
const NO_KEYS: ReadonlySet<string> = new Set<string>()

const BUILT_KEY = /^(\d+):(-|-?\d+\.\d{6}):-?\d+\.\d{6}(:-?\d+)?(#\d+)?$/

/**
 * The pre-filter key of an item whose dedup key came from elsewhere (a DLQ replay): keys of the built
 * shape for this sensor keep it, anything else is a msgId (see filterKeyOf).
 */
export function dedupFilterKey(item: { sensorId: number; dedupKey: string | null }): string | null {
  if (item.dedupKey === null) return null
  const built = BUILT_KEY.exec(item.dedupKey)
  return filterKeyOf(item.sensorId, item.dedupKey, built !== null && built[1] === String(item.sensorId))
}

/** The error text of a DLQ entry keeps the driver's code (SQLSTATE, SQL Server number). */
export function describeStoreError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err)
  const code = (err as { code?: unknown } | null)?.code
  return code !== undefined && code !== null && !message.startsWith(`${String(code)}:`) ? `${String(code)}: ${message}` : message
}

export function toReplayable(item: ReadingItem): ReplayableReading {
  return { kind: 'reading', sensorId: item.sensorId, value: item.value, deviceTime: item.deviceTime, ingestTime: item.ingestTime, dedupKey: item.dedupKey, sequence: item.sequence, transport: item.transport, backfill: item.backfill, alerts: item.alerts }
}

/**
 * The one ingest path every transport calls (DESIGN §3): guards, sensor resolution, dedup keys, then
 * the group committer; returns one receipt per item after the items committed.
 */
export class IngestService {
  readonly resolver: SensorResolver
  readonly committer: GroupCommitter<ReadingItem, ItemOutcome>
  readonly breaker: CircuitBreaker
  readonly dedup: DedupFilter
  readonly rulesCache: RulesCache
  /** Counters for /resilience/health. */
  readonly counters = { dedupChecked: 0, dedupHits: 0, dlqSent: 0, dlqErrors: 0, dlqRefused: 0 }
  private readonly deps: IngestServiceDeps
  /** Per sensor, the newest device time among committed readings whose pre-filter key holds it. */
  private readonly newestCommitted = new Map<number, number>()
  private readonly guardInput: GuardInput
  private readonly timing = { sensorId: 0, sensorTsMs: null as number | null, ingestedTsMs: 0, sequence: null as number | null }
  /** Whether a sensor missing from newestCommitted has no key in the pre-filter either (true until the map is reset). */
  private newestKnown = true

  constructor(deps: IngestServiceDeps) {
    this.deps = deps
    const { config, clock, store, metrics } = deps
    this.guardInput = { value: 0, sensorType: null, deviceTime: null, now: 0, backfill: false, maxFutureSkewSeconds: config.ingest.maxFutureSkewSeconds, maxAgeDays: config.ingest.maxAgeDays }
    this.resolver = new SensorResolver(store.sensors, clock, { ttlMs: config.resolver.ttlSeconds * 1000, negativeTtlMs: config.resolver.negativeTtlSeconds * 1000 })
    this.dedup = deps.dedup ?? createMemoryDedupFilter({ ttlMs: config.dedup.ttlSeconds * 1000, clock })
    this.breaker = deps.breaker ?? createStoreBreaker({ store: 'iot', config, clock, logger: deps.logger, metrics, onClosed: () => deps.onBreakerClosed?.() })
    this.rulesCache = new RulesCache(clock, 5_000)
    this.committer = new GroupCommitter<ReadingItem, ItemOutcome>({
      concurrency: config.ingest.flushConcurrency > 0 ? config.ingest.flushConcurrency : (store.flushConcurrency ?? 1),
      maxBatch: config.ingest.batchMaxSize,
      maxQueued: config.ingest.bufferSize,
      lingerMs: config.ingest.flushIntervalMs,
      // Concurrent flushes never share a sensor: none waits on another's rule-state row locks.
      keyOf: (item) => item.sensorId,
      flush: (items) => this.flushResilient(items),
      onFlush: ({ size, ms, error }) => {
        metrics.flushSize.observe(size)
        metrics.commitSeconds.observe(ms / 1000)
        metrics.queueDepth.set(this.committer.queued)
        if (error) {
          metrics.flushErrors.inc()
          deps.logger.warn({ err: error, size }, 'flush failed')
        }
      },
    })
  }

  /** Feeds the diagnostics one reading, through one reused record (record() is synchronous and keeps nothing). */
  private observe(sensorId: number, sensorTsMs: number | null, ingestedTsMs: number, sequence: number | null): void {
    const diagnostics = this.deps.diagnostics
    if (!diagnostics) return
    const t = this.timing
    t.sensorId = sensorId
    t.sensorTsMs = sensorTsMs
    t.ingestedTsMs = ingestedTsMs
    t.sequence = sequence
    diagnostics.record(t)
  }

  private guard(info: SensorInfo, value: number, deviceTime: number | null, now: number, backfill: boolean): string | null {
    // One input object reused for every reading (guardReading is synchronous and keeps nothing).
    const g = this.guardInput
    g.value = value
    g.sensorType = info.sensorType
    g.deviceTime = deviceTime
    g.now = now
    g.backfill = backfill
    const code = guardReading(g) ?? this.deps.store.valueGuard?.(value) ?? null
    if (code === null && isSuspiciousZero(value, info.sensorType)) this.deps.metrics.suspiciousZeros.inc({ sensor_type: info.sensorType ?? 'unknown' })
    return code
  }

  /**
   * One flush with the failure policy of DESIGN §6: through the store's circuit breaker, transient
   * errors retried with full-jitter backoff, a permanent error isolated by bisection so only the poison
   * row is dead-lettered, and (CB_OPEN_ACTION=dlq) an outage dead-lettering the batch instead of 503.
   */
  private async flushResilient(items: ReadingItem[]): Promise<ItemOutcome[]> {
    const { config, clock, store } = this.deps
    try {
      // Each attempt goes through the breaker, so a hang or outage opens it within a few attempts,
      // and an open breaker stops the retries at once.
      const result = await retryTransient(() => this.breaker.call(() => flushReadings(store, items, { staleAfterMs: config.ingest.staleAfterSeconds * 1000, rulesCache: this.rulesCache })), {
        maxAttempts: Math.max(1, config.ingest.storeMaxRetries),
        baseDelayMs: 50,
        maxDelayMs: 2_000,
        clock,
        deadline: clock.now() + config.ingest.commitTimeoutMs,
        // An open breaker stops the retries; so does a commit whose outcome is unknown (a retry could
        // store readings without a dedup key twice): the caller gets 503 and decides.
        isTransient: (err) => !(err instanceof BreakerOpenError) && (err as { code?: unknown }).code !== 'COMMIT_UNKNOWN' && classifyStoreError(err) !== 'permanent',
        onRetry: (attempt, delayMs, err) => this.deps.logger.warn({ attempt, delayMs, err: (err as Error).message }, 'flush retry'),
      })
      this.afterCommit(items, result)
      return result.outcomes
    } catch (err) {
      const cls = err instanceof BreakerOpenError ? 'outage' : classifyStoreError(err)
      if (cls !== 'permanent') {
        // A commit whose outcome is unknown is never dead-lettered: the items may be stored, and the
        // automatic replay of outage entries would store the readings without a dedup key twice.
        const unknownCommit = (err as { code?: unknown }).code === 'COMMIT_UNKNOWN'
        if (config.breaker.openAction === 'dlq' && this.deps.dlq && !unknownCommit) return this.deadLetter(items, err instanceof BreakerOpenError ? 'breaker_open' : 'store', 'outage', err)
        throw err
      }
      if (items.length > 1) {
        const mid = items.length >> 1
        const first = await this.flushResilient(items.slice(0, mid))
        const rest = items.slice(mid)
        try {
          return [...first, ...(await this.flushResilient(rest))]
        } catch (restErr) {
          // The first half is committed: its callers must hear so (a 503 would make them send it again,
          // and a reading without a dedup key would be stored twice). Only the rest failed.
          const failed = new FailedOutcome(restErr)
          return [...first, ...rest.map(() => failed)]
        }
      }
      this.deps.logger.warn({ err: (err as Error).message, sensorId: items[0]?.sensorId }, 'poison row isolated')
      if (!this.deps.dlq) return [{ status: 'rejected', code: 'STORE_REJECTED' }]
      try {
        return await this.deadLetter(items, 'store', errorClassOf(err), err)
      } catch (dlqErr) {
        // Neither stored nor dead-lettered: the sender must retry (503), never be told "rejected".
        this.deps.logger.error({ err: (dlqErr as Error).message }, 'poison row could not be dead-lettered')
        throw dlqErr instanceof UnavailableError ? dlqErr : new UnavailableError('the dead-letter queue is unavailable', { code: 'DLQ_UNAVAILABLE', cause: dlqErr })
      }
    }
  }

  private async deadLetter(items: ReadingItem[], stage: 'store' | 'breaker_open', errorClass: string, err: unknown): Promise<ItemOutcome[]> {
    const dlq = this.deps.dlq
    if (!dlq) throw err
    try {
      const ids = await dlq.add(
        items.map((item) => ({
          transport: item.transport,
          stage,
          errorClass,
          error: describeStoreError(err),
          payload: toReplayable(item),
          sensorId: item.sensorId,
          msgId: item.dedupKey,
        })),
      )
      this.deps.metrics.deadLettered.inc({ stage, error_class: errorClass }, items.length)
      this.counters.dlqSent += items.length
      return ids.map((id) => ({ status: 'dead_lettered', code: stage === 'breaker_open' ? 'BREAKER_OPEN' : errorClass.toUpperCase(), dlqId: id }))
    } catch (dlqErr) {
      this.counters.dlqErrors += items.length
      if (dlqErr instanceof DlqFullError) {
        this.counters.dlqRefused += items.length
        this.deps.metrics.dlqRefused.inc(items.length)
        throw new UnavailableError(dlqErr.message, { code: 'DLQ_FULL', cause: dlqErr })
      }
      throw dlqErr
    }
  }

  /**
   * Whether an item cannot be in the in-process pre-filter: its key is built from its device time and
   * that time is newer than every committed reading of its sensor with such a key (the usual case for a
   * live device), so the lookup is skipped. Never a "duplicate" answer: at worst the database decides.
   * Only for the in-process filter: a shared one (Redis) also holds other replicas' keys.
   */
  private newerThanCommitted(item: ReadingItem): boolean {
    if (this.dedup.kind !== 'memory' || item.deviceTime === null || item.filterKey !== item.dedupKey) return false
    const newest = this.newestCommitted.get(item.sensorId)
    return newest === undefined ? this.newestKnown : item.deviceTime > newest
  }

  private afterCommit(items: readonly ReadingItem[], result: FlushResult): void {
    const keys: string[] = []
    const newest = this.newestCommitted
    if (newest.size > 500_000) {
      // Bounded: forgetting only costs lookups (a sensor without an entry is looked up again).
      newest.clear()
      this.newestKnown = false
    }
    result.outcomes.forEach((o, i) => {
      const item = items[i]
      if (!item || (o.status !== 'stored' && o.status !== 'duplicate')) return
      if (item.filterKey === null) return
      keys.push(item.filterKey)
      if (item.deviceTime !== null && item.filterKey === item.dedupKey) {
        const t = newest.get(item.sensorId)
        if (t === undefined || item.deviceTime > t) newest.set(item.sensorId, item.deviceTime)
      }
    })
    try {
      this.dedup.remember(keys)
      this.deps.afterCommit?.(result)
    } catch (err) {
      this.deps.logger.warn({ err }, 'after-commit hook failed')
    }
  }

  /** Waits for the items' commit, at most INGEST_COMMIT_TIMEOUT_SECONDS (then 503; they may still commit). */
  private async submitWithDeadline(items: ReadingItem[]): Promise<ItemOutcome[]> {
    const timeoutMs = this.deps.config.ingest.commitTimeoutMs
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UnavailableError(`the commit did not finish within ${timeoutMs} ms`, { code: 'COMMIT_TIMEOUT' })), timeoutMs)
    })
    try {
      return await Promise.race([this.committer.submit(items), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  /** Commits the accepted items and merges their outcomes with the rejections into receipts. */
  /** `items` and their positions in the request (`indexes`) are parallel arrays: no wrapper per reading. */
  private async commit(transport: Transport, total: number, items: readonly ReadingItem[], indexes: readonly number[], early: Map<number, ItemOutcome>): Promise<BatchReceipt> {
    // The pre-filter only ever holds committed keys: a hit is a duplicate without a database trip.
    const toCheck: string[] = []
    for (const item of items) if (item.filterKey !== null && !this.newerThanCommitted(item)) toCheck.push(item.filterKey)
    const known = toCheck.length > 0 ? await this.dedup.seen(toCheck) : NO_KEYS
    this.counters.dedupChecked += toCheck.length
    this.counters.dedupHits += known.size
    // Outcomes by item index (an array, not a Map: this runs per reading).
    const byIndex = new Array<ItemOutcome | undefined>(total)
    for (const [index, o] of early) byIndex[index] = o
    const fresh: ReadingItem[] = []
    const freshIndex: number[] = []
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as ReadingItem
      const index = indexes[i] as number
      if (item.filterKey !== null && known.has(item.filterKey)) byIndex[index] = DUPLICATE
      else {
        fresh.push(item)
        freshIndex.push(index)
      }
    }
    const outcomes = fresh.length > 0 ? await this.submitWithDeadline(fresh) : []
    for (let i = 0; i < freshIndex.length; i++) {
      const o = outcomes[i]
      // Items of this request that failed after others of its flush committed: the request fails (503).
      if (o instanceof FailedOutcome) throw o.error
      byIndex[freshIndex[i] as number] = o
    }
    const receipt: BatchReceipt = { inserted: 0, duplicates: 0, rejected: 0, dead_lettered: 0, receipts: new Array<Receipt>(total) }
    // Counted per outcome object (stored and duplicate outcomes are shared objects), labelled once each below.
    const counts = new Map<ItemOutcome, number>()
    for (let index = 0; index < total; index++) {
      const o = byIndex[index] ?? INTERNAL
      if (o.status === 'stored') receipt.inserted++
      else if (o.status === 'duplicate') receipt.duplicates++
      else if (o.status === 'rejected') receipt.rejected++
      else receipt.dead_lettered++
      counts.set(o, (counts.get(o) ?? 0) + 1)
      // Receipts stay small: a class only when it is not clean, a code or DLQ id only when there is one.
      const r: Receipt = { index, status: o.status }
      if (o.code !== undefined) r.code = o.code
      if (o.dlqId !== undefined) r.dlq_id = o.dlqId
      if (o.classification !== undefined && o.classification !== 'ML_PREDICTION') r.classification = o.classification
      receipt.receipts[index] = r
    }
    for (const [o, n] of counts) this.deps.metrics.items.inc({ transport, class: o.classification ?? 'none', outcome: o.status }, n)
    return receipt
  }

  /** A device packet (`/ingest/packets`, WebSocket IoT frames): readings addressed by uuid. */
  async ingestPacket(input: PacketInput): Promise<PacketReceipt> {
    const now = this.deps.clock.now()
    const ingestedTs = now / 1000
    const backfill = input.backfill ?? false
    const alerts = input.alerts ?? false
    // One lookup per distinct sensor of the packet, not per reading.
    const sensorUuids = [...new Set(input.readings.map((r) => r.sensorUuid))]
    const byPair = await this.resolver.resolveUuids(sensorUuids.map((sensorUuid) => ({ deviceUuid: input.deviceUuid, sensorUuid })))
    const resolved = new Map<string, SensorInfo | null>()
    for (const u of sensorUuids) resolved.set(u, byPair.get(`${input.deviceUuid}|${u}`) ?? null)
    const unknown: string[] = []
    const early = new Map<number, ItemOutcome>()
    const items: ReadingItem[] = []
    const indexes: number[] = []
    input.readings.forEach((r, index) => {
      const info = resolved.get(r.sensorUuid) ?? null
      if (!info) {
        unknown.push(r.sensorUuid)
        early.set(index, { status: 'rejected', code: 'UNKNOWN_SENSOR' })
        return
      }
      if (!info.active) {
        early.set(index, { status: 'rejected', code: 'SENSOR_INACTIVE' })
        return
      }
      const deviceTime = r.sensorTs !== null ? r.sensorTs * 1000 : input.ts
      this.observe(info.id, r.sensorTs === null ? null : r.sensorTs * 1000, now, r.sequence)
      const code = this.guard(info, r.value, deviceTime, now, backfill)
      if (code) {
        early.set(index, { status: 'rejected', code })
        return
      }
      const dedupKey = buildDedupKey({
        sensorId: info.id,
        value: r.value,
        msgId: r.msgId ?? null,
        deviceTsSeconds: r.sensorTs ?? (input.ts === null ? null : input.ts / 1000),
        sequence: r.sequence,
        packetIndex: r.sensorTs === null && input.ts !== null ? index : null,
      })
      const filterKey = filterKeyOf(info.id, dedupKey, !r.msgId)
      items.push({ sensorId: info.id, deviceId: info.deviceId, value: r.value, deviceTime, ingestTime: now, dedupKey, filterKey, sequence: r.sequence, transport: input.transport, backfill, alerts })
      indexes.push(index)
    })
    const receipt = await this.commit(input.transport, input.readings.length, items, indexes, early)
    return { inserted: receipt.inserted, unknown_sensors: unknown, ingested_ts: ingestedTs, duplicates: receipt.duplicates, rejected: receipt.rejected, dead_lettered: receipt.dead_lettered, receipts: receipt.receipts }
  }

  /** Readings by internal sensor id (`/ingest/readings`, `/ingest/readings/bulk`, MQTT). */
  async ingestById(readings: readonly IdReading[], transport: Transport, options: { backfill?: boolean; alerts?: boolean } = {}): Promise<BatchReceipt> {
    const now = this.deps.clock.now()
    const backfill = options.backfill ?? false
    const resolved = await this.resolver.resolveIds(readings.map((r) => r.sensorId))
    const early = new Map<number, ItemOutcome>()
    const items: ReadingItem[] = []
    const indexes: number[] = []
    readings.forEach((r, index) => {
      const info = resolved.get(`#${r.sensorId}`) ?? null
      if (!info) return void early.set(index, { status: 'rejected', code: 'UNKNOWN_SENSOR' })
      if (!info.active) return void early.set(index, { status: 'rejected', code: 'SENSOR_INACTIVE' })
      this.observe(info.id, r.timestamp, now, r.sequence ?? null)
      // A replay is judged against the time it was first received, not the time it is replayed.
      const code = this.guard(info, r.value, r.timestamp, r.ingestTime ?? now, r.backfill ?? backfill)
      if (code) return void early.set(index, { status: 'rejected', code })
      const deviceTsSeconds = r.deviceTsSeconds ?? (r.timestamp === null ? null : r.timestamp / 1000)
      const dedupKey = r.dedupKey !== undefined ? r.dedupKey : buildDedupKey({ sensorId: info.id, value: r.value, msgId: r.msgId ?? null, deviceTsSeconds, sequence: r.sequence ?? null })
      const filterKey = r.dedupKey !== undefined ? dedupFilterKey({ sensorId: info.id, dedupKey }) : filterKeyOf(info.id, dedupKey, !r.msgId)
      items.push({
        sensorId: info.id,
        deviceId: info.deviceId,
        value: r.value,
        deviceTime: r.timestamp,
        ingestTime: r.ingestTime ?? now,
        dedupKey,
        filterKey,
        sequence: r.sequence ?? null,
        transport: (r.transport as Transport | undefined) ?? transport,
        backfill: r.backfill ?? backfill,
        alerts: r.alerts ?? options.alerts ?? false,
      })
      indexes.push(index)
    })
    return this.commit(transport, readings.length, items, indexes, early)
  }

  /** Stops accepting and flushes everything queued (graceful shutdown). */
  close(): Promise<void> {
    return this.committer.close()
  }
}

function errorClassOf(err: unknown): string {
  const code = (err as { code?: unknown }).code
  if (typeof code === 'string' && /^23/.test(code)) return 'constraint'
  if (typeof code === 'string' && /^22/.test(code)) return 'data'
  if (typeof code === 'string' && code.startsWith('SQLITE_CONSTRAINT')) return 'constraint'
  return 'store_error'
}
