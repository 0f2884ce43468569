import { UnavailableError } from '../../errors/index.js'
import type { Clock } from '../../ports/clock.js'

export type BreakerState = 'closed' | 'open' | 'half_open'

export interface BreakerOptions {
  name: string
  /** Consecutive outage errors that open it. */
  failureThreshold: number
  /** Open this long before one probe is let through. */
  recoveryTimeoutMs: number
  /** Successful probes in half-open that close it. */
  successThreshold: number
  clock: Pick<Clock, 'now'>
  /** Only outages count (connection, timeout): a bad row proves the store is up. */
  isOutage(err: unknown): boolean
  onStateChange?(from: BreakerState, to: BreakerState): void
  enabled?: boolean
}

export interface BreakerStats {
  name: string
  state: BreakerState
  since: string
  secondsInState: number
  consecutiveFailures: number
  halfOpenSuccesses: number
  /** Calls refused without touching the store while open (or while the probe was out). */
  skippedCalls: number
  opened: number
  config: { failure_threshold: number; recovery_timeout_seconds: number; success_threshold: number }
}

export class BreakerOpenError extends UnavailableError {
  constructor(
    name: string,
    readonly retryAfterSeconds: number,
  ) {
    super(`circuit breaker '${name}' is open: retry in ${retryAfterSeconds}s`, { code: 'BREAKER_OPEN' })
  }
}

/**
 * A circuit breaker per store (DESIGN §6): opens after `failureThreshold` consecutive outage errors
 * (never bad rows); while open calls fail fast; after `recoveryTimeoutMs` exactly one probe is let
 * through (half-open); `successThreshold` successful probes close it, a failed probe reopens it.
 */
export class CircuitBreaker {
  private state: BreakerState = 'closed'
  private since: number
  private failures = 0
  private successes = 0
  private probeInFlight = false
  private skipped = 0
  private opens = 0

  constructor(private readonly options: BreakerOptions) {
    this.since = options.clock.now()
  }

  get current(): BreakerState {
    return this.state
  }

  private transition(to: BreakerState): void {
    if (to === this.state) return
    const from = this.state
    this.state = to
    this.since = this.options.clock.now()
    if (to === 'open') this.opens++
    this.successes = 0
    if (to === 'closed') this.failures = 0
    this.options.onStateChange?.(from, to)
  }

  private retryAfterSeconds(): number {
    const left = this.options.recoveryTimeoutMs - (this.options.clock.now() - this.since)
    return Math.max(1, Math.ceil(left / 1000))
  }

  /** Runs fn through the breaker; throws BreakerOpenError without calling fn when it may not run. */
  async call<T>(fn: () => Promise<T>): Promise<T> {
    if (this.options.enabled === false) return fn()
    let probe = false
    if (this.state === 'open') {
      if (this.options.clock.now() - this.since < this.options.recoveryTimeoutMs) {
        this.skipped++
        throw new BreakerOpenError(this.options.name, this.retryAfterSeconds())
      }
      this.transition('half_open')
    }
    if (this.state === 'half_open') {
      if (this.probeInFlight) {
        this.skipped++
        throw new BreakerOpenError(this.options.name, 1)
      }
      this.probeInFlight = true
      probe = true
    }
    try {
      const out = await fn()
      this.onSuccess(probe)
      return out
    } catch (err) {
      if (this.options.isOutage(err)) this.onFailure(probe)
      else this.onSuccess(probe)
      throw err
    } finally {
      if (probe) this.probeInFlight = false
    }
  }

  private onSuccess(probe: boolean): void {
    if (this.state === 'half_open' && probe) {
      this.successes++
      if (this.successes >= this.options.successThreshold) this.transition('closed')
    } else if (this.state === 'closed') {
      this.failures = 0
    }
  }

  private onFailure(probe: boolean): void {
    if (this.state === 'half_open' && probe) {
      this.transition('open')
      return
    }
    if (this.state === 'closed') {
      this.failures++
      if (this.failures >= this.options.failureThreshold) this.transition('open')
    }
  }

  stats(): BreakerStats {
    const now = this.options.clock.now()
    return {
      name: this.options.name,
      state: this.state,
      since: new Date(this.since).toISOString(),
      secondsInState: Math.round((now - this.since) / 10) / 100,
      consecutiveFailures: this.failures,
      halfOpenSuccesses: this.successes,
      skippedCalls: this.skipped,
      opened: this.opens,
      config: { failure_threshold: this.options.failureThreshold, recovery_timeout_seconds: this.options.recoveryTimeoutMs / 1000, success_threshold: this.options.successThreshold },
    }
  }
}
