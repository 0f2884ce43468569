import type { Effect, OperationalState, SensorRules } from '../domain/rules/index.js'

/** What the resolver and guards need to know about a sensor. */
export interface SensorInfo {
  id: number
  deviceId: number
  deviceUuid: string
  sensorUuid: string
  sensorType: string | null
  /** `is_active` and not deleted, device not deleted (the legacy `status` column is ignored). */
  active: boolean
}

/** Looks sensors up by (device uuid, sensor uuid) or by internal id. */
export interface SensorDirectory {
  findByUuids(pairs: ReadonlyArray<{ deviceUuid: string; sensorUuid: string }>): Promise<SensorInfo[]>
  findByIds(ids: readonly number[]): Promise<SensorInfo[]>
}

/** One row of `sensor_readings` as the flush writes it. Times are epoch milliseconds. */
export interface ReadingRow {
  sensorId: number
  value: number
  /** Server ingest time (`sensor_readings.timestamp`). */
  ingestTime: number
  /** Device time (`device_timestamp`), null when the device sent none. */
  deviceTime: number | null
  dedupKey: string | null
  sequence: number | null
  classification: string
  /** JSON text of the reason codes. */
  reasons: string
  transport: string
}

export interface StateWrite {
  sensorId: number
  /** JSON text of the rule state. */
  state: string
  /** Mirrored on the legacy `sensors` columns when it changed. */
  operationalState: OperationalState
  validReadingsCount: number
  stateChangedAt: number | null
  changed: boolean
}

export interface LatestWrite {
  sensorId: number
  value: number
  /** The reading's time; `sensor_readings_latest` only moves forward in it. */
  time: number
}

export interface EffectWrite {
  sensorId: number
  deviceId: number
  effect: Effect
}

/** Everything one flush writes after classifying: handed to the store in one call. */
export interface FlushWrite {
  /** Readings in the flush's order (each sensor's in time order). */
  readonly rows: readonly ReadingRow[]
  /** Alerts, DELTA_SPIKE events and notifications, in order. */
  readonly effects: readonly EffectWrite[]
  readonly latest: readonly LatestWrite[]
  readonly states: readonly StateWrite[]
  /**
   * The dedup pre-check was skipped (only when the store's `optimisticInsert` capability says so): a row
   * whose key is already stored must abort the write with DuplicateKeyError instead of being ignored.
   */
  readonly optimistic: boolean
}

/** What one group-commit flush may do inside its transaction. */
export interface IngestTx {
  /** Locks the sensors' rule-state rows in id order (creating missing rows) and returns the stored JSON. */
  lockSensors(sensorIds: readonly number[]): Promise<Map<number, unknown>>
  /** Active thresholds, delta rule and warm-up settings of each sensor. */
  loadRules(sensorIds: readonly number[]): Promise<Map<number, SensorRules>>
  /** Which (sensor, dedup key) pairs are already stored; keys are `${sensorId}:${dedupKey}`. */
  existingDedupKeys(pairs: ReadonlyArray<{ sensorId: number; dedupKey: string }>): Promise<Set<string>>
  /**
   * Writes the flush: readings (a duplicate key is ignored as a backstop, unless `optimistic`), effects,
   * latest values (only forward in time) and rule states. The transaction's last call: the engine may
   * send its COMMIT along. Returns the ids of the alerts it opened.
   */
  write(flush: FlushWrite): Promise<{ openedAlerts: number[] }>
}

/** A bulk insert met a stored dedup key: the flush is redone with the pre-check. */
export class DuplicateKeyError extends Error {
  readonly code = 'DUPLICATE_KEY'
  constructor(cause?: unknown) {
    super('a reading of the batch is already stored', cause === undefined ? undefined : { cause })
  }
}

/**
 * How an engine's write path differs, in one table the flush and the ingest service read (no
 * `engine ===` checks, no optional members).
 */
export interface IngestCapabilities {
  /** Flushes that may run at once on separate connections (sensors lock in id order). */
  readonly flushConcurrency: number
  /**
   * The write may skip the dedup pre-check: a stored key aborts it with DuplicateKeyError and the flush
   * is redone with the check (PostgreSQL's COPY). Without it the pre-check always runs.
   */
  readonly optimisticInsert: boolean
  /** SQL Server with IOT_MSSQL_PROCEDURE: the legacy procedure classifies and writes alerts itself. */
  readonly classifiesItself: boolean
}

/** The IoT store's write path: one transaction per flush. */
export interface IngestStore {
  readonly capabilities: IngestCapabilities
  readonly sensors: SensorDirectory
  /** The engine's storage-range guard, run after the domain guards: a rejection code, or null when storable (SQL Server's legacy decimal(15,5)). */
  valueGuard(value: number): string | null
  transaction<T>(fn: (tx: IngestTx) => Promise<T>): Promise<T>
}
