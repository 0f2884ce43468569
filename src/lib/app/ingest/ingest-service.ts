import type { Config } from '../../config/index.js'
import { type GuardInput, guardReading, isSuspiciousZero } from '../../domain/rules/index.js'
import type { IdReading, PacketInput } from '../../domain/ingest/readings.js'
import { secondsToMs } from '../../domain/time.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import type { DeadLetterQueue, ReplayableReading } from '../../ports/dead-letter-queue.js'
import type { DedupFilter } from '../../ports/dedup-filter.js'
import type { IngestStore, SensorInfo } from '../../ports/ingest-store.js'
import type { MlReading, MlStream } from '../../ports/ml-stream.js'
import { GroupCommitter, submitWithin } from '../group-commit.js'
import type { Metrics } from '../metrics.js'
import type { CircuitBreaker } from '../resilience/circuit-breaker.js'
import { createMemoryDedupFilter } from '../resilience/memory-dedup.js'
import { createStoreBreaker } from '../resilience/store-breaker.js'
import { type FlushOptions, flushReadings, type FlushResult } from './flush.js'
import { buildDedupKey, filterKeyOf, type ItemOutcome, type ReadingItem, type Receipt, type Transport } from './items.js'
import { createDeliveryCounters, createResilientFlush, type DeliveryCounters, FailedOutcome } from './resilient-flush.js'
import { RulesCache } from './rules-cache.js'
import { SensorResolver } from './sensor-resolver.js'

export type { IdReading, PacketInput, PacketReading } from '../../domain/ingest/readings.js'

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
  diagnostics?: ReadingObserver | undefined
  /** Poison rows and (with CB_OPEN_ACTION=dlq) outage-time items go here. */
  dlq?: DeadLetterQueue | undefined
  /** The pre-filter; default: an in-process LRU. */
  dedup?: DedupFilter | undefined
  /** After-commit hook (push): best effort, never fails the request. */
  afterCommit?(result: FlushResult): void
  /** Clean readings to readings:validated, stored MQTT readings to readings:raw, after each commit (never waits). */
  mlStream?: MlStream | undefined
  /** Called when the store breaker closes again (automatic DLQ replay). */
  onBreakerClosed?(): void
  /** The IoT store's breaker when the caller shares it (the runtime: also the universal store's when both are one database). */
  breaker?: CircuitBreaker | undefined
  /** Counters for /resilience/health, shared by the runtime's services. */
  counters?: DeliveryCounters | undefined
}

const DUPLICATE: ItemOutcome = Object.freeze({ status: 'duplicate' })
const INTERNAL: ItemOutcome = Object.freeze({ status: 'rejected', code: 'INTERNAL' })
const NO_KEYS: ReadonlySet<string> = new Set<string>()
/** One shared rejection outcome per code (outcomes are read-only once made). */
const REJECTED = new Map<string, ItemOutcome>()
function rejected(code: string): ItemOutcome {
  let o = REJECTED.get(code)
  if (!o) REJECTED.set(code, (o = Object.freeze({ status: 'rejected', code })))
  return o
}

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

export function toReplayable(item: ReadingItem): ReplayableReading {
  return { kind: 'reading', sensorId: item.sensorId, value: item.value, deviceTime: item.deviceTime, ingestTime: item.ingestTime, dedupKey: item.dedupKey, sequence: item.sequence, transport: item.transport, backfill: item.backfill, alerts: item.alerts }
}

/** A flush's stored readings to the ML stream (DESIGN §11): clean ones to readings:validated, MQTT ones to readings:raw. */
function publishToMl(stream: MlStream, items: readonly ReadingItem[], result: FlushResult): void {
  const validated: MlReading[] = []
  const raw: MlReading[] = []
  const outcomes = result.outcomes
  for (let i = 0; i < outcomes.length; i++) {
    const o = outcomes[i]
    const item = items[i]
    if (!item || o?.status !== 'stored' || o.classification === undefined) continue
    const clean = o.classification === 'ML_PREDICTION'
    if (!clean && item.transport !== 'mqtt') continue
    const reading: MlReading = { sensorId: item.sensorId, sensorType: result.rules?.get(item.sensorId)?.sensorType ?? null, value: item.value, time: item.deviceTime ?? item.ingestTime, classification: o.classification }
    if (clean) validated.push(reading)
    if (item.transport === 'mqtt') raw.push(reading)
  }
  if (validated.length > 0 || raw.length > 0) stream.publishReadings({ validated, raw })
}

/**
 * One parsed reading on its way to an item, whatever the transport addressed it by: the fields the
 * shared resolve -> guard -> key -> item step reads. One object is reused for every reading.
 */
