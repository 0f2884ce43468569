import { formatSeriesId } from './series-id.js'
import type { SeriesKey } from './series-id.js'
import type { StreamConfig, ValueConstraints } from './types.js'

/** Column defaults of `value_constraints` (reference §8.3, §8.6): what a null or absent field means. */
export const VALUE_CONSTRAINT_DEFAULTS = {
  zScoreThreshold: 3.0,
  consecutiveViolationsRequired: 1,
  cooldownSeconds: 300,
  storeOutOfPhysical: false,
} as const satisfies Partial<ValueConstraints>

const NO_BOUNDS = {
  physicalMin: null,
  physicalMax: null,
  operationalMin: null,
  operationalMax: null,
  warningMin: null,
  warningMax: null,
  criticalMin: null,
  criticalMax: null,
  maxAbsDelta: null,
  maxRelDelta: null,
  noiseAbsThreshold: null,
} as const satisfies Partial<ValueConstraints>

/** Constraints with every bound null and the column defaults, overridden by `fields`. */
export function valueConstraints(fields: Partial<ValueConstraints> = {}): ValueConstraints {
  return { ...NO_BOUNDS, ...VALUE_CONSTRAINT_DEFAULTS, ...fields }
}

/**
 * The built-in constraints per `domain/stream_id` (reference §8.5, the HardcodedConfigProvider table),
 * for any `source_id`; a `stream_configs` row for the series wins over them.
 */
export const BUILT_IN_CONSTRAINTS: Readonly<Record<string, Readonly<Partial<ValueConstraints>>>> = {
  'infrastructure/cpu': { physicalMin: 0, physicalMax: 100, operationalMin: 0, operationalMax: 90, warningMax: 80, criticalMax: 95 },
  'infrastructure/memory': { physicalMin: 0, physicalMax: 100, operationalMin: 0, operationalMax: 90, warningMax: 85, criticalMax: 95 },
  'infrastructure/disk': { physicalMin: 0, physicalMax: 100, operationalMin: 0, operationalMax: 85, warningMax: 80, criticalMax: 90 },
  'finance/price': { physicalMin: 0, maxRelDelta: 10 },
  'finance/volume': { physicalMin: 0 },
  'health/bpm': { physicalMin: 30, physicalMax: 220, operationalMin: 50, operationalMax: 180, warningMin: 45, warningMax: 160, criticalMin: 40, criticalMax: 200 },
  'health/spo2': { physicalMin: 0, physicalMax: 100, operationalMin: 90, operationalMax: 100, warningMin: 88, criticalMin: 85 },
}

/** Domains whose unconfigured streams alert (reference §8.5: the repository's per-domain defaults). */
export const ALERTING_DOMAINS: ReadonlySet<string> = new Set(['infrastructure', 'finance', 'health'])

/**
 * The config of a series without a `stream_configs` row: the built-in constraints of its
 * `domain/stream_id` when there are some (source `built_in`), else no constraints (source `default`).
 * Alerting is on for infrastructure, finance and health and off elsewhere (reference §8.5); ML
 * prediction is always on (DESIGN §5: clean points go to the ML stream; the original's
 * `StreamConfig.create_default` also keeps it on). Domains and stream ids are matched exactly.
 */
export function defaultStreamConfig(key: SeriesKey): StreamConfig {
  const builtIn = BUILT_IN_CONSTRAINTS[`${key.domain}/${key.stream_id}`]
  return {
    seriesId: formatSeriesId(key),
    key: { domain: key.domain, source_id: key.source_id, stream_id: key.stream_id },
    displayName: null,
    unit: null,
    enableMlPrediction: true,
    enableAlerting: ALERTING_DOMAINS.has(key.domain),
    domainMetadata: {},
    constraints: builtIn === undefined ? null : valueConstraints(builtIn),
    source: builtIn === undefined ? 'default' : 'built_in',
  }
}
