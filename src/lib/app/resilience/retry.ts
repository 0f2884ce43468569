import type { Clock } from '../../ports/clock.js'

export interface RetryOptions {
  /** Attempts in all (1 = no retry). */
  maxAttempts: number
  baseDelayMs: number
  maxDelayMs: number
  clock: Pick<Clock, 'sleep' | 'now'>
  isTransient(err: unknown): boolean
  /** Give up (rethrow) rather than sleep past this epoch-ms deadline. */
  deadline?: number
  random?: () => number
  onRetry?(attempt: number, delayMs: number, err: unknown): void
}

/** Full-jitter backoff: a delay drawn uniformly from [0, min(cap, base · 2^(attempt-1))]. */
export function backoffDelay(attempt: number, baseDelayMs: number, maxDelayMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxDelayMs, baseDelayMs * 2 ** Math.max(0, attempt - 1))
  return Math.floor(random() * ceiling)
}

/**
 * Retries transient errors only (connection, timeout, deadlock, serialization, SQLite busy); a
 * permanent error is rethrown at once so the row can be isolated and dead-lettered.
 */
export async function retryTransient<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt)
    } catch (err) {
      if (attempt >= options.maxAttempts || !options.isTransient(err)) throw err
      const delay = backoffDelay(attempt, options.baseDelayMs, options.maxDelayMs, options.random)
      if (options.deadline !== undefined && options.clock.now() + delay >= options.deadline) throw err
      options.onRetry?.(attempt, delay, err)
      await options.clock.sleep(delay)
    }
  }
}
