import type { Clock } from '../../ports/clock.js'
import type { DedupFilter } from '../../ports/dedup-filter.js'

/**
 * The in-process dedup pre-filter: recently committed keys with a TTL, in two generations. Keys go into
 * the current one; when it holds maxEntries/2 it becomes the previous one and the old previous is
 * dropped whole. So at most maxEntries keys are held, each for at least maxEntries/2 later keys (or
 * until its TTL), and nothing is ever evicted key by key: a one-pass eviction of tens of thousands of
 * keys stalled the event loop for ~20 ms (seen as an open-loop latency spike), and deleting from the
 * front one key at a time leaves holes every later walk steps over.
 */
export function createMemoryDedupFilter(options: { ttlMs: number; maxEntries?: number; clock: Pick<Clock, 'now'> }): DedupFilter {
  const half = Math.max(1, Math.floor((options.maxEntries ?? 200_000) / 2))
  let current = new Map<string, number>()
  let previous = new Map<string, number>()
  return {
    kind: 'memory',
    seen(keys) {
      const now = options.clock.now()
      const out = new Set<string>()
      for (const k of keys) {
        // The current generation first: a key remembered again carries its newer expiry there.
        const expires = current.get(k) ?? previous.get(k)
        if (expires !== undefined && expires > now) out.add(k)
      }
      return Promise.resolve(out)
    },
    remember(keys) {
      const expires = options.clock.now() + options.ttlMs
      for (const k of keys) {
        current.set(k, expires)
        if (current.size >= half) {
          previous = current
          current = new Map()
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
