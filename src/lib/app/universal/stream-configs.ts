import { defaultStreamConfig, formatSeriesId } from '../../domain/universal/index.js'
import type { SeriesKey, StreamConfig } from '../../domain/universal/index.js'
import type { Clock } from '../../ports/clock.js'
import type { StreamConfigStore } from '../../ports/stream-config-store.js'

export interface StreamConfigCacheOptions {
  /** How long a loaded config (or the absence of one) is trusted: `STREAM_CONFIG_TTL_SECONDS` * 1000; 0 = no caching. */
  ttlMs: number
  /** Above this many entries the cache starts over (a flood of one-off series must not grow it without bound). */
  maxEntries?: number
}

interface Entry {
  /** null: no `stream_configs` row (negative caching): the built-in defaults apply. */
  config: StreamConfig | null
  expires: number
}

/**
 * Stream configs for the universal flushes (DESIGN §5): read from the database for many series at once
 * and cached for `ttlMs` of the clock, including "no row" answers, which get the built-in defaults of
 * reference §8.5 ({@link defaultStreamConfig}). A change made with `ingest apply` or in the database
 * takes effect within the TTL. Concurrent callers share loads: a key already being loaded is awaited,
 * never loaded twice; each call loads what is left in one `store.load` for its whole batch. A failed
 * load is not cached (the error goes to the caller: the flush fails and is retried like any outage).
 */
export class StreamConfigCache {
  private readonly entries = new Map<string, Entry>()
  private readonly inFlight = new Map<string, Promise<StreamConfig | null>>()
  private generation = 0
  private readonly maxEntries: number

  constructor(
    private readonly store: StreamConfigStore,
    private readonly clock: Pick<Clock, 'now'>,
    private readonly options: StreamConfigCacheOptions,
  ) {
    this.maxEntries = options.maxEntries ?? 100_000
  }

  /** The config of every key, by series id: the database row, else the built-in defaults. */
  async get(keys: readonly SeriesKey[]): Promise<Map<string, StreamConfig>> {
    const now = this.clock.now()
    const out = new Map<string, StreamConfig>()
    const waits: Array<Promise<void>> = []
    const missing = new Map<string, SeriesKey>()
    for (const key of keys) {
      const id = formatSeriesId(key)
      if (out.has(id) || missing.has(id)) continue
      const entry = this.entries.get(id)
      if (entry !== undefined && entry.expires > now) {
        out.set(id, entry.config ?? defaultStreamConfig(key))
        continue
      }
      const pending = this.inFlight.get(id)
      if (pending !== undefined) {
        waits.push(pending.then((config) => void out.set(id, config ?? defaultStreamConfig(key))))
        continue
      }
      missing.set(id, key)
    }
    if (missing.size > 0) waits.push(this.load(missing, now, out))
    await Promise.all(waits)
    return out
  }

  /** Forgets every entry; loads already running answer their callers but are not cached. */
  invalidate(): void {
    this.generation += 1
    this.entries.clear()
  }

  private async load(missing: Map<string, SeriesKey>, now: number, out: Map<string, StreamConfig>): Promise<void> {
    const generation = this.generation
    const batch = this.store.load([...missing.values()])
    for (const id of missing.keys()) {
      const one = batch.then((loaded) => loaded.get(id) ?? null)
      // Callers that wait on this key see a failure through their own await; this must not be unhandled meanwhile.
      one.catch(() => undefined)
      this.inFlight.set(id, one)
    }
    try {
      const loaded = await batch
      const cache = this.options.ttlMs > 0 && generation === this.generation
      if (cache && this.entries.size + missing.size > this.maxEntries) this.entries.clear()
      for (const [id, key] of missing) {
        const config = loaded.get(id) ?? null
        out.set(id, config ?? defaultStreamConfig(key))
        if (cache) this.entries.set(id, { config, expires: now + this.options.ttlMs })
      }
    } finally {
      for (const id of missing.keys()) this.inFlight.delete(id)
    }
  }
}