interface Candidate {
  value: number
  /** The reading's device time, epoch ms, or null. */
  deviceTime: number | null
  /** The device time in epoch seconds as sent (the legacy dedup key), or null. */
  deviceTsSeconds: number | null
  /** The sensor's own time for diagnostics (a packet's shared `ts` is not the sensor's), epoch ms or null. */
  observedTs: number | null
  sequence: number | null
  msgId: string | null
  /** Set when the time came from a packet-level `ts` shared by its readings. */
  packetIndex: number | null
  /** A replay keeps its original dedup key (undefined: build one). */
  dedupKey: string | null | undefined
  /** The time it was first received (a replay), else now. */
  ingestTime: number
  transport: Transport
  backfill: boolean
  alerts: boolean
}

export class IngestService {
  readonly resolver: SensorResolver
  readonly committer: GroupCommitter<ReadingItem, ItemOutcome>
  readonly breaker: CircuitBreaker
  readonly dedup: DedupFilter
  readonly rulesCache: RulesCache
  /** Counters for /resilience/health. */
  readonly counters: DeliveryCounters
  private readonly deps: IngestServiceDeps
  /** Per sensor, the newest device time among committed readings whose pre-filter key holds it. */
  private readonly newestCommitted = new Map<number, number>()
  private readonly guardInput: GuardInput
  private readonly candidate: Candidate = { value: 0, deviceTime: null, deviceTsSeconds: null, observedTs: null, sequence: null, msgId: null, packetIndex: null, dedupKey: undefined, ingestTime: 0, transport: 'http', backfill: false, alerts: false }
  private readonly timing = { sensorId: 0, sensorTsMs: null as number | null, ingestedTsMs: 0, sequence: null as number | null }
  /** Whether a sensor missing from newestCommitted has no key in the pre-filter either (true until the map is reset). */
  private newestKnown = true

