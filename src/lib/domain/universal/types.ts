/**
 * Types of the universal classifier (DESIGN §5, reference §8.3–§8.4). Plain JSON-able data: the state is
 * stored per series in `stream_rule_state.state`, reasons go into `data_points.domain_metadata`, and the
 * alert plan is written by storage in the same transaction as the points.
 */
import type { SeriesKey } from './series-id.js'

export const DATA_POINT_CLASSES = ['critical_violation', 'warning_violation', 'anomaly_detected', 'normal', 'rejected'] as const
export type DataPointClass = (typeof DATA_POINT_CLASSES)[number]

/** `stream_alerts.severity` values (reference §8.7). Anomalies open no alert (the original's `should_alert`). */
export const ALERT_SEVERITIES = ['WARNING', 'CRITICAL'] as const
export type AlertSeverity = (typeof ALERT_SEVERITIES)[number]

const SEVERITY_RANK = { WARNING: 1, CRITICAL: 2 } as const satisfies Record<AlertSeverity, number>

/** Orders alert severities: WARNING 1 < CRITICAL 2. */
export function alertSeverityRank(severity: AlertSeverity): number {
  return SEVERITY_RANK[severity]
}

export function isAlertSeverity(value: unknown): value is AlertSeverity {
  return typeof value === 'string' && (ALERT_SEVERITIES as readonly string[]).includes(value)
}

/** One `value_constraints` row (reference §8.3) plus our `store_out_of_physical`. Null bounds are ignored. */
export interface ValueConstraints {
  physicalMin: number | null
  physicalMax: number | null
  operationalMin: number | null
  operationalMax: number | null
  warningMin: number | null
  warningMax: number | null
  criticalMin: number | null
  criticalMax: number | null
  /** `|v - previous| > maxAbsDelta` is an anomaly. */
  maxAbsDelta: number | null
  /** Percent: `|v - previous| / |previous| * 100 > maxRelDelta` is an anomaly (skipped when previous is 0). */
  maxRelDelta: number | null
  /** A change below this (absolute) is noise: no delta anomaly. */
  noiseAbsThreshold: number | null
  /** Loaded and kept; not used by the classifier (as in the original). */
  zScoreThreshold: number
  /** Violations in a row before an alert opens; values below 1 act as 1. */
  consecutiveViolationsRequired: number
  /** No new alert row (open or escalation) within this many seconds of data time after the last one. */
  cooldownSeconds: number
  /** A value outside the physical range is stored as `critical_violation` instead of rejected. */
  storeOutOfPhysical: boolean
}

/** Where a config came from: a `stream_configs` row, the built-in table (reference §8.5), or the fallback. */
export type StreamConfigSource = 'database' | 'built_in' | 'default'

export interface StreamConfig {
  seriesId: string
  key: SeriesKey
  displayName: string | null
  unit: string | null
  enableMlPrediction: boolean
  enableAlerting: boolean
  domainMetadata: Record<string, unknown>
  /** Null: no constraints, every point is `normal` ("No constraints configured"). */
  constraints: ValueConstraints | null
  source: StreamConfigSource
}

/** The one active `stream_alerts` row of a series, as the state remembers it. */
export interface ActiveStreamAlert {
  severity: AlertSeverity
  /** Data time (epoch ms) it was opened. */
  openedAt: number
}

/**
 * Per-series state, one `stream_rule_state` row (key: the series id). Plain JSON: no Dates, no undefined.
 * Times are the points' own times, epoch milliseconds.
 */
export interface StreamRuleState {
  /** The last evaluated (in time order) point's time; a point older than this is late. */
  lastTime: number | null
  /**
   * The base of the next delta: the last point that passed the range checks (normal or anomaly). Range
   * violations do not move it (reference §8.4), so a return from a violation is not an anomaly.
   */
  prevValue: number | null
  prevTime: number | null
  /** Warning or critical violations in a row (any severity). */
  consecutiveViolations: number
  /** `normal` points in a row since the last violation or anomaly. */
  cleanStreak: number
  activeAlert: ActiveStreamAlert | null
  /** Data time of the last alert row opened (an open or an escalation): the cooldown's start. */
  lastAlertAt: number | null
}

export function initialStreamRuleState(): StreamRuleState {
  return { lastTime: null, prevValue: null, prevTime: null, consecutiveViolations: 0, cleanStreak: 0, activeAlert: null, lastAlertAt: null }
}

/** The constraint a range reason names (`threshold_violated` of an alert). */
export type ConstraintName =
  | 'physical_min'
  | 'physical_max'
  | 'critical_min'
  | 'critical_max'
  | 'operational_min'
  | 'operational_max'
  | 'warning_min'
  | 'warning_max'
  | 'max_abs_delta'
  | 'max_rel_delta'

