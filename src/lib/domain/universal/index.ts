/**
 * The universal (multi-domain) classifier (DESIGN §5, reference §8). Pure: no I/O, no clock.
 *
 * Series: `formatSeriesId({domain, source_id, stream_id})` -> `domain:source_id:stream_id`;
 * `parseSeriesId(id)`; `validateSeriesKey(input, path, issues)` (ids rule of every transport, no `:` in
 * domain/source_id, `domain='iot'` refused with `IOT_DOMAIN_REFUSED_MESSAGE`).
 *
 * Config: `StreamConfig` / `ValueConstraints`; `defaultStreamConfig(key)` gives the built-in constraints
 * of reference §8.5 (`BUILT_IN_CONSTRAINTS`) or none, for a series without a `stream_configs` row.
 *
 * Classification: `classifyPoints(config, state, points, options)` for one series, or
 * `classifyBatch(points, configs, states, options)` for a flush of many: per point an outcome (stored?,
 * class, reasons, message, late, publishToMl, alert actions), the next `stream_rule_state` per series
 * (`encodeStreamRuleState` / `decodeStreamRuleState`), `data_points` rows (reasons in
 * `domain_metadata.reasons`), and per series a `SeriesAlertPlan` for `stream_alerts`: changes to the row
 * active before the batch (update, then resolve) and new rows to insert (at most the last one active).
 */
export {
  ALERT_SEVERITIES,
  DATA_POINT_CLASSES,
  alertSeverityRank,
  initialStreamRuleState,
  isAlertSeverity,
} from './types.js'
export type {
  ActiveStreamAlert,
  AlertAction,
  AlertRowInsert,
  AlertSeverity,
  ClassifyOptions,
  ConstraintName,
  DataPointClass,
  ExistingAlertChange,
  OpenAlertAction,
  PointInput,
  PointOutcome,
  ResolveAlertAction,
  SeriesAlertPlan,
  SeriesClassification,
  StreamConfig,
  StreamConfigSource,
  StreamRuleState,
  UniversalReason,
  UniversalReasonCode,
  UpdateAlertAction,
  ValueConstraints,
} from './types.js'
export {
  IOT_DOMAIN_REFUSED_MESSAGE,
  SERIES_PART_MAX_LENGTH,
  formatSeriesId,
  isIotDomain,
  parseSeriesId,
  validateSeriesKey,
} from './series-id.js'
export type { SeriesKey } from './series-id.js'
export {
  ALERTING_DOMAINS,
  BUILT_IN_CONSTRAINTS,
  VALUE_CONSTRAINT_DEFAULTS,
  defaultStreamConfig,
  valueConstraints,
} from './defaults.js'
export {
  DEFAULT_RESOLVE_AFTER_POINTS,
  NORMAL_MESSAGE,
  NOT_FINITE_MESSAGE,
  NO_CONSTRAINTS_MESSAGE,
  classifyPoints,
  planAlerts,
} from './classify.js'
export { NO_SEQUENCE, REASONS_METADATA_KEY, classifyBatch, domainMetadata } from './batch.js'
export type { BatchClassification, BatchPoint, DataPointRow } from './batch.js'
export { decodeStreamRuleState, encodeStreamRuleState } from './state-codec.js'
