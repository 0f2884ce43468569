/**
 * Types of the IoT rules engine (DESIGN §4). Everything here is plain, JSON-able data: the rule state
 * is persisted per sensor in `sensor_rule_state`, reasons are stored with every reading, and effects
 * are written by storage in the same transaction as the reading.
 */

export const SEVERITIES = ['info', 'warning', 'critical'] as const
export type Severity = (typeof SEVERITIES)[number]

export const CONDITIONS = ['greater_than', 'less_than', 'equal_to', 'out_of_range'] as const
export type Condition = (typeof CONDITIONS)[number]

export const OPERATIONAL_STATES = ['INITIALIZING', 'NORMAL', 'WARNING', 'ALERT', 'STALE'] as const
export type OperationalState = (typeof OPERATIONAL_STATES)[number]

export const READING_CLASSES = ['ALERT', 'WARNING', 'ML_PREDICTION'] as const
export type ReadingClass = (typeof READING_CLASSES)[number]

const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 } as const satisfies Record<Severity, number>

/** Orders severities: `info` 0 < `warning` 1 < `critical` 2. */
export function severityRank(severity: Severity): number {
  return SEVERITY_RANK[severity]
}

/** Narrows an unknown value (a database column, a config file field) to a {@link Severity}. */
export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'string' && (SEVERITIES as readonly string[]).includes(value)
}

/** Narrows an unknown value to a {@link Condition}. */
export function isCondition(value: unknown): value is Condition {
  return typeof value === 'string' && (CONDITIONS as readonly string[]).includes(value)
}

/** Narrows an unknown value to an {@link OperationalState}. */
export function isOperationalState(value: unknown): value is OperationalState {
  return typeof value === 'string' && (OPERATIONAL_STATES as readonly string[]).includes(value)
}

/** One active `alert_thresholds` row. */
export interface ThresholdRule {
  id: number
  name: string | null
  condition: Condition
  min: number | null
  max: number | null
  severity: Severity
  /** Violations in a row needed to fire; values below 1 act as 1. */
  consecutiveReadings: number
}

/** The sensor's `delta_thresholds` row. */
export interface DeltaRule {
  id: number
  absDelta: number | null
  relDelta: number | null
  absSlope: number | null
  relSlope: number | null
  severity: Severity
  cooldownSec: number
  minDeltaAbs: number | null
  minReadings: number
  maxGapSec: number
}

export const DELTA_RULE_DEFAULTS = {
  cooldownSec: 300,
  minReadings: 5,
  maxGapSec: 600,
} as const satisfies Partial<DeltaRule>

export const SENSOR_RULES_DEFAULTS = {
  minReadingsForNormal: 10,
  resolveAfterReadings: 3,
} as const satisfies Partial<SensorRules>

export const THRESHOLD_DEFAULTS = {
  consecutiveReadings: 1,
} as const satisfies Partial<ThresholdRule>

/** Everything the engine needs to know about one sensor's configuration. */
export interface SensorRules {
  sensorId: number
  deviceId: number
  sensorType: string | null
  minReadingsForNormal: number
  /** Clean readings in a row that resolve the active alert and delta spike; 0 disables auto-resolve. */
  resolveAfterReadings: number
  thresholds: readonly ThresholdRule[]
  delta: DeltaRule | null
}

export interface ActiveAlert {
  severity: Severity
  thresholdId: number | null
}

/** Per-sensor rule state, one `sensor_rule_state` row. Plain JSON: no Dates, no Maps, no undefined. */
export interface RuleState {
  operationalState: OperationalState
  /** Warm-up count while INITIALIZING. */
  validReadingsCount: number
  /** Readings since the last warm-up start. */
  readingsSeen: number
  /** Threshold id (as a string key) -> violations in a row; absent means 0. */
  consecutive: Record<string, number>
  cleanStreak: number
  lastDeltaSpikeAt: number | null
  /** The last evaluated reading: the base of the next delta; a reading older than `prevTime` is late. */
  prevValue: number | null
  prevTime: number | null
  activeAlert: ActiveAlert | null
  /** Whether this sensor's DELTA_SPIKE event is active: set by a spike, cleared by the clean streak. */
  activeDeltaSpike: boolean
  lastAlertNotificationAt: number | null
  stateChangedAt: number | null
}

