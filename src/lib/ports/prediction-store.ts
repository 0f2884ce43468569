import type { PredictionEngine, PredictionValues, ThresholdBreach, WindowPoint } from '../domain/ml/index.js'
import type { ThresholdRule } from '../domain/rules/types.js'

/** `--shard i/n`: the sensors whose id mod n is i. */
export interface Shard {
  index: number
  count: number
}

/** An active sensor and its `ml_watermarks.last_reading_id` (null: none yet). */
export interface MlSensor {
  sensorId: number
  deviceId: number
  watermark: number | null
}

/** A sensor with readings newer than its watermark: its newest reading id and window (oldest first). */
export interface SensorWindow {
  sensorId: number
  deviceId: number
  watermark: number | null
  maxReadingId: number
  points: WindowPoint[]
}

/** The watermark move of one sensor: from what the run read to the reading it predicted up to. */
export interface WatermarkClaim {
  sensorId: number
  from: number | null
  to: number
}

export interface NewPrediction extends PredictionValues {
  sensorId: number
  deviceId: number
  modelId: number
}

export interface NewBreachEvent {
  sensorId: number
  deviceId: number
  predictionId: number
  breach: ThresholdBreach
  predictedValue: number
  at: number
}

/** The writes of `batch predict` inside one transaction. */
export interface PredictionTx {
  /** Runs fn inside a savepoint: on a throw the savepoint's writes are rolled back and the error rethrown; the transaction goes on. */
  savepoint<T>(fn: () => Promise<T>): Promise<T>
  /**
   * Compare-and-set of the watermarks: each moves to `to` only if it still is `from` (a missing row
   * counts as null). Returns the sensors this transaction won; a concurrent run wins the others.
   */
  claim(claims: readonly WatermarkClaim[], at: number): Promise<Set<number>>
  /** The newest active ml_models row of each sensor for the engine, created when missing. */
  models(sensorIds: readonly number[], engine: PredictionEngine, at: number): Promise<Map<number, number>>
  /**
   * Multi-row inserts; returns the new ids of the predictions of `idsFor` (those that raise an event),
   * by sensor. Only one prediction per sensor per call.
   */
  insertPredictions(rows: readonly NewPrediction[], idsFor: ReadonlySet<number>): Promise<Map<number, number>>
  /** Sensors with an active or acknowledged PRED_THRESHOLD_BREACH created at or after `since`. */
  recentBreaches(sensorIds: readonly number[], since: number): Promise<Set<number>>
  /** The ml_events rows and their alert_notifications rows (multi-row inserts; all share `at`). */
  insertBreaches(events: readonly NewBreachEvent[]): Promise<void>
}

/** A prediction `explain anomalies` selects. */
export interface AnomalyToExplain {
  id: number
  sensorId: number
  deviceId: number
  predictedValue: number
  confidence: number
  anomalyScore: number
  trend: string | null
  targetTimestamp: number | null
  sensorType: string | null
}

/** `predictions`, `ml_models`, `ml_watermarks`, `ml_events` (IoT store): the two ML jobs (DESIGN §11). */
export interface PredictionStore {
  /** Active sensors (active, not deleted, device not deleted), by id, optionally one shard. */
  activeSensors(shard: Shard | null): Promise<MlSensor[]>
  /**
   * Of these sensors, those with a reading newer than their watermark, each with its last `window`
   * readings by time (device time, else ingest time; ties by id) up to its newest reading id. One query per call.
   */
  pendingWindows(sensors: readonly MlSensor[], window: number): Promise<SensorWindow[]>
  /** Active thresholds by sensor, by id. */
  thresholds(sensorIds: readonly number[]): Promise<Map<number, ThresholdRule[]>>
  /** Sensor types by sensor id. */
  sensorTypes(sensorIds: readonly number[]): Promise<Map<number, string | null>>
  /** One transaction. */
  withTransaction<T>(fn: (tx: PredictionTx) => Promise<T>): Promise<T>
  /** is_anomaly, anomaly_score >= threshold, no explanation (null or blank); newest target time first. */
  anomaliesToExplain(options: { threshold: number; limit: number }): Promise<AnomalyToExplain[]>
  /** Stores the explanation (committed on its own) unless the row got one meanwhile; whether it was stored. */
  saveExplanation(predictionId: number, json: string): Promise<boolean>
  /** The explanation column's size in characters (SQL Server nvarchar(1000)); null: unbounded. */
  readonly explanationMaxChars: number | null
}
