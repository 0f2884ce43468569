/** Where in the pipeline an item failed. */
export type DlqStage = 'parse' | 'validation' | 'store' | 'breaker_open' | 'ownership' | 'processing' | 'replay'

/** `pending`: will be replayed; `parked`: failed DLQ_MAX_RETRIES replays, kept and listed but not replayed automatically. */
export type DlqStatus = 'pending' | 'parked'

export interface DeadLetterInput {
  transport: string
  stage: DlqStage
  /** A stable class for filtering: `outage`, `constraint`, `value_out_of_range`, `invalid_json`, ... */
  errorClass: string
  error: string
  /** The full item (never truncated): a {@link ReplayableReading} or {@link ReplayablePoint}; else the raw message. */
  payload: unknown
  sensorId?: number | null
  seriesId?: string | null
  msgId?: string | null
}

export interface DeadLetterEntry {
  /** Stable id (the same on every backend and across replays). */
  entryId: string
  transport: string
  stage: DlqStage
  errorClass: string
  error: string
  payload: unknown
  sensorId: number | null
  seriesId: string | null
  msgId: string | null
  status: DlqStatus
  /** Failed replays so far. */
  attempts: number
  firstFailedAt: string
  lastFailedAt: string
}

/** An IoT reading as dead-lettered by the ingest path: enough to re-run it through the same path. */
export interface ReplayableReading {
  kind: 'reading'
  sensorId: number
  value: number
  /** Epoch ms. */
  deviceTime: number | null
  ingestTime: number
  dedupKey: string | null
  sequence: number | null
  transport: string
  backfill: boolean
  alerts: boolean
}

/** A universal point as dead-lettered by the point path: enough to re-run it through the same path. */
export interface ReplayablePoint {
  kind: 'point'
  domain: string
  sourceId: string
  streamId: string
  value: number
  /** The point's time, epoch ms (now when it sent none: then `timed` is false). */
  time: number
  timed: boolean
  /** -1: none. */
  sequence: number
  metadata: Record<string, unknown>
  streamType: string | null
  ingestTime: number
  transport: string
  backfill: boolean
  alerts: boolean
}

/** What `ingest dlq replay` and the automatic replay re-run. */
export type ReplayableItem = ReplayableReading | ReplayablePoint

export interface DlqFilter {
  /** ISO-8601 or epoch ms bounds on the first failure. */
  since?: number
  until?: number
  stage?: DlqStage
  errorClass?: string
  sensorId?: number
  seriesId?: string
  status?: DlqStatus
  entryIds?: readonly string[]
  limit?: number
}

export interface DlqStats {
  backend: 'local' | 'redis'
  depth: number
  pending: number
  parked: number
  capacity: number
  oldestFailedAt: string | null
  byStage: Record<string, number>
  byErrorClass: Record<string, number>
}

/** Thrown by `add` at DLQ_MAX_LEN: entries are never trimmed silently; the transports push back. */
export class DlqFullError extends Error {
  readonly code = 'DLQ_FULL'
  constructor(readonly capacity: number) {
    super(`the dead-letter queue is full (${capacity} entries): new failures are refused`)
  }
}

/**
 * The dead-letter queue (DESIGN §6): `local` is a SQLite file in INGEST_DATA_DIR (it survives a
 * database outage), `redis` is the `dlq:ingest` stream for several replicas. Entries keep the full
 * payload; nothing is trimmed.
 */
export interface DeadLetterQueue {
  readonly backend: 'local' | 'redis'
  /** Appends entries atomically (all or none); returns their entry ids. Throws DlqFullError at capacity. */
  add(entries: readonly DeadLetterInput[]): Promise<string[]>
  list(filter?: DlqFilter): Promise<DeadLetterEntry[]>
  get(entryId: string): Promise<DeadLetterEntry | null>
  /** Entries that were replayed (stored or found already stored) leave the queue. */
  remove(entryIds: readonly string[]): Promise<number>
  /** A failed replay: attempts + 1, `parked` once attempts reach maxRetries. */
  recordFailure(entryId: string, error: string, atMs: number, maxRetries: number): Promise<DeadLetterEntry | null>
  /** Deletes only the entries the filter matches; returns how many. */
  purge(filter: DlqFilter): Promise<number>
  stats(): Promise<DlqStats>
  close(): Promise<void>
}
