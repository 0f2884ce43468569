import { VALUE_CONSTRAINT_DEFAULTS, formatSeriesId } from '../../../domain/universal/index.js'
import type { SeriesKey, StreamConfig, ValueConstraints } from '../../../domain/universal/index.js'
import type { StreamConfigStore } from '../../../ports/stream-config-store.js'
import type { Param, Row, SqlExecutor } from './executor.js'
import { toBool, toJson, toNumberOrNull, toStringOrNull } from './row.js'

const SELECT = `SELECT c."stream_id", c."source_id", c."domain", c."display_name", c."unit", c."enable_ml_prediction", c."enable_alerting", c."domain_metadata",
 v."stream_config_id", v."physical_min", v."physical_max", v."operational_min", v."operational_max", v."warning_min", v."warning_max",
 v."critical_min", v."critical_max", v."max_abs_delta", v."max_rel_delta", v."noise_abs_threshold", v."z_score_threshold",
 v."consecutive_violations_required", v."cooldown_seconds", v."store_out_of_physical"
 FROM "stream_configs" c LEFT JOIN "value_constraints" v ON v."stream_config_id" = c."id"
 WHERE `
const KEY_MATCH = `(c."stream_id" = ? AND c."source_id" = ? AND c."domain" = ?)`

/** Keys per statement: 3 parameters each, far below every engine's parameter limit, an index probe per key. */
export const STREAM_CONFIG_CHUNK = 500

function constraintsOf(r: Row): ValueConstraints | null {
  if (r['stream_config_id'] === null || r['stream_config_id'] === undefined) return null
  return {
    physicalMin: toNumberOrNull(r['physical_min']),
    physicalMax: toNumberOrNull(r['physical_max']),
    operationalMin: toNumberOrNull(r['operational_min']),
    operationalMax: toNumberOrNull(r['operational_max']),
    warningMin: toNumberOrNull(r['warning_min']),
    warningMax: toNumberOrNull(r['warning_max']),
    criticalMin: toNumberOrNull(r['critical_min']),
    criticalMax: toNumberOrNull(r['critical_max']),
    maxAbsDelta: toNumberOrNull(r['max_abs_delta']),
    maxRelDelta: toNumberOrNull(r['max_rel_delta']),
    noiseAbsThreshold: toNumberOrNull(r['noise_abs_threshold']),
    // The columns are NOT NULL with these defaults; the fallback keeps a hand-edited database usable (reference §8.5).
    zScoreThreshold: toNumberOrNull(r['z_score_threshold']) ?? VALUE_CONSTRAINT_DEFAULTS.zScoreThreshold,
    consecutiveViolationsRequired: toNumberOrNull(r['consecutive_violations_required']) ?? VALUE_CONSTRAINT_DEFAULTS.consecutiveViolationsRequired,
    cooldownSeconds: toNumberOrNull(r['cooldown_seconds']) ?? VALUE_CONSTRAINT_DEFAULTS.cooldownSeconds,
    storeOutOfPhysical: r['store_out_of_physical'] === null || r['store_out_of_physical'] === undefined ? VALUE_CONSTRAINT_DEFAULTS.storeOutOfPhysical : toBool(r['store_out_of_physical']),
  }
}

function configOf(r: Row): StreamConfig {
  const key: SeriesKey = { domain: String(r['domain']), source_id: String(r['source_id']), stream_id: String(r['stream_id']) }
  const metadata = toJson(r['domain_metadata'])
  return {
    seriesId: formatSeriesId(key),
    key,
    displayName: toStringOrNull(r['display_name']),
    unit: toStringOrNull(r['unit']),
    enableMlPrediction: toBool(r['enable_ml_prediction']),
    enableAlerting: toBool(r['enable_alerting']),
    domainMetadata: typeof metadata === 'object' && metadata !== null && !Array.isArray(metadata) ? (metadata as Record<string, unknown>) : {},
    constraints: constraintsOf(r),
    source: 'database',
  }
}

/** Stream configs over any engine: one OR-list of key matches per chunk, each an index probe of `stream_configs_key`. */
export function createSqlStreamConfigStore(exec: SqlExecutor): StreamConfigStore {
  return {
    async load(keys) {
      const out = new Map<string, StreamConfig>()
      const unique = [...new Map(keys.map((k) => [formatSeriesId(k), k])).values()]
      for (let start = 0; start < unique.length; start += STREAM_CONFIG_CHUNK) {
        const chunk = unique.slice(start, start + STREAM_CONFIG_CHUNK)
        const params: Param[] = []
        for (const k of chunk) params.push(k.stream_id, k.source_id, k.domain)
        const rows = await exec.all(SELECT + chunk.map(() => KEY_MATCH).join(' OR '), params)
        for (const r of rows) {
          const config = configOf(r)
          out.set(config.seriesId, config)
        }
      }
      return out
    },
  }
}
