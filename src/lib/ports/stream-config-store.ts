import type { SeriesKey, StreamConfig } from '../domain/universal/index.js'

/** Reads `stream_configs` joined with `value_constraints` (universal store). */
export interface StreamConfigStore {
  /**
   * The configs of the series among `keys` that have a `stream_configs` row, by series id
   * (`domain:source_id:stream_id`), in one round trip for many keys (chunked for very large lists). A key
   * without a row is absent from the map (the caller falls back to the built-in defaults). A row without
   * `value_constraints` has `constraints: null`. Every returned config has `source: 'database'`.
   */
  load(keys: readonly SeriesKey[]): Promise<Map<string, StreamConfig>>
}
