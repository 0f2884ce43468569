import { evaluateReading, initialRuleState } from '../../../../src/lib/domain/rules/index.js'
import type {
  DeltaRule,
  EvaluateOptions,
  Evaluation,
  RuleState,
  SensorRules,
  ThresholdRule,
} from '../../../../src/lib/domain/rules/index.js'

export const SEC = 1000
export const MIN = 60 * SEC
export const HOUR = 60 * MIN
export const T0 = Date.UTC(2025, 0, 15, 12, 0, 0)

export const LIVE: EvaluateOptions = { staleAfterMs: 2 * HOUR, mode: 'live', alerts: false }
export const BACKFILL: EvaluateOptions = { staleAfterMs: 2 * HOUR, mode: 'backfill', alerts: false }
export const BACKFILL_ALERTS: EvaluateOptions = { staleAfterMs: 2 * HOUR, mode: 'backfill', alerts: true }

export function threshold(overrides: Partial<ThresholdRule> & Pick<ThresholdRule, 'id'>): ThresholdRule {
  return { name: null, condition: 'greater_than', min: 100, max: null, severity: 'critical', consecutiveReadings: 1, ...overrides }
}

export function deltaRule(overrides: Partial<DeltaRule> = {}): DeltaRule {
  return {
    id: 1,
    absDelta: null,
    relDelta: null,
    absSlope: null,
    relSlope: null,
    severity: 'warning',
    cooldownSec: 300,
    minDeltaAbs: null,
    minReadings: 5,
    maxGapSec: 600,
    ...overrides,
  }
}

export function sensorRules(overrides: Partial<SensorRules> = {}): SensorRules {
  return {
    sensorId: 7,
    deviceId: 3,
    sensorType: null,
    minReadingsForNormal: 10,
    resolveAfterReadings: 3,
    thresholds: [],
    delta: null,
    ...overrides,
  }
}

/** A sensor past warm-up whose previous reading was `prevValue` at T0 (unless overridden). */
export function normalState(overrides: Partial<RuleState> = {}): RuleState {
  return {
    ...initialRuleState(),
    operationalState: 'NORMAL',
    validReadingsCount: 10,
    readingsSeen: 10,
    prevValue: 20,
    prevTime: T0,
    ...overrides,
  }
}

/** Feeds readings one after the other, threading the returned state, as storage does. */
export function runSequence(
  rules: SensorRules,
  start: RuleState,
  readings: ReadonlyArray<{ value: number; time: number }>,
  options: EvaluateOptions = LIVE,
): Evaluation[] {
  const results: Evaluation[] = []
  let state = start
  for (const reading of readings) {
    const result = evaluateReading(rules, state, reading, options)
    results.push(result)
    state = result.state
  }
  return results
}

/** One reading per value, `stepMs` apart, the first one `stepMs` after `from`. */
export function series(values: readonly number[], from: number, stepMs = 10 * SEC): Array<{ value: number; time: number }> {
  return values.map((value, index) => ({ value, time: from + (index + 1) * stepMs }))
}

export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const entry of Object.values(value)) deepFreeze(entry)
  }
  return value
}

export function lastOf<T>(items: readonly T[]): T {
  const item = items[items.length - 1]
  if (item === undefined) throw new Error('empty sequence')
  return item
}

export function codes(result: Evaluation): string[] {
  return result.reasons.map((reason) => reason.code)
}

export function kinds(result: Evaluation): string[] {
  return result.effects.map((effect) => effect.kind)
}
