import { defaultStreamConfig, formatSeriesId, type StreamConfig } from '../../domain/universal/index.js'
import type { AppContext } from '../context.js'
import type { StreamConfigSource } from './point-service.js'

/** The stream configs the point flushes classify with: built-in defaults (reference §8.5) until a database config source is wired. */
export function createStreamConfigSource(_ctx: Pick<AppContext, 'universal' | 'clock' | 'config'>): StreamConfigSource {
  return {
    get: (keys) => Promise.resolve(new Map<string, StreamConfig>(keys.map((k) => [formatSeriesId(k), defaultStreamConfig(k)]))),
  }
}
