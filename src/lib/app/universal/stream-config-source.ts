import type { AppContext } from '../context.js'
import type { StreamConfigSource } from './point-service.js'
import { StreamConfigCache } from './stream-configs.js'

/**
 * The stream configs the point flushes classify with: `stream_configs` + `value_constraints` of the
 * universal store through a TTL cache (STREAM_CONFIG_TTL_SECONDS), the built-in defaults of reference §8.5
 * for a series without a row.
 */
export function createStreamConfigSource(ctx: Pick<AppContext, 'universal' | 'clock' | 'config'>): StreamConfigSource {
  return new StreamConfigCache(ctx.universal.streamConfigs, ctx.clock, { ttlMs: ctx.config.ingest.streamConfigTtlSeconds * 1000 })
}
