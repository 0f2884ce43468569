import { buildDedupKey } from '../app/ingest/items.js'
import type { BatchReceipt } from '../app/ingest/ingest-service.js'
import { backoffDelay } from '../app/resilience/retry.js'
import { describeIssues, type MqttReading, parseMqttReading } from '../domain/ingest/mqtt-reading.js'
import type { IdReading } from '../domain/ingest/readings.js'
import { AppError } from '../errors/index.js'
import type { Logger } from '../log/index.js'
import type { Clock } from '../ports/clock.js'
import type { PointCaller, PointService } from '../app/universal/point-service.js'
import { isPlainObject } from '../domain/ingest/fields.js'
import type { ParseIssue } from '../domain/ingest/issues.js'
import { parsePoint } from '../domain/ingest/points.js'
import { formatSeriesId, validateSeriesKey } from '../domain/universal/index.js'
import { type DeadLetterInput, type DeadLetterQueue, DlqFullError, type ReplayablePoint, type ReplayableReading } from '../ports/dead-letter-queue.js'
import { decodeJsonPayload } from './payload.js'
import type { MessageOutcome, MqttStats } from './stats.js'
import { routeTopic, topicSensorMismatch } from './topics.js'

/** What the handler needs from the ingest runtime (createIngestRuntime): the one ingest path and the DLQ. */
export interface HandlerRuntime {
  readonly ingest: { ingestById(readings: readonly IdReading[], transport: 'mqtt'): Promise<BatchReceipt> }
  /** Universal points (`{domain}/{source}/{stream}/data`). */
  readonly points: Pick<PointService, 'ingestPoints'>
  readonly dlq: DeadLetterQueue | undefined
  readonly clock: Clock
  readonly logger: Logger
}

export interface HandlerOptions {
  topicPrefix: string
  maxPayloadBytes: number
  maxJsonDepth: number
  /** Backoff of a message whose commit or dead letter failed for an outage-class reason. */
  retryBaseMs?: number
  retryMaxMs?: number
}

/** Universal MQTT points: the broker authenticated the publisher (no credential, no client address here). */
const MQTT_CALLER: PointCaller = { transport: 'mqtt', credential: null, clientIp: null }

/** Thrown when the receivers stop while a message waits to be retried: it is left unacked (the broker redelivers it). */
export class ReceiverStoppedError extends Error {
  constructor() {
    super('the MQTT receiver stopped before the message was committed; it stays unacked')
  }
}

/** A message that will not be stored: dead-lettered once, then acked (reliability.md §4.3). */
interface Poison {
  stage: DeadLetterInput['stage']
  errorClass: string
  error: string
  payload: unknown
  sensorId?: number
  seriesId?: string
  msgId?: string | null
}

/**
 * One MQTT message to its settled outcome (DESIGN §6, §10): parse, validate, check the topic binding,
 * then the one ingest path. The returned promise resolves only once the reading is committed (stored
 * or found already stored) or its dead letter is written: the caller sends the PUBACK then. An
 * outage-class failure (queue full, breaker open, store down, DLQ full) never settles a message: it
 * waits with backoff and tries again, so nothing is acked that is not durable, and nothing is dropped.
 */
export class MessageHandler {
  private stopped = false
  private readonly stopWaiters = new Set<() => void>()

  constructor(
    private readonly rt: HandlerRuntime,
    private readonly stats: MqttStats,
    private readonly options: HandlerOptions,
  ) {}

  /** Messages waiting for a retry give up (unacked); a commit already under way still finishes. */
  stop(): void {
    this.stopped = true
    for (const wake of this.stopWaiters) wake()
    this.stopWaiters.clear()
  }

