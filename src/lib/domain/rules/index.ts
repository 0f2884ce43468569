export {
  CONDITIONS,
  DELTA_RULE_DEFAULTS,
  OPERATIONAL_STATES,
  READING_CLASSES,
  SENSOR_RULES_DEFAULTS,
  SEVERITIES,
  THRESHOLD_DEFAULTS,
  initialRuleState,
  isCondition,
  isOperationalState,
  isSeverity,
  severityRank,
} from './types.js'
export type {
  ActiveAlert,
  Condition,
  DeltaRule,
  DeltaSpikePayload,
  DeltaThresholdName,
  Effect,
  EvaluateOptions,
  Evaluation,
  NotifyEffect,
  OpenAlertEffect,
  OperationalState,
  ReadingClass,
  ReadingInput,
  Reason,
  ReasonCode,
  ResolveAlertEffect,
  ResolveDeltaSpikeEffect,
  RuleState,
  SensorRules,
  Severity,
  StateChangeEffect,
  ThresholdRule,
  UpdateAlertEffect,
  UpsertDeltaSpikeEffect,
} from './types.js'
export {
  DEFAULT_DELTA_NOISE_FLOOR,
  DELTA_NOISE_FLOORS,
  PHYSICAL_LIMITS,
  deltaNoiseFloorFor,
  isSuspiciousZero,
  isWithinPhysicalLimits,
  normaliseSensorType,
  physicalLimitsFor,
} from './physical-limits.js'
export type { NoiseFloor, PhysicalLimits } from './physical-limits.js'
export { GUARD_DEFAULTS, GUARD_REJECTIONS, guardReading } from './guards.js'
export type { GuardInput, GuardRejection } from './guards.js'
export {
  CLEAN_REASON,
  DEFAULT_ALERT_RENOTIFY_MS,
  DEFAULT_STALE_AFTER_MS,
  cloneRuleState,
  evaluateReading,
  evaluateReadingInPlace,
  measureDelta,
  violatesThreshold,
} from './evaluate.js'
export type { DeltaMeasure } from './evaluate.js'
export { decodeRuleState, encodeRuleState } from './rule-state-codec.js'