/** The state of a sensor that has never sent a reading. */
export function initialRuleState(): RuleState {
  return {
    operationalState: 'INITIALIZING',
    validReadingsCount: 0,
    readingsSeen: 0,
    consecutive: {},
    cleanStreak: 0,
    lastDeltaSpikeAt: null,
    prevValue: null,
    prevTime: null,
    activeAlert: null,
    activeDeltaSpike: false,
    lastAlertNotificationAt: null,
    stateChangedAt: null,
  }
}

/**
 * Reason codes stored with a reading.
 * - `DELTA_SPIKE`: a spike that opened or updated the DELTA_SPIKE event and notified.
 * - `DELTA_SPIKE_COOLDOWN`: a spike inside the cooldown while the event is active: the event is
 *   updated, nobody is notified again.
 * - `DELTA_SPIKE_SUPPRESSED`: a spike inside the cooldown with no active event (the legacy
 *   "Delta spike en cooldown"): class ML_PREDICTION, nothing written.
 * - `LATE_READING`: older than the sensor's last evaluated reading; judged alone, moves no state.
 */
export type ReasonCode =
  | 'STALE_RESTART'
  | 'WARMUP'
  | 'THRESHOLD'
  | 'THRESHOLD_PENDING'
  | 'DELTA_SPIKE'
  | 'DELTA_SPIKE_COOLDOWN'
  | 'DELTA_SPIKE_SUPPRESSED'
  | 'LATE_READING'
  | 'CLEAN'

/** Why a reading got its class; stored with the reading. Times are not repeated here: `dt` is in seconds. */
export interface Reason {
  code: ReasonCode
  rule?: string
  thresholdId?: number
  observed?: number
  limit?: number
  limitMax?: number
  previous?: number
  dt?: number
  severity?: Severity
  count?: number
  required?: number
}

/** Payload of the `ml_events` DELTA_SPIKE row; snake case because a legacy dashboard reads it. */
export interface DeltaSpikePayload {
  delta_abs: number
  delta_rel: number | null
  slope_abs: number | null
  slope_rel: number | null
  dt_seconds: number
  last_value: number
  triggered_thresholds: string[]
}

export type DeltaThresholdName = 'abs_delta' | 'rel_delta' | 'abs_slope' | 'rel_slope'

export interface OpenAlertEffect {
  kind: 'open_alert'
  severity: Severity
  thresholdId: number
  value: number
  time: number
}

export interface UpdateAlertEffect {
  kind: 'update_alert'
  severity: Severity
  thresholdId: number
  value: number
  time: number
}

export interface ResolveAlertEffect {
  kind: 'resolve_alert'
  time: number
  reason: 'escalated' | 'auto_resolved'
}

export interface NotifyEffect {
  kind: 'notify'
  source: 'alert' | 'ml_event'
  severity: Severity
  value: number
  time: number
  title: string
  message: string
}

/**
 * Open the sensor's DELTA_SPIKE event, or update the active one. `title` and `message` are the event's
 * own (reference §6.8), decided here so that storage writes them as they are.
 */
export interface UpsertDeltaSpikeEffect {
  kind: 'upsert_delta_spike'
  severity: Severity
  time: number
  value: number
  title: string
  message: string
  payload: DeltaSpikePayload
}

export interface ResolveDeltaSpikeEffect {
  kind: 'resolve_delta_spike'
  time: number
}

export interface StateChangeEffect {
  kind: 'state_change'
  from: OperationalState
  to: OperationalState
  time: number
}

/**
 * What storage must write in the same transaction as the reading, in array order (a `notify` after an
 * `open_alert` refers to that alert; a `resolve_alert` before an `open_alert` frees the one active slot).
 */
export type Effect =
  | OpenAlertEffect
  | UpdateAlertEffect
  | ResolveAlertEffect
  | NotifyEffect
  | UpsertDeltaSpikeEffect
  | ResolveDeltaSpikeEffect
  | StateChangeEffect

export interface ReadingInput {
  value: number
  /** The reading's time (device time, else ingest time), epoch milliseconds. */
  time: number
}

export interface EvaluateOptions {
  staleAfterMs: number
  mode: 'live' | 'backfill'
  /** Backfill with `--alerts`: behave like live. Ignored in live mode. */
  alerts: boolean
  /** Minimum data-time gap between two notifications of the same active alert; default 5 min. */
  alertRenotifyMs?: number
}

export interface Evaluation {
  state: RuleState
  classification: ReadingClass
  reasons: Reason[]
  effects: Effect[]
}
