import type { Clock } from '../../ports/clock.js'
import type { DedupFilter } from '../../ports/dedup-filter.js'

/** The in-process dedup pre-filter: an LRU of recently committed keys with a TTL. */
export function createMemoryDedupFilter(options: { ttlMs: number; maxEntries?: number; clock: Pick<Clock, 'now'> }): DedupFilter {
  const max = options.maxEntries ?? 200_000
  const entries = new Map<string, number>()
  return {
    kind: 'memory',
    async seen(keys) {
      const now = options.clock.now()
      const out = new Set<string>()
      for (const k of keys) {
        const expires = entries.get(k)
        if (expires === undefined) continue
        if (expires <= now) entries.delete(k)
        else out.add(k)
      }
      return out
    },
    remember(keys) {
      // Insertion order is close enough to age order: re-remembering a key only extends its expiry.
      const expires = options.clock.now() + options.ttlMs
      for (const k of keys) entries.set(k, expires)
      // Evict a tenth at once in one pass: deleting from the front one by one leaves holes that every
      // later `keys()` walk would step over again.
      if (entries.size > max) {
        let n = entries.size - max + Math.floor(max / 10)
        for (const k of entries.keys()) {
          entries.delete(k)
          if (--n <= 0) break
        }
      }
    },
  }
}

/** Memory first, then the shared filter (Redis) for the misses; both remember. */
export function layerDedupFilters(memory: DedupFilter, shared: DedupFilter): DedupFilter {
  return {
    kind: shared.kind,
    async seen(keys) {
      const hits = await memory.seen(keys)
      const rest = keys.filter((k) => !hits.has(k))
      if (rest.length > 0) for (const k of await shared.seen(rest)) hits.add(k)
      return hits
    },
    remember(keys) {
      memory.remember(keys)
      shared.remember(keys)
    },
  }
}