  async handle(topic: string, payload: Uint8Array): Promise<MessageOutcome> {
    const route = routeTopic(topic, this.options.topicPrefix)
    if (route.kind === 'universal') {
      if (route.domain.toLowerCase() === 'iot') return this.deadLetter(topic, { stage: 'validation', errorClass: 'invalid_domain', error: "domain='iot' not allowed on a universal topic: IoT readings go to iot/sensors/{id}/readings", payload: rawPayload(topic, payload) })
      return this.handlePoint(topic, route, payload)
    }
    if (route.kind === 'unknown') return this.deadLetter(topic, { stage: 'validation', errorClass: 'unknown_topic', error: `topic ${topic} is neither iot/sensors/{id}/readings nor {domain}/{source}/{stream}/data`, payload: rawPayload(topic, payload) })

    const decoded = decodeJsonPayload(payload, { maxBytes: this.options.maxPayloadBytes, maxDepth: this.options.maxJsonDepth })
    if (!decoded.ok) return this.deadLetter(topic, { stage: 'parse', errorClass: 'invalid_json', error: decoded.error, payload: rawPayload(topic, payload) })
    const parsed = parseMqttReading(decoded.value)
    if (!parsed.ok) return this.deadLetter(topic, { stage: 'validation', errorClass: 'validation_error', error: describeIssues(parsed.issues), payload: { topic, message: decoded.value } })
    const reading = parsed.value
    if (topicSensorMismatch(route.segment, reading.sensorId)) {
      return this.deadLetter(topic, { stage: 'ownership', errorClass: 'ownership_denied', error: `topic sensor ${route.segment} does not match the payload's sensorId ${reading.sensorId}`, payload: { topic, message: decoded.value }, sensorId: reading.sensorId, msgId: reading.msgId })
    }
    return this.ingest(topic, reading, this.rt.clock.now())
  }

  /**
   * A universal point (reference §9.4): `{value, timestamp?, sequence?, metadata?}` on
   * `{domain}/{source}/{stream}/data`, through the point path; the broker's ACLs authenticated the publisher.
   */
  private async handlePoint(topic: string, route: { domain: string; source: string; stream: string }, payload: Uint8Array): Promise<MessageOutcome> {
    const decoded = decodeJsonPayload(payload, { maxBytes: this.options.maxPayloadBytes, maxDepth: this.options.maxJsonDepth })
    if (!decoded.ok) return this.deadLetter(topic, { stage: 'parse', errorClass: 'invalid_json', error: decoded.error, payload: rawPayload(topic, payload) })
    const issues: ParseIssue[] = []
    const key = validateSeriesKey({ domain: route.domain, source_id: route.source, stream_id: route.stream }, ['topic'], issues)
    const point = isPlainObject(decoded.value) ? parsePoint({ ...decoded.value, stream_id: route.stream }, [], issues) : parsePoint(decoded.value, [], issues)
    if (!key || !point || issues.length > 0) return this.deadLetter(topic, { stage: 'validation', errorClass: 'validation_error', error: describeIssues(issues), payload: { topic, message: decoded.value } })
    const receipt = await this.untilDurable('commit', () => this.rt.points.ingestPoints({ domain: key.domain, sourceId: key.source_id, points: [point] }, MQTT_CALLER))
    const r = receipt.receipts[0]
    const settled = this.settled(r)
    if (settled) return settled
    // Refused (outside the physical range, out of the time window): kept whole, replayable once the cause is fixed.
    const code = r?.code ?? 'INTERNAL'
    const replayable: ReplayablePoint = { kind: 'point', domain: key.domain, sourceId: key.source_id, streamId: key.stream_id, value: point.value, time: point.timestamp ?? this.rt.clock.now(), timed: point.timestamp !== null, sequence: point.sequence ?? -1, metadata: point.metadata, streamType: point.streamType, ingestTime: this.rt.clock.now(), transport: 'mqtt', backfill: false, alerts: false }
    return this.deadLetter(topic, { stage: 'validation', errorClass: code, error: `rejected: ${receipt.results[0]?.reason ?? code}`, payload: replayable, seriesId: formatSeriesId(key) })
  }

  private async ingest(topic: string, reading: MqttReading, receivedAt: number): Promise<MessageOutcome> {
    const item: IdReading = { sensorId: reading.sensorId, value: reading.value, timestamp: reading.timestamp, deviceTsSeconds: reading.deviceTsSeconds, sequence: reading.sequence, msgId: reading.msgId, ingestTime: receivedAt }
    const receipt = await this.untilDurable('commit', () => this.rt.ingest.ingestById([item], 'mqtt'))
    const r = receipt.receipts[0]
    const settled = this.settled(r)
    if (settled) return settled
    // Rejected by a guard (out-of-window time, unknown or inactive sensor, value out of range): kept as a
    // replayable reading, so `ingest dlq replay` stores it once the cause is fixed (a sensor registered).
    const code = r?.code ?? 'INTERNAL'
    const dedupKey = buildDedupKey({ sensorId: reading.sensorId, value: reading.value, msgId: reading.msgId, deviceTsSeconds: reading.deviceTsSeconds, sequence: reading.sequence })
    const replayable: ReplayableReading = { kind: 'reading', sensorId: reading.sensorId, value: reading.value, deviceTime: reading.timestamp, ingestTime: receivedAt, dedupKey, sequence: reading.sequence, transport: 'mqtt', backfill: false, alerts: false }
    return this.deadLetter(topic, { stage: 'validation', errorClass: code, error: `rejected: ${code}`, payload: replayable, sensorId: reading.sensorId, msgId: dedupKey })
  }

