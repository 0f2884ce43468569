/**
 * The ML stream (DESIGN §11): what the ingest path publishes for the ML consumers after a commit.
 * Publishing is best effort and never holds the caller: every method returns at once, never throws,
 * and a Redis outage only costs the entries published meanwhile (counted, see `status()`).
 *
 * Streams (names get REDIS_KEY_PREFIX in front) and their fields, every value a string:
 * - `readings:validated`: clean IoT readings (class ML_PREDICTION) from every transport, throttled per
 *   sensor by data time (ML_PUBLISH_MIN_INTERVAL_SECONDS). Reference §11.2 fields plus the class and a
 *   schema version: see VALIDATED_FIELDS.
 * - `readings:raw`: every stored MQTT reading whatever its class, unthrottled. Reference §11.3 fields
 *   plus the class and a schema version: see RAW_FIELDS.
 * - `datapoints:validated`: clean universal data points, unthrottled: see POINT_FIELDS.
 * Each XADD trims with `MAXLEN ~ ML_STREAM_MAXLEN`; the Redis adapter sends a flush's entries in one pipeline.
 */

export const ML_STREAMS = { validated: 'readings:validated', raw: 'readings:raw', points: 'datapoints:validated' } as const
export type MlStreamName = (typeof ML_STREAMS)[keyof typeof ML_STREAMS]

/** The `schema_version` field of every entry; raised when a field changes meaning or goes away. */
export const ML_SCHEMA_VERSION = '1'

/**
 * `readings:validated` fields, in order. `sensor_id` a decimal integer; `sensor_type` the registry's
 * type or `unknown`; `value` a decimal float; `timestamp` the reading's data time (the device's time,
 * else the ingest time) in epoch seconds with up to six decimals (`1740523306.123456`, Python
 * `str(float)` style); `classification` always `ML_PREDICTION` (the clean class).
 */
export const VALIDATED_FIELDS = ['sensor_id', 'sensor_type', 'value', 'timestamp', 'classification', 'schema_version'] as const
/** `readings:raw` fields, in order: as VALIDATED_FIELDS plus `timestamp_iso` (ISO-8601 UTC, six decimals); `classification` is the stored class (ALERT, WARNING, ML_PREDICTION, SP_HANDLED). */
export const RAW_FIELDS = ['sensor_id', 'sensor_type', 'value', 'timestamp', 'timestamp_iso', 'classification', 'schema_version'] as const
/**
 * `datapoints:validated` fields, in order: `series_id` (`domain:source_id:stream_id`), its three parts,
 * `value`, `timestamp` (epoch seconds as above), `timestamp_iso`, `classification`, `sequence` (decimal
 * integer, `-1` when the point has none, as `data_points` stores it), `metadata` (JSON text, `{}` when
 * none), `schema_version`.
 */
export const POINT_FIELDS = ['series_id', 'domain', 'source_id', 'stream_id', 'value', 'timestamp', 'timestamp_iso', 'classification', 'sequence', 'metadata', 'schema_version'] as const

/** One committed IoT reading as the ML stream takes it. */
export interface MlReading {
  readonly sensorId: number
  /** The registry's sensor type; null is published as `unknown`. */
  readonly sensorType: string | null
  readonly value: number
  /** Data time: the device's time, else the ingest time; epoch ms (microseconds kept). */
  readonly time: number
  readonly classification: string
}

/** One committed universal data point as the ML stream takes it. */
export interface MlPoint {
  readonly seriesId: string
  readonly domain: string
  readonly sourceId: string
  readonly streamId: string
  readonly value: number
  /** The point's own time, epoch ms (microseconds kept). */
  readonly time: number
  readonly classification: string
  /** The point's sequence; null or -1: none. */
  readonly sequence: number | null
  /** The client's metadata as JSON text or a plain object; undefined/null: none. */
  readonly metadata?: string | Record<string, unknown> | null
}

/** What `/resilience/health`, `/ingest/health` and `/metrics` report about the stream. */
export interface MlStreamStatus {
  /** On when Redis is configured (REDIS_URL, REDIS_ENABLED not false). */
  enabled: boolean
  /** Why it is off, when it is. */
  reason: string | null
  /** Redis is connected and not in a back-off period. */
  available: boolean
  /** Entries accepted for publishing and not yet confirmed by Redis (waiting + in a pipeline): the lag. */
  queued: number
  /** Entries confirmed by Redis, per stream. */
  published: Record<MlStreamName, number>
  /** Clean readings not published to readings:validated by the per-sensor throttle. */
  throttled: number
  /** Entries lost to Redis trouble (not connected, back-off, a failed pipeline) or to a full queue. */
  dropped: number
  /** Pipelines that failed. */
  errors: number
  lastPublishAt: string | null
  lastPublishAgeSeconds: number | null
  lastError: string | null
  lastErrorAt: string | null
  minIntervalSeconds: number
  maxLen: number
}

export interface MlStream {
  readonly enabled: boolean
  /**
   * After a commit: `validated` are the flush's clean readings (throttled here), `raw` its stored MQTT
   * readings. Returns at once; the entries of one call (and of calls in the same tick) go in one pipeline.
   */
  publishReadings(batch: { validated: readonly MlReading[]; raw: readonly MlReading[] }): void
  /** After a universal flush's commit: its stored clean points (the caller filters by class). Returns at once. */
  publishPoints(points: readonly MlPoint[]): void
  status(): MlStreamStatus
  /** Sends what is waiting and waits (briefly) for the pipelines in flight; call before the Redis client quits. */
  close(): Promise<void>
}
