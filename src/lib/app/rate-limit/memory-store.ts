import {
  admits,
  RATE_LIMIT_WINDOW_MS,
  type RateLimitDecision,
  type RateLimitKey,
  type RateLimitStore,
  retryAfterSeconds,
  rollWindow,
  type WindowCounts,
  windowStartOf,
} from '../../ports/rate-limit-store.js'

export interface MemoryRateLimitStoreOptions {
  /** Hard cap on keys held; beyond it the least recently counted key is forgotten. Default 100 000. */
  maxEntries?: number
  /** How often (by the request clock) keys whose counts no longer matter are swept. Default 60 s. */
  cleanupIntervalMs?: number
}

export interface MemoryRateLimitStore extends RateLimitStore {
  /** Keys currently held (for tests and metrics). */
  size(): number
}

/**
 * The in-process counters: the store of a single replica, and the fallback while Redis is away.
 * Memory is bounded two ways, whatever the key type (the legacy limiter only ever swept sensor keys):
 * a sweep at most every `cleanupIntervalMs` drops keys last counted before the previous window (they
 * read as zero anyway), and a hard cap evicts the least recently counted key. An evicted key forgets
 * its count, i.e. the cap fails open, which is the right side for a limiter that protects capacity.
 */
export function createMemoryRateLimitStore(options: MemoryRateLimitStoreOptions = {}): MemoryRateLimitStore {
  const maxEntries = Math.max(1, options.maxEntries ?? 100_000)
  const cleanupIntervalMs = options.cleanupIntervalMs ?? RATE_LIMIT_WINDOW_MS
  // Map order = least recently counted first (a counted key is re-inserted at the end).
  const entries = new Map<string, WindowCounts>()
  let lastCleanup = Number.NEGATIVE_INFINITY

  const sweep = (nowMs: number): void => {
    lastCleanup = nowMs
    const oldestUseful = windowStartOf(nowMs) - RATE_LIMIT_WINDOW_MS
    for (const [key, counts] of entries) if (counts.windowStart < oldestUseful) entries.delete(key)
  }

  const store = (key: string, counts: WindowCounts, nowMs: number): void => {
    if (entries.has(key)) {
      entries.delete(key)
    } else if (entries.size >= maxEntries) {
      sweep(nowMs)
      for (const oldest of entries.keys()) {
        if (entries.size < maxEntries) break
        entries.delete(oldest)
      }
    }
    entries.set(key, counts)
  }

  const hitNow = (keys: readonly RateLimitKey[], rawNowMs: number): RateLimitDecision => {
    const nowMs = Math.floor(rawNowMs)
    if (nowMs - lastCleanup >= cleanupIntervalMs) sweep(nowMs)
    const rolled: WindowCounts[] = []
    for (const { key, limit } of keys) {
      const counts = rollWindow(entries.get(key), nowMs)
      if (!admits(counts, nowMs, limit)) {
        return { allowed: false, key, limit, retryAfterSeconds: retryAfterSeconds(counts, nowMs, limit) }
      }
      rolled.push(counts)
    }
    keys.forEach(({ key }, i) => {
      const counts = rolled[i]
      if (counts) store(key, { prev: counts.prev, curr: counts.curr + 1, windowStart: counts.windowStart }, nowMs)
    })
    return { allowed: true }
  }

  return {
    hit: (keys, nowMs) => Promise.resolve(hitNow(keys, nowMs)),
    size: () => entries.size,
  }
}
