import { deltaSpikeMessage, deltaSpikeTitle } from './delta-spike-text.js'
import { deltaNoiseFloorFor } from './physical-limits.js'
import { severityRank } from './types.js'
import type {
  DeltaRule,
  DeltaSpikePayload,
  DeltaThresholdName,
  Effect,
  EvaluateOptions,
  Evaluation,
  OperationalState,
  ReadingClass,
  ReadingInput,
  Reason,
  RuleState,
  SensorRules,
  ThresholdRule,
  UpsertDeltaSpikeEffect,
} from './types.js'

export const DEFAULT_ALERT_RENOTIFY_MS = 5 * 60 * 1000
export const DEFAULT_STALE_AFTER_MS = 2 * 60 * 60 * 1000

// Below this the previous value is treated as zero and a relative change is meaningless.
const NEAR_ZERO = 1e-6
const MS_PER_SECOND = 1000

/** Shared, frozen: the no-violation counts and the clean reason (nearly every reading) allocate nothing. */
const NO_COUNTS: Record<string, number> = Object.freeze({})
export const CLEAN_REASON: Reason = Object.freeze({ code: 'CLEAN' })

/** Deep copy of a rule state; the state is plain data, so copying its two nested objects is enough. */
export function cloneRuleState(state: RuleState): RuleState {
  return {
    ...state,
    consecutive: { ...state.consecutive },
    activeAlert: state.activeAlert === null ? null : { ...state.activeAlert },
  }
}

/** Whether `value` violates `threshold`; a threshold whose needed bound is null never fires. */
export function violatesThreshold(threshold: ThresholdRule, value: number): boolean {
  const { min, max } = threshold
  switch (threshold.condition) {
    case 'greater_than':
      return min !== null && value > min
    case 'less_than':
      return min !== null && value < min
    case 'equal_to':
      return min !== null && value === min
    case 'out_of_range':
      return (min !== null && value < min) || (max !== null && value > max)
  }
}

function requiredCount(threshold: ThresholdRule): number {
  return Math.max(1, threshold.consecutiveReadings)
}

function thresholdLabel(threshold: ThresholdRule): string {
  return threshold.name ?? threshold.condition
}

/** Picks the fired threshold that wins: highest severity, then lowest id. */
function pickWinner(fired: readonly ThresholdRule[]): ThresholdRule | undefined {
  let winner: ThresholdRule | undefined
  for (const candidate of fired) {
    if (
      winner === undefined ||
      severityRank(candidate.severity) > severityRank(winner.severity) ||
      (candidate.severity === winner.severity && candidate.id < winner.id)
    ) {
      winner = candidate
    }
  }
  return winner
}

function thresholdReason(threshold: ThresholdRule, value: number): Reason {
  const reason: Reason = {
    code: 'THRESHOLD',
    rule: thresholdLabel(threshold),
    thresholdId: threshold.id,
    observed: value,
    severity: threshold.severity,
  }
  if (threshold.min !== null) reason.limit = threshold.min
  if (threshold.condition === 'out_of_range' && threshold.max !== null) reason.limitMax = threshold.max
  return reason
}

function pendingReason(threshold: ThresholdRule, value: number, count: number, required: number): Reason {
  return { code: 'THRESHOLD_PENDING', rule: thresholdLabel(threshold), thresholdId: threshold.id, observed: value, severity: threshold.severity, count, required }
}

function boundText(bound: number | null, missing: string): string {
  return bound === null ? missing : String(bound)
}

function alertNotification(rules: SensorRules, threshold: ThresholdRule, value: number): { title: string; message: string } {
  return {
    title: `ALERT ${threshold.severity}: sensor ${rules.sensorId}`,
    message: `value ${value} violates ${thresholdLabel(threshold)} [${boundText(threshold.min, '-inf')}, ${boundText(threshold.max, 'inf')}]`,
  }
}

export interface DeltaMeasure {
  deltaAbs: number
  deltaRel: number | null
  dtSeconds: number
  slopeAbs: number | null
  slopeRel: number | null
  triggered: DeltaThresholdName[]
}

