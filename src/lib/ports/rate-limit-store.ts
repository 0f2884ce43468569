/**
 * Rate-limit counters (DESIGN §7, reference §3): an approximate sliding window of 60 s windows aligned
 * to epoch multiples. Each key keeps the count of the previous and of the current window; a request
 * is admitted iff `floor(prev × (1 − elapsed/60 s)) + curr + 1 ≤ limit`, the `+ 1` being the request
 * itself. Unlike the legacy limiter, a refused request consumes no unit, so a refused flood does not
 * extend the block.
 *
 * The window arithmetic below is the contract every store implements (the in-process store runs it
 * directly, the Redis script mirrors it operation for operation), so both answer the same.
 */

/** One counter to check, e.g. `{ key: 'ip:10.0.0.1', limit: 1000 }`. */
export interface RateLimitKey {
  readonly key: string
  readonly limit: number
}

export type RateLimitDecision =
  | { readonly allowed: true }
  | {
      readonly allowed: false
      /** The first key found over its limit. */
      readonly key: string
      readonly limit: number
      /** Seconds until this request would be admitted if nothing else arrives: 1..60. */
      readonly retryAfterSeconds: number
    }

export interface RateLimitStore {
  /**
   * Checks `keys` (distinct) in order, atomically: the first key over its limit refuses the request
   * and then no key at all is counted; when every key admits it, each is counted once. `nowMs` comes
   * from the caller's clock. Rejects when the store cannot answer (the caller decides the fallback).
   */
  hit(keys: readonly RateLimitKey[], nowMs: number): Promise<RateLimitDecision>
}

export const RATE_LIMIT_WINDOW_MS = 60_000

/** A key's counters as of its window start (epoch ms, a multiple of the window). */
export interface WindowCounts {
  prev: number
  curr: number
  windowStart: number
}

export function windowStartOf(nowMs: number): number {
  return nowMs - (nowMs % RATE_LIMIT_WINDOW_MS)
}

/** The counters seen from the window of `nowMs`: rolled forward when the stored window is older. */
export function rollWindow(stored: WindowCounts | undefined, nowMs: number): WindowCounts {
  const ws = windowStartOf(nowMs)
  if (stored === undefined) return { prev: 0, curr: 0, windowStart: ws }
  if (stored.windowStart === ws) return stored
  return { prev: stored.windowStart === ws - RATE_LIMIT_WINDOW_MS ? stored.curr : 0, curr: 0, windowStart: ws }
}

/** Whether one more unit fits; `counts` must already be rolled to the window of `nowMs`. */
export function admits(counts: WindowCounts, nowMs: number, limit: number): boolean {
  const elapsed = nowMs - counts.windowStart
  return Math.floor(counts.prev * (1 - elapsed / RATE_LIMIT_WINDOW_MS)) + counts.curr + 1 <= limit
}

/**
 * Whole seconds until a refused request would be admitted (nothing else arriving), at least 1 and at
 * most 60. The estimate only decreases inside a window, so the first admitted millisecond is found by
 * bisection with the very `admits` used to decide, in this window or, failing that, the next ones.
 */
export function retryAfterSeconds(counts: WindowCounts, nowMs: number, limit: number): number {
  let state = counts
  let from = nowMs + 1
  for (let i = 0; i < 3; i++) {
    const end = state.windowStart + RATE_LIMIT_WINDOW_MS
    if (from < end && admits(state, end - 1, limit)) {
      let lo = from
      let hi = end - 1
      while (lo < hi) {
        const mid = Math.floor((lo + hi) / 2)
        if (admits(state, mid, limit)) hi = mid
        else lo = mid + 1
      }
      return clampSeconds(lo - nowMs)
    }
    state = rollWindow(state, end)
    from = end
  }
  return 60
}

function clampSeconds(ms: number): number {
  return Math.min(60, Math.max(1, Math.ceil(ms / 1000)))
}