  constructor(deps: IngestServiceDeps) {
    this.deps = deps
    const { config, clock, store, metrics } = deps
    this.counters = deps.counters ?? createDeliveryCounters()
    this.guardInput = { value: 0, sensorType: null, deviceTime: null, now: 0, backfill: false, maxFutureSkewSeconds: config.ingest.maxFutureSkewSeconds, maxAgeDays: config.ingest.maxAgeDays }
    this.resolver = new SensorResolver(store.sensors, clock, { ttlMs: config.resolver.ttlSeconds * 1000, negativeTtlMs: config.resolver.negativeTtlSeconds * 1000 })
    this.dedup = deps.dedup ?? createMemoryDedupFilter({ ttlMs: config.dedup.ttlSeconds * 1000, clock })
    this.breaker = deps.breaker ?? createStoreBreaker({ store: 'iot', config, clock, logger: deps.logger, metrics, onClosed: () => deps.onBreakerClosed?.() })
    this.rulesCache = new RulesCache(clock, 5_000)
    const flushOptions: FlushOptions = { staleAfterMs: config.ingest.staleAfterSeconds * 1000, rulesCache: this.rulesCache, observePhase: (phase, seconds) => metrics.flushPhaseSeconds.observe({ phase }, seconds) }
    const flush = createResilientFlush<ReadingItem>({
      config,
      clock,
      logger: deps.logger,
      metrics,
      breaker: this.breaker,
      counters: this.counters,
      dlq: deps.dlq,
      write: async (items) => {
        const result = await flushReadings(store, items, flushOptions)
        this.afterCommit(items, result)
        return result.outcomes
      },
      deadLetterOf: (item, failure) => ({ transport: item.transport, ...failure, payload: toReplayable(item), sensorId: item.sensorId, msgId: item.dedupKey }),
      describe: (item) => ({ sensorId: item.sensorId }),
    })
    this.committer = new GroupCommitter<ReadingItem, ItemOutcome>({
      concurrency: config.ingest.flushConcurrency > 0 ? config.ingest.flushConcurrency : store.capabilities.flushConcurrency,
      maxBatch: config.ingest.batchMaxSize,
      maxQueued: config.ingest.bufferSize,
      lingerMs: config.ingest.flushIntervalMs,
      // Concurrent flushes never share a sensor: none waits on another's rule-state row locks.
      keyOf: (item) => item.sensorId,
      flush,
      onQueueWait: (ms) => metrics.queueWaitSeconds.observe(ms / 1000),
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

  /**
   * The one step from a parsed reading to a flush item, shared by every way a reading is addressed
   * (uuids, ids, replays): diagnostics, guards, the dedup key. Returns the item, or a rejection code.
   */
  private prepare(info: SensorInfo, c: Candidate, now: number): ReadingItem | string {
    this.observe(info.id, c.observedTs, now, c.sequence)
    // A replay is judged against the time it was first received, not the time it is replayed.
    const code = this.guard(info, c.value, c.deviceTime, c.ingestTime, c.backfill)
    if (code) return code
    let dedupKey: string | null
    let filterKey: string | null
    if (c.dedupKey !== undefined) {
      dedupKey = c.dedupKey
      filterKey = dedupFilterKey({ sensorId: info.id, dedupKey })
    } else {
      dedupKey = buildDedupKey({ sensorId: info.id, value: c.value, msgId: c.msgId, deviceTsSeconds: c.deviceTsSeconds, sequence: c.sequence, packetIndex: c.packetIndex })
      filterKey = filterKeyOf(info.id, dedupKey, !c.msgId)
    }
    return { sensorId: info.id, deviceId: info.deviceId, value: c.value, deviceTime: c.deviceTime, ingestTime: c.ingestTime, dedupKey, filterKey, sequence: c.sequence, transport: c.transport, backfill: c.backfill, alerts: c.alerts }
  }

  /** Resolved sensor -> item or rejection, into the parallel arrays the commit takes. */
  private accept(info: SensorInfo | null, c: Candidate, now: number, index: number, items: ReadingItem[], indexes: number[], early: Map<number, ItemOutcome>): void {
    if (!info) return void early.set(index, rejected('UNKNOWN_SENSOR'))
    if (!info.active) return void early.set(index, rejected('SENSOR_INACTIVE'))
    const item = this.prepare(info, c, now)
    if (typeof item === 'string') return void early.set(index, rejected(item))
    items.push(item)
    indexes.push(index)
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
    const code = guardReading(g) ?? this.deps.store.valueGuard(value)
    if (code === null && isSuspiciousZero(value, info.sensorType)) this.deps.metrics.suspiciousZeros.inc({ sensor_type: info.sensorType ?? 'unknown' })
    return code
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
      if (this.deps.mlStream?.enabled) publishToMl(this.deps.mlStream, items, result)
      this.deps.afterCommit?.(result)
    } catch (err) {
      this.deps.logger.warn({ err }, 'after-commit hook failed')
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
    const outcomes = fresh.length > 0 ? await submitWithin(this.committer, fresh, this.deps.config.ingest.commitTimeoutMs) : []
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
    // One lookup per distinct sensor of the packet, not per reading.
    const sensorUuids = [...new Set(input.readings.map((r) => r.sensorUuid))]
    const byPair = await this.resolver.resolveUuids(sensorUuids.map((sensorUuid) => ({ deviceUuid: input.deviceUuid, sensorUuid })))
    const unknown: string[] = []
    const early = new Map<number, ItemOutcome>()
    const items: ReadingItem[] = []
    const indexes: number[] = []
    const c = this.candidate
    c.ingestTime = now
    c.transport = input.transport
    c.backfill = input.backfill ?? false
    c.alerts = input.alerts ?? false
    c.dedupKey = undefined
    input.readings.forEach((r, index) => {
      const info = byPair.get(`${input.deviceUuid}|${r.sensorUuid}`) ?? null
      if (!info) unknown.push(r.sensorUuid)
      c.value = r.value
      // Seconds as sent -> ms to the nearest microsecond (a float `x.7999997` is `.800`, not `.799`).
      c.deviceTime = r.sensorTs !== null ? secondsToMs(r.sensorTs) : input.ts
      c.observedTs = r.sensorTs === null ? null : c.deviceTime
      c.deviceTsSeconds = r.sensorTs ?? (input.ts === null ? null : input.ts / 1000)
      c.sequence = r.sequence
      c.msgId = r.msgId ?? null
      c.packetIndex = r.sensorTs === null && input.ts !== null ? index : null
      this.accept(info, c, now, index, items, indexes, early)
    })
    const receipt = await this.commit(input.transport, input.readings.length, items, indexes, early)
    return { inserted: receipt.inserted, unknown_sensors: unknown, ingested_ts: now / 1000, duplicates: receipt.duplicates, rejected: receipt.rejected, dead_lettered: receipt.dead_lettered, receipts: receipt.receipts }
  }

  /** Readings by internal sensor id (`/ingest/readings`, `/ingest/readings/bulk`, MQTT, DLQ replay). */
  async ingestById(readings: readonly IdReading[], transport: Transport, options: { backfill?: boolean; alerts?: boolean } = {}): Promise<BatchReceipt> {
    const now = this.deps.clock.now()
    const resolved = await this.resolver.resolveIds(readings.map((r) => r.sensorId))
    const early = new Map<number, ItemOutcome>()
    const items: ReadingItem[] = []
    const indexes: number[] = []
    const c = this.candidate
    readings.forEach((r, index) => {
      c.value = r.value
      c.deviceTime = r.timestamp
      c.observedTs = r.timestamp
      c.deviceTsSeconds = r.deviceTsSeconds ?? (r.timestamp === null ? null : r.timestamp / 1000)
      c.sequence = r.sequence ?? null
      c.msgId = r.msgId ?? null
      c.packetIndex = null
      c.dedupKey = r.dedupKey
      c.ingestTime = r.ingestTime ?? now
      c.transport = (r.transport as Transport | undefined) ?? transport
      c.backfill = r.backfill ?? options.backfill ?? false
      c.alerts = r.alerts ?? options.alerts ?? false
      this.accept(resolved.get(`#${r.sensorId}`) ?? null, c, now, index, items, indexes, early)
    })
    return this.commit(transport, readings.length, items, indexes, early)
  }

  /** Stops accepting and flushes everything queued (graceful shutdown). */
  close(): Promise<void> {
    return this.committer.close()
  }
}