/** Measures the change from the previous reading and lists the delta thresholds it reaches (none when it is noise). */
export function measureDelta(
  rule: DeltaRule,
  sensorType: string | null,
  previous: { value: number; time: number },
  reading: ReadingInput,
): DeltaMeasure {
  const deltaAbs = Math.abs(reading.value - previous.value)
  const deltaRel = Math.abs(previous.value) < NEAR_ZERO ? null : deltaAbs / Math.abs(previous.value)
  const dtSeconds = (reading.time - previous.time) / MS_PER_SECOND
  // Two readings at the same instant have no meaningful rate of change (the legacy 1 ms stand-in made any step infinite).
  const slopeAbs = dtSeconds > 0 ? deltaAbs / dtSeconds : null
  const slopeRel = dtSeconds > 0 && deltaRel !== null ? deltaRel / dtSeconds : null
  const measure: DeltaMeasure = { deltaAbs, deltaRel, dtSeconds, slopeAbs, slopeRel, triggered: [] }

  const noise = deltaNoiseFloorFor(sensorType)
  if (deltaAbs < noise.abs && (deltaRel === null || deltaRel < noise.rel)) return measure
  if (rule.minDeltaAbs !== null && deltaAbs < rule.minDeltaAbs) return measure

  const reaches = (observed: number | null, limit: number | null): boolean =>
    observed !== null && limit !== null && observed >= limit
  if (reaches(deltaAbs, rule.absDelta)) measure.triggered.push('abs_delta')
  if (reaches(deltaRel, rule.relDelta)) measure.triggered.push('rel_delta')
  if (reaches(slopeAbs, rule.absSlope)) measure.triggered.push('abs_slope')
  if (reaches(slopeRel, rule.relSlope)) measure.triggered.push('rel_slope')
  return measure
}

function deltaObserved(measure: DeltaMeasure, name: DeltaThresholdName): number | null {
  switch (name) {
    case 'abs_delta':
      return measure.deltaAbs
    case 'rel_delta':
      return measure.deltaRel
    case 'abs_slope':
      return measure.slopeAbs
    case 'rel_slope':
      return measure.slopeRel
  }
}

function deltaLimit(rule: DeltaRule, name: DeltaThresholdName): number | null {
  switch (name) {
    case 'abs_delta':
      return rule.absDelta
    case 'rel_delta':
      return rule.relDelta
    case 'abs_slope':
      return rule.absSlope
    case 'rel_slope':
      return rule.relSlope
  }
}

function deltaReasons(
  code: 'DELTA_SPIKE' | 'DELTA_SPIKE_COOLDOWN' | 'DELTA_SPIKE_SUPPRESSED',
  rule: DeltaRule,
  measure: DeltaMeasure,
  previous: number,
): Reason[] {
  return measure.triggered.map((name) => {
    const reason: Reason = { code, rule: name, previous, dt: measure.dtSeconds, severity: rule.severity }
    const observed = deltaObserved(measure, name)
    const limit = deltaLimit(rule, name)
    if (observed !== null) reason.observed = observed
    if (limit !== null) reason.limit = limit
    return reason
  })
}

/** The event write for a spike; its title and message are also the notification's. */
function deltaSpikeEffect(rule: DeltaRule, measure: DeltaMeasure, previous: number, value: number, time: number): UpsertDeltaSpikeEffect {
  const payload: DeltaSpikePayload = {
    delta_abs: measure.deltaAbs,
    delta_rel: measure.deltaRel,
    slope_abs: measure.slopeAbs,
    slope_rel: measure.slopeRel,
    dt_seconds: measure.dtSeconds,
    last_value: previous,
    triggered_thresholds: [...measure.triggered],
  }
  return {
    kind: 'upsert_delta_spike',
    severity: rule.severity,
    time,
    value,
    title: deltaSpikeTitle(rule.severity, measure.triggered),
    message: deltaSpikeMessage({ value, previous, deltaAbs: measure.deltaAbs, dtSeconds: measure.dtSeconds, triggered: measure.triggered }),
    payload,
  }
}