/**
 * Reason codes stored with a point:
 * - `NO_CONSTRAINTS`: the series has no constraints; `normal`.
 * - `VALUE_NOT_FINITE`: rejected (parsers refuse these first; the classifier does not trust them).
 * - `PHYSICAL_LIMIT`, `CRITICAL_ZONE`, `OPERATIONAL_LIMIT`, `WARNING_ZONE`: the range the value is out of.
 * - `ABS_DELTA`, `REL_DELTA`: the change from the previous value that made it an anomaly.
 * - `NORMAL`: within every configured range.
 * - `LATE_POINT`: older than the series' last evaluated point; judged alone, moves no state.
 * - `VIOLATION_PENDING`: a violation that has not yet reached `consecutive_violations_required`.
 * - `ALERT_COOLDOWN`: an alert row would have been opened (or escalated) inside the cooldown.
 */
export type UniversalReasonCode =
  | 'NO_CONSTRAINTS'
  | 'VALUE_NOT_FINITE'
  | 'PHYSICAL_LIMIT'
  | 'CRITICAL_ZONE'
  | 'OPERATIONAL_LIMIT'
  | 'WARNING_ZONE'
  | 'ABS_DELTA'
  | 'REL_DELTA'
  | 'NORMAL'
  | 'LATE_POINT'
  | 'VIOLATION_PENDING'
  | 'ALERT_COOLDOWN'

/** Why a point got its class. `deltaPercent` is in percent; `dt` in seconds. */
export interface UniversalReason {
  code: UniversalReasonCode
  rule?: ConstraintName
  observed?: number
  limit?: number
  previous?: number
  delta?: number
  deltaPercent?: number
  dt?: number
  count?: number
  required?: number
}

export interface PointInput {
  value: number
  /** The point's time, epoch milliseconds. */
  time: number
}

export interface ClassifyOptions {
  /** `backfill` without `alerts`: classified as live would, but no state moves and no alert is touched. */
  mode: 'live' | 'backfill'
  alerts: boolean
  /**
   * `normal` points in a row that resolve the active alert (DESIGN §4 step 6, whose escalation rule §5
   * applies to streams; §14 "alerts auto-resolve"); 0 disables auto-resolve. Default 3.
   */
  resolveAfterPoints?: number
}

/** Opens the series' one active alert. `message` is the classifier's reason text (reference §8.7). */
export interface OpenAlertAction {
  kind: 'open'
  severity: AlertSeverity
  value: number
  thresholdViolated: ConstraintName
  message: string
  time: number
}

/** Updates the active alert in place (value, constraint, message, and severity when it rises in the cooldown). */
export interface UpdateAlertAction {
  kind: 'update'
  severity: AlertSeverity
  value: number
  thresholdViolated: ConstraintName
  message: string
  time: number
}

/** Resolves the active alert: before an escalation's open, or after the clean streak. */
export interface ResolveAlertAction {
  kind: 'resolve'
  time: number
  reason: 'escalated' | 'auto_resolved'
}

export type AlertAction = OpenAlertAction | UpdateAlertAction | ResolveAlertAction

/** The classifier's verdict on one point. */
export interface PointOutcome {
  /** False only for `rejected`. */
  stored: boolean
  classification: DataPointClass
  reasons: UniversalReason[]
  /** The original's reason text ("Value 35 in critical zone (below 40)"); the answer's `reason` for a rejected point. */
  message: string
  late: boolean
  /** `normal` and the stream's `enable_ml_prediction`: the point goes to the ML stream after the commit. */
  publishToMl: boolean
  /** What this point did to the series' alert, in order (a `resolve` before an `open` frees the one active slot). */
  alertActions: AlertAction[]
}

/** A new `stream_alerts` row. Resolved within the same batch when `resolvedAt` is set (then `isActive` is false). */
export interface AlertRowInsert {
  severity: AlertSeverity
  value: number
  thresholdViolated: ConstraintName
  message: string
  triggeredAt: number
  resolvedAt: number | null
  resolutionReason: 'escalated' | 'auto_resolved' | null
  isActive: boolean
}

/** Changes to the alert that was active before the batch (`WHERE is_active` for the series). */
export interface ExistingAlertChange {
  /** The last in-place update, if any. */
  update: Omit<UpdateAlertAction, 'kind'> | null
  /** Set when the batch resolved it. */
  resolve: Omit<ResolveAlertAction, 'kind'> | null
}

/**
 * The net effect of a batch on one series' `stream_alerts`, for a set-based writer: apply `existing` to
 * the active row (update first, then resolve), then insert `inserts` in order (at most the last is active).
 */
export interface SeriesAlertPlan {
  existing: ExistingAlertChange | null
  inserts: AlertRowInsert[]
}

/** The result of {@link classifyPoints}: outcomes in the input order, the state to store, the alert plan. */
export interface SeriesClassification {
  outcomes: PointOutcome[]
  /** The state to upsert into `stream_rule_state`; the input state object when nothing moved. */
  state: StreamRuleState
  /** Whether `state` differs from the input (false: no upsert needed). */
  stateChanged: boolean
  alertPlan: SeriesAlertPlan
}