  /**
   * A committed receipt settles the message: stored or already stored, or dead-lettered by the ingest path
   * itself (a poison row, or CB_OPEN_ACTION=dlq). Undefined: refused, the caller dead-letters it.
   */
  private settled(r: { status: string; code?: string } | undefined): MessageOutcome | undefined {
    if (r?.status === 'stored' || r?.status === 'duplicate') {
      this.stats.settle(r.status)
      return r.status
    }
    if (r?.status === 'dead_lettered') {
      this.stats.settle('dead_lettered', r.code ?? 'store')
      return 'dead_lettered'
    }
    return undefined
  }

  private async deadLetter(topic: string, poison: Poison): Promise<MessageOutcome> {
    const dlq = this.rt.dlq
    if (!dlq) {
      // DLQ_ENABLED=false: the operator chose to keep no poison; it is logged and acked (never redelivered forever).
      this.rt.logger.warn({ topic, stage: poison.stage, errorClass: poison.errorClass, error: poison.error }, 'mqtt message refused (DLQ disabled): acked without a dead letter')
      this.stats.settle('dead_lettered', poison.errorClass)
      return 'dead_lettered'
    }
    const entry: DeadLetterInput = { transport: 'mqtt', stage: poison.stage, errorClass: poison.errorClass, error: poison.error, payload: poison.payload, sensorId: poison.sensorId ?? null, seriesId: poison.seriesId ?? null, msgId: poison.msgId ?? null }
    await this.untilDurable('dead letter', () => dlq.add([entry]))
    this.rt.logger.info({ topic, stage: poison.stage, errorClass: poison.errorClass }, 'mqtt message dead-lettered')
    this.stats.settle('dead_lettered', poison.errorClass)
    return 'dead_lettered'
  }

  /**
   * Runs `fn` until it succeeds. Outage-class errors (503-class AppErrors: queue full, breaker open,
   * store down, commit timeout; a full DLQ) wait with full-jitter backoff and retry without limit;
   * anything else (a bug) is retried too, since acking would lose the message, but logged as an error.
   */
  private async untilDurable<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const base = this.options.retryBaseMs ?? 100
    const max = this.options.retryMaxMs ?? 5000
    for (let attempt = 1; ; attempt++) {
      if (this.stopped) throw new ReceiverStoppedError()
      try {
        return await fn()
      } catch (err) {
        const outage = isOutage(err)
        this.stats.retries++
        const delay = Math.max(10, backoffDelay(attempt, base, max))
        if (outage) this.rt.logger.debug({ err: (err as Error).message, attempt, delay }, `mqtt ${what} waits for the store`)
        else this.rt.logger.error({ err, attempt, delay }, `mqtt ${what} failed unexpectedly; the message stays unacked and is retried`)
        await this.pause(delay)
      }
    }
  }

  /** The clock's sleep, cut short by stop(). */
  private pause(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve()
    return new Promise((resolve) => {
      const wake = (): void => {
        this.stopWaiters.delete(wake)
        resolve()
      }
      this.stopWaiters.add(wake)
      void this.rt.clock.sleep(ms).then(wake)
    })
  }
}

function isOutage(err: unknown): boolean {
  return err instanceof DlqFullError || (err instanceof AppError && err.httpStatus === 503)
}

/** A message kept whole: its topic and its bytes (as UTF-8 text when it is text, else base64). */
function rawPayload(topic: string, bytes: Uint8Array): { topic: string; text?: string; base64?: string } {
  try {
    return { topic, text: new TextDecoder('utf-8', { fatal: true }).decode(bytes) }
  } catch {
    return { topic, base64: Buffer.from(bytes).toString('base64') }
  }
}
