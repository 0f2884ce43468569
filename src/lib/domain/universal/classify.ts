import { alertSeverityRank } from './types.js'
import type {
  AlertAction,
  AlertRowInsert,
  AlertSeverity,
  ClassifyOptions,
  ConstraintName,
  DataPointClass,
  ExistingAlertChange,
  PointInput,
  PointOutcome,
  SeriesAlertPlan,
  SeriesClassification,
  StreamConfig,
  StreamRuleState,
  UniversalReason,
  UniversalReasonCode,
  ValueConstraints,
} from './types.js'

/** `normal` points in a row that resolve the active alert: DESIGN §4 step 6's `resolve_after_readings`. */
export const DEFAULT_RESOLVE_AFTER_POINTS = 3

const MS_PER_SECOND = 1000

export const NO_CONSTRAINTS_MESSAGE = 'No constraints configured'
export const NORMAL_MESSAGE = 'Value within all configured ranges'
export const NOT_FINITE_MESSAGE = 'Value is not a finite number'

/** A range check's verdict: the class, the rule broken and the original's reason text. */
interface RangeVerdict {
  classification: 'critical_violation' | 'warning_violation' | 'rejected'
  code: UniversalReasonCode
  rule: ConstraintName
  limit: number
  message: string
}

function verdict(classification: RangeVerdict['classification'], code: UniversalReasonCode, rule: ConstraintName, limit: number, message: string): RangeVerdict {
  return { classification, code, rule, limit, message }
}

/**
 * The range checks in the original's code order (reference §8.4): physical, critical zone, operational,
 * warning zone. Outside the physical range is `rejected` unless `storeOutOfPhysical` (then critical).
 * Returns null when the value is within every configured range.
 */
function checkRanges(c: ValueConstraints, v: number): RangeVerdict | null {
  const physical = c.storeOutOfPhysical ? 'critical_violation' : 'rejected'
  if (c.physicalMin !== null && v < c.physicalMin) return verdict(physical, 'PHYSICAL_LIMIT', 'physical_min', c.physicalMin, `Value ${v} below physical minimum ${c.physicalMin}`)
  if (c.physicalMax !== null && v > c.physicalMax) return verdict(physical, 'PHYSICAL_LIMIT', 'physical_max', c.physicalMax, `Value ${v} above physical maximum ${c.physicalMax}`)
  if (c.criticalMin !== null && v < c.criticalMin) return verdict('critical_violation', 'CRITICAL_ZONE', 'critical_min', c.criticalMin, `Value ${v} in critical zone (below ${c.criticalMin})`)
  if (c.criticalMax !== null && v > c.criticalMax) return verdict('critical_violation', 'CRITICAL_ZONE', 'critical_max', c.criticalMax, `Value ${v} in critical zone (above ${c.criticalMax})`)
  if (c.operationalMin !== null && v < c.operationalMin) return verdict('warning_violation', 'OPERATIONAL_LIMIT', 'operational_min', c.operationalMin, `Value ${v} below operational minimum ${c.operationalMin}`)
  if (c.operationalMax !== null && v > c.operationalMax) return verdict('warning_violation', 'OPERATIONAL_LIMIT', 'operational_max', c.operationalMax, `Value ${v} above operational maximum ${c.operationalMax}`)
  if (c.warningMin !== null && v < c.warningMin) return verdict('warning_violation', 'WARNING_ZONE', 'warning_min', c.warningMin, `Value ${v} in warning zone (below ${c.warningMin})`)
  if (c.warningMax !== null && v > c.warningMax) return verdict('warning_violation', 'WARNING_ZONE', 'warning_max', c.warningMax, `Value ${v} in warning zone (above ${c.warningMax})`)
  return null
}

interface DeltaVerdict {
  reason: UniversalReason
  message: string
}

/**
 * The change from the previous value (reference §8.4 step 6): `|Δ| > max_abs_delta`, else (previous not 0)
 * `|Δ / previous| * 100 > max_rel_delta`. A change below `noise_abs_threshold` is noise and never fires.
 */
function checkDelta(c: ValueConstraints, previous: number, prevTime: number, point: PointInput): DeltaVerdict | null {
  if (c.maxAbsDelta === null && c.maxRelDelta === null) return null
  const delta = point.value - previous
  const deltaAbs = Math.abs(delta)
  if (c.noiseAbsThreshold !== null && deltaAbs < c.noiseAbsThreshold) return null
  const dt = (point.time - prevTime) / MS_PER_SECOND
  if (c.maxAbsDelta !== null && deltaAbs > c.maxAbsDelta) {
    return {
      reason: { code: 'ABS_DELTA', rule: 'max_abs_delta', observed: point.value, limit: c.maxAbsDelta, previous, delta, dt },
      message: `Absolute delta ${deltaAbs.toFixed(2)} exceeds threshold ${c.maxAbsDelta}`,
    }
  }
  if (c.maxRelDelta !== null && previous !== 0) {
    const deltaPercent = Math.abs(delta / previous) * 100
    if (deltaPercent > c.maxRelDelta) {
      return {
        reason: { code: 'REL_DELTA', rule: 'max_rel_delta', observed: point.value, limit: c.maxRelDelta, previous, delta, deltaPercent, dt },
        message: `Relative delta ${deltaPercent.toFixed(2)}% exceeds threshold ${c.maxRelDelta}%`,
      }
    }
  }
  return null
}

