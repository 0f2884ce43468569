import { guardReading, isSuspiciousZero } from '../../domain/rules/index.js'
import type { Config } from '../../config/index.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import type { IngestStore, SensorInfo } from '../../ports/ingest-store.js'
import { GroupCommitter } from '../group-commit.js'
import type { Metrics } from '../metrics.js'
import { flushReadings, type FlushResult } from './flush.js'
import { buildDedupKey, type ItemOutcome, type ReadingItem, type Receipt, type Transport } from './items.js'
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
  /** After-commit hook (ML stream, dedup markers, push): best effort, never fails the request. */
  afterCommit?(result: FlushResult): void
}

/**
 * The one ingest path every transport calls (DESIGN §3): guards, sensor resolution, dedup keys, then
 * the group committer; returns one receipt per item after the items committed.
 */
export class IngestService {
  readonly resolver: SensorResolver
  readonly committer: GroupCommitter<ReadingItem, ItemOutcome>
  private readonly deps: IngestServiceDeps

  constructor(deps: IngestServiceDeps) {
    this.deps = deps
    const { config, clock, store, metrics } = deps
    this.resolver = new SensorResolver(store.sensors, clock, { ttlMs: config.resolver.ttlSeconds * 1000, negativeTtlMs: config.resolver.negativeTtlSeconds * 1000 })
    this.committer = new GroupCommitter<ReadingItem, ItemOutcome>({
      maxBatch: config.ingest.batchMaxSize,
      maxQueued: config.ingest.bufferSize,
      lingerMs: config.ingest.flushIntervalMs,
      flush: async (items) => {
        const result = await flushReadings(store, items, { staleAfterMs: config.ingest.staleAfterSeconds * 1000 })
        try {
          deps.afterCommit?.(result)
        } catch (err) {
          deps.logger.warn({ err }, 'after-commit hook failed')
        }
        return result.outcomes
      },
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

  private guard(info: SensorInfo, value: number, deviceTime: number | null, now: number, backfill: boolean): string | null {
    const code = guardReading({
      value,
      sensorType: info.sensorType,
      deviceTime,
      now,
      backfill,
      maxFutureSkewSeconds: this.deps.config.ingest.maxFutureSkewSeconds,
      maxAgeDays: this.deps.config.ingest.maxAgeDays,
    })
    if (code === null && isSuspiciousZero(value, info.sensorType)) this.deps.metrics.suspiciousZeros.inc({ sensor_type: info.sensorType ?? 'unknown' })
    return code
  }

  /** Commits the accepted items and merges their outcomes with the rejections into receipts. */
  private async commit(transport: Transport, total: number, items: Array<{ index: number; item: ReadingItem }>, early: Map<number, ItemOutcome>): Promise<BatchReceipt> {
    const outcomes = await this.committer.submit(items.map((i) => i.item))
    const all = new Map(early)
    items.forEach((entry, i) => all.set(entry.index, outcomes[i] as ItemOutcome))
    const receipt: BatchReceipt = { inserted: 0, duplicates: 0, rejected: 0, dead_lettered: 0, receipts: [] }
    for (let index = 0; index < total; index++) {
      const o = all.get(index) ?? { status: 'rejected', code: 'INTERNAL' }
      if (o.status === 'stored') receipt.inserted++
      else if (o.status === 'duplicate') receipt.duplicates++
      else if (o.status === 'rejected') receipt.rejected++
      else receipt.dead_lettered++
      this.deps.metrics.items.inc({ transport, class: o.classification ?? 'none', outcome: o.status })
      receipt.receipts.push({ index, status: o.status, ...(o.code === undefined ? {} : { code: o.code }), ...(o.dlqId === undefined ? {} : { dlq_id: o.dlqId }), ...(o.classification === undefined ? {} : { classification: o.classification }) })
    }
    return receipt
  }

  /** A device packet (`/ingest/packets`, WebSocket IoT frames): readings addressed by uuid. */
  async ingestPacket(input: PacketInput): Promise<PacketReceipt> {
    const now = this.deps.clock.now()
    const ingestedTs = now / 1000
    const backfill = input.backfill ?? false
    const alerts = input.alerts ?? false
    const resolved = await this.resolver.resolveUuids(input.readings.map((r) => ({ deviceUuid: input.deviceUuid, sensorUuid: r.sensorUuid })))
    const unknown: string[] = []
    const early = new Map<number, ItemOutcome>()
    const items: Array<{ index: number; item: ReadingItem }> = []
    input.readings.forEach((r, index) => {
      const info = resolved.get(`${input.deviceUuid}|${r.sensorUuid}`) ?? null
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
      this.deps.diagnostics?.record({ sensorId: info.id, sensorTsMs: r.sensorTs === null ? null : r.sensorTs * 1000, ingestedTsMs: now, sequence: r.sequence })
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
      items.push({ index, item: { sensorId: info.id, deviceId: info.deviceId, value: r.value, deviceTime, ingestTime: now, dedupKey, sequence: r.sequence, transport: input.transport, backfill, alerts } })
    })
    const receipt = await this.commit(input.transport, input.readings.length, items, early)
    return { inserted: receipt.inserted, unknown_sensors: unknown, ingested_ts: ingestedTs, duplicates: receipt.duplicates, rejected: receipt.rejected, dead_lettered: receipt.dead_lettered, receipts: receipt.receipts }
  }

  /** Readings by internal sensor id (`/ingest/readings`, `/ingest/readings/bulk`, MQTT). */
  async ingestById(readings: readonly IdReading[], transport: Transport, options: { backfill?: boolean; alerts?: boolean } = {}): Promise<BatchReceipt> {
    const now = this.deps.clock.now()
    const backfill = options.backfill ?? false
    const resolved = await this.resolver.resolveIds(readings.map((r) => r.sensorId))
    const early = new Map<number, ItemOutcome>()
    const items: Array<{ index: number; item: ReadingItem }> = []
    readings.forEach((r, index) => {
      const info = resolved.get(`#${r.sensorId}`) ?? null
      if (!info) return void early.set(index, { status: 'rejected', code: 'UNKNOWN_SENSOR' })
      if (!info.active) return void early.set(index, { status: 'rejected', code: 'SENSOR_INACTIVE' })
      this.deps.diagnostics?.record({ sensorId: info.id, sensorTsMs: r.timestamp, ingestedTsMs: now, sequence: r.sequence ?? null })
      const code = this.guard(info, r.value, r.timestamp, now, backfill)
      if (code) return void early.set(index, { status: 'rejected', code })
      const deviceTsSeconds = r.deviceTsSeconds ?? (r.timestamp === null ? null : r.timestamp / 1000)
      const dedupKey = buildDedupKey({ sensorId: info.id, value: r.value, msgId: r.msgId ?? null, deviceTsSeconds, sequence: r.sequence ?? null })
      items.push({ index, item: { sensorId: info.id, deviceId: info.deviceId, value: r.value, deviceTime: r.timestamp, ingestTime: now, dedupKey, sequence: r.sequence ?? null, transport, backfill, alerts: options.alerts ?? false } })
    })
    return this.commit(transport, readings.length, items, early)
  }

  /** Stops accepting and flushes everything queued (graceful shutdown). */
  close(): Promise<void> {
    return this.committer.close()
  }
}