/** The sensor state implied by the active alert: ALERT only while a critical one is open. */
function alertState(state: RuleState): OperationalState {
  return state.activeAlert?.severity === 'critical' ? 'ALERT' : 'WARNING'
}

/**
 * Classifies one reading of one sensor (DESIGN §4, steps 3–6) against the sensor's stored rule state.
 * Readings of a sensor are meant to be evaluated in time order, each with the state the previous call
 * returned. A reading older than the last evaluated one (`state.prevTime`; it arrived in a later
 * flush) is *late*: it is judged on its own and moves no state, see {@link classifyLate}. A reading at
 * exactly `prevTime` is not late: it is the next reading (a device sending two values in the same
 * instant, or the same instant resent under another dedup key) and is evaluated normally.
 *
 * Pure: the input state is never mutated; the returned state is a new object to persist, and the effects
 * are what storage must write in the same transaction, in order. In backfill mode without `alerts` the
 * reading is classified exactly as live would classify it, but the input state comes back unchanged and
 * there are no effects.
 */
export function evaluateReading(
  rules: SensorRules,
  state: RuleState,
  reading: ReadingInput,
  options: EvaluateOptions,
): Evaluation {
  const result = evaluateLive(rules, state, reading, options)
  if (options.mode === 'backfill' && !options.alerts) {
    return { state: cloneRuleState(state), classification: result.classification, reasons: result.reasons, effects: [] }
  }
  return result
}

/**
 * Like {@link evaluateReading}, but advances `state` itself instead of returning a copy: for a caller
 * that owns the state and evaluates many readings of one sensor in a row (a flush), one copy per
 * sensor instead of one per reading. Backfill without `alerts` still leaves the state untouched.
 */
export function evaluateReadingInPlace(rules: SensorRules, state: RuleState, reading: ReadingInput, options: EvaluateOptions): Evaluation {
  if (options.mode === 'backfill' && !options.alerts) return evaluateReading(rules, state, reading, options)
  return evaluateLive(rules, state, reading, options, true)
}

/** Moves the operational state, recording the change as an effect. */
function moveState(state: RuleState, effects: Effect[], time: number, to: OperationalState): void {
  if (state.operationalState === to) return
  effects.push({ kind: 'state_change', from: state.operationalState, to, time })
  state.operationalState = to
  state.stateChangedAt = time
}

/** Ends one in-order reading's evaluation. (Module functions, not closures: this runs once per reading.) */
function finishReading(state: RuleState, value: number, time: number, reasons: Reason[], effects: Effect[], classification: ReadingClass): Evaluation {
  state.prevValue = value
  state.prevTime = time
  state.readingsSeen += 1
  return { state, classification, reasons, effects }
}

/**
 * A late reading: older than the last evaluated one, so the state describes readings that come after
 * it in time. Its class is a snapshot judgement of the reading alone, with `LATE_READING` first:
 * - during warm-up: `ML_PREDICTION` with `WARMUP` (the count it would not have moved);
 * - a violated threshold counts as the first violation in a row (the violations around it in time are
 *   not known): one that needs a single violation fires, the winner as live picks it -> `ALERT` with
 *   `THRESHOLD`; one that needs more is `THRESHOLD_PENDING` (count 1) -> `ML_PREDICTION`;
 * - never `WARNING`: a delta needs the reading just before it in time, which the state does not hold
 *   (its previous value is a later reading);
 * - otherwise `ML_PREDICTION` with `CLEAN`.
 * The state comes back exactly as it was (no counters, clean streak, previous value, warm-up count or
 * operational state move) and there are no effects: no alert or event is opened, escalated, updated or
 * resolved and nobody is notified, so an alert reflects only readings in time order.
 */