function severityOf(classification: DataPointClass): AlertSeverity {
  return classification === 'critical_violation' ? 'CRITICAL' : 'WARNING'
}

function rangeReason(v: RangeVerdict, value: number): UniversalReason {
  return { code: v.code, rule: v.rule, observed: value, limit: v.limit }
}

function outcome(
  classification: DataPointClass,
  reasons: UniversalReason[],
  message: string,
  late: boolean,
  config: StreamConfig,
  alertActions: AlertAction[] = [],
): PointOutcome {
  return {
    stored: classification !== 'rejected',
    classification,
    reasons,
    message,
    late,
    publishToMl: classification === 'normal' && config.enableMlPrediction,
    alertActions,
  }
}

/**
 * A late point (older than the series' last evaluated one): judged on its own, with `LATE_POINT` first.
 * Ranges as live; never an anomaly (the state's previous value is a later point, not the one before it
 * in time). No state moves and no alert is opened, updated, escalated or resolved (DESIGN §4 late readings).
 */
function judgeLate(config: StreamConfig, point: PointInput): PointOutcome {
  const reasons: UniversalReason[] = [{ code: 'LATE_POINT' }]
  const c = config.constraints
  if (c === null) {
    reasons.push({ code: 'NO_CONSTRAINTS' })
    return outcome('normal', reasons, NO_CONSTRAINTS_MESSAGE, true, config)
  }
  const range = checkRanges(c, point.value)
  if (range !== null) {
    reasons.push(rangeReason(range, point.value))
    return outcome(range.classification, reasons, range.message, true, config)
  }
  reasons.push({ code: 'NORMAL' })
  return outcome('normal', reasons, NORMAL_MESSAGE, true, config)
}

function cloneState(s: StreamRuleState): StreamRuleState {
  return { ...s, activeAlert: s.activeAlert === null ? null : { ...s.activeAlert } }
}

/**
 * One active alert per series (DESIGN §4 step 4, applied to streams by §5), after
 * `consecutive_violations_required` violations in a row:
 * - none active: open (inside the cooldown: nothing, `ALERT_COOLDOWN`);
 * - the same severity active: update it in place;
 * - a higher severity: resolve the active one (`escalated`) and open the new one; inside the cooldown
 *   the active row is updated in place with the higher severity instead, so no new alert row appears;
 * - a lower severity while a higher one is active: leave it.
 * The cooldown runs from the data time of the last alert row opened, and outlives that alert's resolution
 * (so a flapping series does not open a row per flap).
 */
function applyAlert(
  s: StreamRuleState,
  c: ValueConstraints,
  range: RangeVerdict,
  time: number,
  value: number,
  reasons: UniversalReason[],
): AlertAction[] {
  const required = Math.max(1, c.consecutiveViolationsRequired)
  if (s.consecutiveViolations < required) {
    reasons.push({ code: 'VIOLATION_PENDING', count: s.consecutiveViolations, required })
    return []
  }
  const severity = severityOf(range.classification)
  const fields = { severity, value, thresholdViolated: range.rule, message: range.message, time }
  const inCooldown = s.lastAlertAt !== null && time - s.lastAlertAt < c.cooldownSeconds * MS_PER_SECOND
  const active = s.activeAlert
  const open = (): AlertAction => {
    s.activeAlert = { severity, openedAt: time }
    s.lastAlertAt = time
    return { kind: 'open', ...fields }
  }
  if (active === null) {
    if (inCooldown) {
      reasons.push({ code: 'ALERT_COOLDOWN' })
      return []
    }
    return [open()]
  }
  const rankDiff = alertSeverityRank(severity) - alertSeverityRank(active.severity)
  if (rankDiff < 0) return []
  if (rankDiff > 0 && !inCooldown) return [{ kind: 'resolve', time, reason: 'escalated' }, open()]
  if (rankDiff > 0) {
    reasons.push({ code: 'ALERT_COOLDOWN' })
    active.severity = severity
  }
  return [{ kind: 'update', ...fields }]
}

/**
 * Classifies a batch of points of ONE series (DESIGN §5, reference §8.4) against its config and stored
 * state. Points are evaluated in time order (a stable sort of the input; equal times keep the input order
 * and are not late); outcomes come back in the input order.
 *
 * Per point: not finite -> `rejected`; older than the last evaluated point -> late (judged alone, see
 * `judgeLate`); ranges: physical (outside: `rejected`, not stored and moving nothing, unless
 * `store_out_of_physical`: `critical_violation`), critical zone -> `critical_violation`, operational, then
 * warning zone -> `warning_violation`; then the delta from the previous value -> `anomaly_detected`; else
 * `normal`. Range violations count toward `consecutive_violations_required` and feed the one active alert
 * (see `applyAlert`); anomalies open no alert (the original's `should_alert`) but, like violations, break
 * the clean streak; `resolveAfterPoints` (default 3) `normal` points in a row resolve the active alert.
 * Range violations do not move the previous value (reference §8.4); anomalies and normal points do.
 *
 * Pure: the input state is never mutated. `mode: 'backfill'` without `alerts` classifies exactly as live
 * would (deltas against the previous point of the batch) but returns the input state unchanged and no
 * alert actions; so does a config with `enableAlerting` false for alerts (the state still moves).
 */
