import { epochMicros } from '../domain/time.js'

/**
 * The universal (multi-domain) write path (DESIGN §3, §5): `data_points`, `stream_alerts`,
 * `stream_rule_state` and `ingestion_audit_log`, one transaction per group-commit flush.
 * Series are `domain:source_id:stream_id`; times are epoch milliseconds (microseconds kept).
 */

/** A series' three parts; its id is `${domain}:${sourceId}:${streamId}`. */
export interface SeriesRef {
  readonly seriesId: string
  readonly domain: string
  readonly sourceId: string
  readonly streamId: string
}

/** The unique key of a stored point (`data_points_key`): its series, its own time and its sequence (-1: none). */
export interface PointKey {
  readonly series: SeriesRef
  readonly time: number
  readonly sequence: number
}

/** The key of a PointKey as the store reports it back: `${seriesId}|${epoch microseconds}|${sequence}` (built per point: no date formatting). */
export function pointKeyString(k: { series: { seriesId: string }; time: number; sequence: number }): string {
  return `${k.series.seriesId}|${epochMicros(k.time)}|${k.sequence}`
}

/** One `data_points` row. */
export interface PointRow extends PointKey {
  readonly value: number
  readonly classification: string
  /** JSON text of `domain_metadata` (the client's metadata plus the reason codes). */
  readonly metadata: string
  readonly ingestTime: number
}

/** The one active alert of a series. */
export interface ActiveStreamAlert {
  readonly id: number
  readonly severity: string
  readonly value: number
  readonly triggeredAt: number
}

/** What a flush does to `stream_alerts` (one active alert per series). */
export type StreamAlertWrite =
  | { readonly kind: 'open'; readonly series: SeriesRef; readonly severity: string; readonly value: number; readonly thresholdViolated: string | null; readonly message: string; readonly time: number }
  /** Same severity again (or an update in place): the active alert takes the new value and message. */
  | { readonly kind: 'update'; readonly series: SeriesRef; readonly severity: string; readonly value: number; readonly thresholdViolated: string | null; readonly message: string; readonly time: number }
  | { readonly kind: 'resolve'; readonly series: SeriesRef; readonly reason: string; readonly time: number }

/** One `ingestion_audit_log` row: a request/batch summary or a refused point. Never a secret. */
export interface AuditRow {
  readonly seriesId: string
  readonly domain: string
  readonly sourceId: string
  readonly value: number | null
  readonly classification: string | null
  readonly transport: string
  /** The first characters of the credential's SHA-256 (never the key). */
  readonly credential: string | null
  readonly clientIp: string | null
  readonly dataTime: number
  /** `accepted` (a request's summary), `refused` (a whole request), `rejected` (one point). */
  readonly status: string
  readonly error: string | null
  /** JSON text (counts, request id, codes), or null. */
  readonly metadata: string | null
}

export interface SeriesStateWrite {
  readonly seriesId: string
  /** JSON text of the classifier state. */
  readonly state: string
}

/** Everything one flush writes after classifying, in one call. */
export interface PointFlushWrite {
  readonly rows: readonly PointRow[]
  readonly alerts: readonly StreamAlertWrite[]
  readonly states: readonly SeriesStateWrite[]
  readonly audit: readonly AuditRow[]
}

/** What one flush may do inside its transaction. */
export interface UniversalTx {
  /** Locks the series' state rows in id order (creating missing ones) and returns each stored state (null when new). */
  lockSeries(series: readonly SeriesRef[]): Promise<Map<string, unknown>>
  /** The newest stored point of each series (the previous value of a series with no state yet). */
  lastPoints(series: readonly SeriesRef[]): Promise<Map<string, { value: number; time: number }>>
  /** The active alert of each series that has one. */
  activeAlerts(series: readonly SeriesRef[]): Promise<Map<string, ActiveStreamAlert>>
  /** Which keys are already stored, as pointKeyString. */
  existingKeys(keys: readonly PointKey[]): Promise<Set<string>>
  /** Writes the flush; a stored key fails it with DuplicateKeyError (the unique key is the backstop). The transaction's last call. Returns the ids of opened alerts. */
  write(flush: PointFlushWrite): Promise<{ openedAlerts: number[] }>
}

/** `GET /series/{id}/status`: the latest point, its class, and the active alert. */
export interface SeriesStatus {
  readonly latest: { value: number; time: number; classification: string; ingestTime: number } | null
  readonly activeAlert: (ActiveStreamAlert & { thresholdViolated: string | null; message: string | null }) | null
  readonly points: number
}

export interface UniversalStore {
  /** Flushes that may run at once on separate connections (series lock in id order). */
  readonly flushConcurrency: number
  /**
   * The flush may skip the stored-key check of timed points: a stored key then aborts the write with
   * DuplicateKeyError and the flush is redone with the check (PostgreSQL). Without it the check always runs.
   */
  readonly optimisticInsert: boolean
  transaction<T>(fn: (tx: UniversalTx) => Promise<T>): Promise<T>
  /** Audit rows written outside a flush (refused requests, refused WebSocket frames). */
  audit(rows: readonly AuditRow[]): Promise<void>
  seriesStatus(series: SeriesRef): Promise<SeriesStatus>
}
