import type { Clock } from '../../ports/clock.js'
import type { Logger } from '../../log/index.js'

/**
 * Remembers Redis failures for a back-off period (DESIGN §6): while it lasts, callers skip Redis
 * entirely (no request ever waits for a Redis timeout); when it ends exactly one call probes.
 */
export class BackoffGate {
  private failures = 0
  private retryAt = 0
  private probing = false
  attempts = 0

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private readonly options: { initialMs: number; maxMs: number; name: string; logger?: Pick<Logger, 'warn' | 'info'> | undefined },
  ) {}

  /** Runs fn unless Redis is in its back-off period; returns `fallback` then, or when fn fails. */
  async run<T>(fn: () => Promise<T>, fallback: T): Promise<T> {
    const now = this.clock.now()
    let probe = false
    if (this.failures > 0) {
      if (now < this.retryAt || this.probing) return fallback
      this.probing = true
      probe = true
    }
    this.attempts++
    try {
      const out = await fn()
      if (this.failures > 0) this.options.logger?.info({ gate: this.options.name }, 'redis: available again')
      this.failures = 0
      return out
    } catch (err) {
      this.failures++
      const wait = Math.min(this.options.maxMs, this.options.initialMs * 2 ** (this.failures - 1))
      this.retryAt = this.clock.now() + wait
      if (this.failures === 1) this.options.logger?.warn({ gate: this.options.name, err: (err as Error).message, retryInMs: wait }, 'redis: failing; skipped during back-off')
      return fallback
    } finally {
      if (probe) this.probing = false
    }
  }

  status(): { healthy: boolean; failures: number; retryAt: string | null } {
    return { healthy: this.failures === 0, failures: this.failures, retryAt: this.failures === 0 ? null : new Date(this.retryAt).toISOString() }
  }
}