export function classifyPoints(
  config: StreamConfig,
  state: StreamRuleState,
  points: readonly PointInput[],
  options: ClassifyOptions,
): SeriesClassification {
  const order = points.map((_, i) => i)
  order.sort((a, b) => (points[a] as PointInput).time - (points[b] as PointInput).time)
  const frozen = options.mode === 'backfill' && !options.alerts
  const alerting = config.enableAlerting && !frozen
  const resolveAfter = options.resolveAfterPoints ?? DEFAULT_RESOLVE_AFTER_POINTS
  const s = cloneState(state)
  let moved = false
  const outcomes = new Array<PointOutcome>(points.length)
  const actions: AlertAction[] = []

  for (const index of order) {
    const point = points[index] as PointInput
    // -0 would come back from JSON (state, reasons) as 0, so it never enters them.
    const value = point.value === 0 ? 0 : point.value
    const time = point.time
    if (!Number.isFinite(value) || !Number.isFinite(time)) {
      outcomes[index] = outcome('rejected', [{ code: 'VALUE_NOT_FINITE' }], NOT_FINITE_MESSAGE, false, config)
      continue
    }
    if (s.lastTime !== null && time < s.lastTime) {
      outcomes[index] = judgeLate(config, { value, time })
      continue
    }
    const c = config.constraints
    const range = c === null ? null : checkRanges(c, value)
    if (range !== null && range.classification === 'rejected') {
      // Not stored, so it is no point of the series: nothing moves.
      outcomes[index] = outcome('rejected', [rangeReason(range, value)], range.message, false, config)
      continue
    }
    moved = true
    s.lastTime = time
    if (c !== null && range !== null) {
      s.consecutiveViolations += 1
      s.cleanStreak = 0
      const reasons = [rangeReason(range, value)]
      const pointActions = alerting ? applyAlert(s, c, range, time, value, reasons) : []
      actions.push(...pointActions)
      outcomes[index] = outcome(range.classification, reasons, range.message, false, config, pointActions)
      continue
    }
    s.consecutiveViolations = 0
    const delta = c === null || s.prevValue === null || s.prevTime === null ? null : checkDelta(c, s.prevValue, s.prevTime, { value, time })
    s.prevValue = value
    s.prevTime = time
    if (delta !== null) {
      s.cleanStreak = 0
      outcomes[index] = outcome('anomaly_detected', [delta.reason], delta.message, false, config)
      continue
    }
    s.cleanStreak += 1
    const reasons: UniversalReason[] = [{ code: c === null ? 'NO_CONSTRAINTS' : 'NORMAL' }]
    const pointActions: AlertAction[] = []
    if (alerting && resolveAfter > 0 && s.cleanStreak >= resolveAfter && s.activeAlert !== null) {
      pointActions.push({ kind: 'resolve', time, reason: 'auto_resolved' })
      s.activeAlert = null
    }
    actions.push(...pointActions)
    outcomes[index] = outcome('normal', reasons, c === null ? NO_CONSTRAINTS_MESSAGE : NORMAL_MESSAGE, false, config, pointActions)
  }

  const changed = moved && !frozen
  return { outcomes, state: changed ? s : state, stateChanged: changed, alertPlan: planAlerts(actions) }
}

/**
 * Collapses one series' alert actions (in order) into its net effect on `stream_alerts`: changes to the
 * row active before the batch, and new rows (an alert opened and resolved within the batch is inserted
 * already resolved). At most the last insert is active.
 */
export function planAlerts(actions: readonly AlertAction[]): SeriesAlertPlan {
  let existing: ExistingAlertChange | null = null
  const inserts: AlertRowInsert[] = []
  let current: AlertRowInsert | null = null
  for (const action of actions) {
    switch (action.kind) {
      case 'open':
        current = {
          severity: action.severity,
          value: action.value,
          thresholdViolated: action.thresholdViolated,
          message: action.message,
          triggeredAt: action.time,
          resolvedAt: null,
          resolutionReason: null,
          isActive: true,
        }
        inserts.push(current)
        break
      case 'update':
        if (current !== null) {
          current.severity = action.severity
          current.value = action.value
          current.thresholdViolated = action.thresholdViolated
          current.message = action.message
        } else {
          existing ??= { update: null, resolve: null }
          existing.update = { severity: action.severity, value: action.value, thresholdViolated: action.thresholdViolated, message: action.message, time: action.time }
        }
        break
      case 'resolve':
        if (current !== null) {
          current.resolvedAt = action.time
          current.resolutionReason = action.reason
          current.isActive = false
          current = null
        } else {
          existing ??= { update: null, resolve: null }
          existing.resolve = { time: action.time, reason: action.reason }
        }
        break
    }
  }
  return { existing, inserts }
}
