import type { Clock } from '../../ports/clock.js'
import type { SensorDirectory, SensorInfo } from '../../ports/ingest-store.js'

export interface SensorResolverOptions {
  ttlMs: number
  negativeTtlMs: number
  maxEntries?: number
}

interface Entry {
  info: SensorInfo | null
  expires: number
}

/**
 * `(device_uuid, sensor_uuid) -> sensor` and `id -> sensor` with a TTL/LRU cache and a short
 * negative cache. Lookups of one batch, and concurrent lookups of the same key, share one query:
 * 100 readings for one unknown sensor cost at most one query.
 */
export class SensorResolver {
  private readonly cache = new Map<string, Entry>()
  private readonly inflight = new Map<string, Promise<SensorInfo | null>>()
  private readonly max: number
  queries = 0

  constructor(
    private readonly directory: SensorDirectory,
    private readonly clock: Clock,
    private readonly options: SensorResolverOptions,
  ) {
    this.max = options.maxEntries ?? 10_000
  }

  private get(key: string): SensorInfo | null | undefined {
    const e = this.cache.get(key)
    if (!e) return undefined
    if (e.expires <= this.clock.now()) {
      this.cache.delete(key)
      return undefined
    }
    // Eviction is by insertion order (the TTL bounds staleness); moving hits would cost a delete and
    // an insert per reading.
    return e.info
  }

  private set(key: string, info: SensorInfo | null): void {
    if (this.cache.size >= this.max) {
      // A tenth at once, in one pass (see memory-dedup.ts).
      let n = this.cache.size - this.max + 1 + Math.floor(this.max / 10)
      for (const k of this.cache.keys()) {
        this.cache.delete(k)
        if (--n <= 0) break
      }
    }
    this.cache.set(key, { info, expires: this.clock.now() + (info ? this.options.ttlMs : this.options.negativeTtlMs) })
  }

  private async lookup<K>(keys: readonly K[], keyOf: (k: K) => string, fetch: (missing: K[]) => Promise<SensorInfo[]>, match: (info: SensorInfo) => string): Promise<Map<string, SensorInfo | null>> {
    const out = new Map<string, SensorInfo | null>()
    const missing: K[] = []
    const waits: Array<Promise<void>> = []
    for (const k of keys) {
      const key = keyOf(k)
      if (out.has(key)) continue
      const hit = this.get(key)
      if (hit !== undefined) {
        out.set(key, hit)
        continue
      }
      const pending = this.inflight.get(key)
      if (pending) {
        out.set(key, null)
        waits.push(pending.then((info) => void out.set(key, info)))
        continue
      }
      out.set(key, null)
      missing.push(k)
    }
    if (missing.length > 0) {
      this.queries++
      const query = fetch(missing).then((infos) => {
        const found = new Map(infos.map((i) => [match(i), i]))
        return found
      })
      for (const k of missing) {
        const key = keyOf(k)
        const p = query.then((found) => found.get(key) ?? null)
        // Concurrent waiters handle a failure themselves; nobody waiting must not mean an unhandled rejection.
        p.catch(() => undefined)
        this.inflight.set(key, p)
      }
      try {
        const found = await query
        for (const k of missing) {
          const key = keyOf(k)
          const info = found.get(key) ?? null
          this.set(key, info)
          out.set(key, info)
        }
      } finally {
        for (const k of missing) this.inflight.delete(keyOf(k))
      }
    }
    await Promise.all(waits)
    return out
  }

  /** Forgets every cached lookup (tests; after a registry change an operator can also restart). */
  clear(): void {
    this.cache.clear()
  }

  /** Resolves (device, sensor) uuid pairs (lower-case hyphenated). Unknown pairs map to null. */
  async resolveUuids(pairs: ReadonlyArray<{ deviceUuid: string; sensorUuid: string }>): Promise<Map<string, SensorInfo | null>> {
    return this.lookup(pairs, (p) => `${p.deviceUuid}|${p.sensorUuid}`, (m) => this.directory.findByUuids(m), (i) => `${i.deviceUuid}|${i.sensorUuid}`)
  }

  /** Resolves internal sensor ids (the legacy endpoints). Keys of the map are `#<id>`. */
  async resolveIds(ids: readonly number[]): Promise<Map<string, SensorInfo | null>> {
    return this.lookup(ids, (id) => `#${id}`, (m) => this.directory.findByIds(m), (i) => `#${i.id}`)
  }
}