function classifyLate(rules: SensorRules, state: RuleState, value: number): Evaluation {
  const reasons: Reason[] = [{ code: 'LATE_READING' }]
  const warmingUp = state.operationalState === 'INITIALIZING' || state.operationalState === 'STALE'
  if (warmingUp && rules.minReadingsForNormal > 0) {
    const count = state.operationalState === 'INITIALIZING' ? state.validReadingsCount : 0
    reasons.push({ code: 'WARMUP', count, required: rules.minReadingsForNormal })
    return { state, classification: 'ML_PREDICTION', reasons, effects: [] }
  }
  let fired: ThresholdRule[] | undefined
  let pending: Reason[] | undefined
  for (const threshold of rules.thresholds) {
    if (!violatesThreshold(threshold, value)) continue
    const required = requiredCount(threshold)
    if (required <= 1) (fired ??= []).push(threshold)
    else (pending ??= []).push(pendingReason(threshold, value, 1, required))
  }
  const winner = fired === undefined ? undefined : pickWinner(fired)
  if (winner !== undefined) {
    reasons.push(thresholdReason(winner, value))
    return { state, classification: 'ALERT', reasons, effects: [] }
  }
  if (pending !== undefined) reasons.push(...pending)
  else reasons.push(CLEAN_REASON)
  return { state, classification: 'ML_PREDICTION', reasons, effects: [] }
}

function evaluateLive(rules: SensorRules, input: RuleState, reading: ReadingInput, options: EvaluateOptions, inPlace = false): Evaluation {
  // -0 would come back from JSON (the state row, reasons, effects) as 0, so it never enters them.
  const value = reading.value === 0 ? 0 : reading.value
  const { time } = reading
  const state = inPlace ? input : cloneRuleState(input)
  if (state.prevTime !== null && time < state.prevTime) return classifyLate(rules, state, value)
  const reasons: Reason[] = []
  const effects: Effect[] = []

  // Staleness is derived from the data time, so nothing has to persist STALE for the restart to happen.
  const gapMs = state.prevTime === null ? null : time - state.prevTime
  if (state.operationalState === 'STALE' || (gapMs !== null && gapMs > options.staleAfterMs)) {
    effects.push({ kind: 'state_change', from: 'STALE', to: 'INITIALIZING', time })
    state.operationalState = 'INITIALIZING'
    state.stateChangedAt = time
    state.validReadingsCount = 0
    state.readingsSeen = 0
    state.consecutive = {}
    state.cleanStreak = 0
    const reason: Reason = { code: 'STALE_RESTART' }
    if (gapMs !== null) reason.dt = gapMs / MS_PER_SECOND
    if (state.prevValue !== null) reason.previous = state.prevValue
    reasons.push(reason)
  }

  if (state.operationalState === 'INITIALIZING') {
    const required = rules.minReadingsForNormal
    if (required > 0) {
      state.validReadingsCount += 1
      reasons.push({ code: 'WARMUP', count: state.validReadingsCount, required })
      if (state.validReadingsCount >= required) moveState(state, effects, time, 'NORMAL')
      return finishReading(state, value, time, reasons, effects, 'ML_PREDICTION')
    }
    moveState(state, effects, time, 'NORMAL')
  }

  // Thresholds: counts are rebuilt from the current rules so removed thresholds do not linger in the state.
  // (Allocated only on a violation: nearly every reading violates nothing.)
  let consecutive: Record<string, number> | undefined
  let fired: ThresholdRule[] | undefined
  let pending: Reason[] | undefined
  for (const threshold of rules.thresholds) {
    if (!violatesThreshold(threshold, value)) continue
    const key = String(threshold.id)
    const count = (state.consecutive[key] ?? 0) + 1
    ;(consecutive ??= {})[key] = count
    const required = requiredCount(threshold)
    if (count >= required) (fired ??= []).push(threshold)
    else (pending ??= []).push(pendingReason(threshold, value, count, required))
  }
  state.consecutive = consecutive ?? NO_COUNTS

  const winner = fired === undefined ? undefined : pickWinner(fired)
  if (winner !== undefined) {
    state.cleanStreak = 0
    reasons.push(thresholdReason(winner, value))
    applyAlert(rules, state, winner, { value, time }, options.alertRenotifyMs ?? DEFAULT_ALERT_RENOTIFY_MS, effects)
    moveState(state, effects, time, alertState(state))
    return finishReading(state, value, time, reasons, effects, 'ALERT')
  }

  const clean = pending === undefined
  if (pending !== undefined) {
    reasons.push(...pending)
    state.cleanStreak = 0
  }

  const delta = rules.delta
  if (
    delta !== null &&
    state.readingsSeen >= delta.minReadings &&
    state.prevValue !== null &&
    state.prevTime !== null &&
    time - state.prevTime <= delta.maxGapSec * MS_PER_SECOND
  ) {
    const previous = { value: state.prevValue, time: state.prevTime }
    const measure = measureDelta(delta, rules.sensorType, previous, { value, time })
    if (measure.triggered.length > 0) {
      state.cleanStreak = 0
      const inCooldown = state.lastDeltaSpikeAt !== null && time - state.lastDeltaSpikeAt < delta.cooldownSec * MS_PER_SECOND
      if (inCooldown && !state.activeDeltaSpike) {
        // The legacy answer inside the cooldown; the event the cooldown belongs to was already resolved,
        // and a spike is still no clean reading.
        reasons.push(...deltaReasons('DELTA_SPIKE_SUPPRESSED', delta, measure, previous.value))
        return finishReading(state, value, time, reasons, effects, 'ML_PREDICTION')
      }
      const event = deltaSpikeEffect(delta, measure, previous.value, value, time)
      effects.push(event)
      if (inCooldown) {
        // The active event follows the latest spike; nobody is notified again and the cooldown keeps
        // running from the spike that opened it.
        reasons.push(...deltaReasons('DELTA_SPIKE_COOLDOWN', delta, measure, previous.value))
      } else {
        reasons.push(...deltaReasons('DELTA_SPIKE', delta, measure, previous.value))
        effects.push({ kind: 'notify', source: 'ml_event', severity: delta.severity, value, time, title: event.title, message: event.message })
        state.lastDeltaSpikeAt = time
        state.activeDeltaSpike = true
      }
      moveState(state, effects, time, alertState(state))
      return finishReading(state, value, time, reasons, effects, 'WARNING')
    }
  }

  if (!clean) return finishReading(state, value, time, reasons, effects, 'ML_PREDICTION')

  reasons.push(CLEAN_REASON)
  state.cleanStreak += 1
  if (rules.resolveAfterReadings > 0 && state.cleanStreak >= rules.resolveAfterReadings) {
    if (state.activeAlert !== null) {
      effects.push({ kind: 'resolve_alert', time, reason: 'auto_resolved' })
      state.activeAlert = null
      state.lastAlertNotificationAt = null
    }
    if (state.activeDeltaSpike) {
      effects.push({ kind: 'resolve_delta_spike', time })
      state.activeDeltaSpike = false
    }
    moveState(state, effects, time, 'NORMAL')
  }
  return finishReading(state, value, time, reasons, effects, 'ML_PREDICTION')
}

