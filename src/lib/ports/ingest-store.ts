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

/** What one group-commit flush may do inside its transaction. */
export interface IngestTx {
  /** Locks the sensors' rule-state rows in id order (creating missing rows) and returns the stored JSON. */
  lockSensors(sensorIds: readonly number[]): Promise<Map<number, unknown>>
  /** Active thresholds, delta rule and warm-up settings of each sensor. */
  loadRules(sensorIds: readonly number[]): Promise<Map<number, SensorRules>>
  /** Which (sensor, dedup key) pairs are already stored; keys are `${sensorId}:${dedupKey}`. */
  existingDedupKeys(pairs: ReadonlyArray<{ sensorId: number; dedupKey: string }>): Promise<Set<string>>
  /** Inserts the rows (a duplicate key is ignored as a backstop); returns how many were stored. */
  insertReadings(rows: readonly ReadingRow[]): Promise<number>
  /**
   * The fast path (bulk load, e.g. COPY) for a flush that skipped the dedup pre-check: throws
   * DuplicateKeyError when a row's key is already stored, and the caller redoes the flush with the check.
   */
  bulkInsertReadings?(rows: readonly ReadingRow[]): Promise<void>
  moveLatest(rows: readonly LatestWrite[]): Promise<void>
  saveStates(states: readonly StateWrite[]): Promise<void>
  /**
   * moveLatest and saveStates together, when the engine can do both in one round trip. `last`: nothing
   * else is written in this transaction after it, so the engine may send its COMMIT along.
   */
  saveProgress?(latest: readonly LatestWrite[], states: readonly StateWrite[], options?: { last?: boolean }): Promise<void>
  /** Alerts, DELTA_SPIKE events and notifications, in order. Returns the ids of the alerts it opened. */
  applyEffects(effects: readonly EffectWrite[]): Promise<number[]>
}

/** A bulk insert met a stored dedup key: the flush is redone with the pre-check. */
export class DuplicateKeyError extends Error {
  readonly code = 'DUPLICATE_KEY'
  constructor(cause?: unknown) {
    super('a reading of the batch is already stored', cause === undefined ? undefined : { cause })
  }
}

/** The IoT store's write path: one transaction per flush. */
export interface IngestStore {
  /** How many flushes may run at once (separate connections; sensors lock in id order). Default 1. */
  readonly flushConcurrency?: number
  readonly sensors: SensorDirectory
  /** SQL Server with IOT_MSSQL_PROCEDURE: the legacy procedure classifies and writes alerts itself. */
  readonly classifiesItself?: boolean
  /** A storage-range guard run after the domain guards (SQL Server's legacy decimal(15,5)). */
  readonly valueGuard?: (value: number) => string | null
  transaction<T>(fn: (tx: IngestTx) => Promise<T>): Promise<T>
}