/** One active alert per sensor: open, update in place, escalate, or leave a higher one alone. */
function applyAlert(
  rules: SensorRules,
  state: RuleState,
  winner: ThresholdRule,
  reading: ReadingInput,
  renotifyMs: number,
  effects: Effect[],
): void {
  const { value, time } = reading
  const active = state.activeAlert
  const notify = (): void => {
    effects.push({ kind: 'notify', source: 'alert', severity: winner.severity, value, time, ...alertNotification(rules, winner, value) })
    state.lastAlertNotificationAt = time
  }
  const open = (): void => {
    effects.push({ kind: 'open_alert', severity: winner.severity, thresholdId: winner.id, value, time })
    state.activeAlert = { severity: winner.severity, thresholdId: winner.id }
    notify()
  }

  if (active === null) {
    open()
    return
  }
  const rankDiff = severityRank(winner.severity) - severityRank(active.severity)
  if (rankDiff > 0) {
    effects.push({ kind: 'resolve_alert', time, reason: 'escalated' })
    open()
  } else if (rankDiff === 0) {
    effects.push({ kind: 'update_alert', severity: winner.severity, thresholdId: winner.id, value, time })
    state.activeAlert = { severity: winner.severity, thresholdId: winner.id }
    const last = state.lastAlertNotificationAt
    if (last === null || time - last >= renotifyMs) notify()
  }
  // rankDiff < 0: a lower severity while a higher alert is active leaves the higher one untouched.
}
