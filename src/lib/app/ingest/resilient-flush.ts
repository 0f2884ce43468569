import type { Config } from '../../config/index.js'
import { classifyStoreError, isCommitUnknown, PermanentStoreError, UnavailableError } from '../../errors/index.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import { type DeadLetterInput, type DeadLetterQueue, DlqFullError } from '../../ports/dead-letter-queue.js'
import type { Metrics } from '../metrics.js'
import { BreakerOpenError, type CircuitBreaker } from '../resilience/circuit-breaker.js'
import { retryTransient } from '../resilience/retry.js'
import type { ItemOutcome } from './items.js'

/**
 * The outcome of an item whose flush part failed (outage, DLQ full) after another part of the same flush
 * committed: the other callers are answered, the caller holding this item fails with `error`.
 */
export class FailedOutcome implements ItemOutcome {
  readonly status = 'rejected' as const
  readonly code = 'STORE_FAILED'
  constructor(readonly error: unknown) {}
}

/** Counters for /resilience/health, shared by every flush of a runtime. */
export interface DeliveryCounters {
  dedupChecked: number
  dedupHits: number
  dlqSent: number
  dlqErrors: number
  dlqRefused: number
}

export function createDeliveryCounters(): DeliveryCounters {
  return { dedupChecked: 0, dedupHits: 0, dlqSent: 0, dlqErrors: 0, dlqRefused: 0 }
}

export interface ResilientFlushOptions<I> {
  config: Config
  clock: Clock
  logger: Logger
  metrics: Metrics
  breaker: CircuitBreaker
  counters: DeliveryCounters
  /** Poison items and (with CB_OPEN_ACTION=dlq) outage-time items go here; without it a poison item is rejected. */
  dlq?: DeadLetterQueue | undefined
  /** One transaction over the items: one outcome per item, in order. */
  write(items: I[]): Promise<ItemOutcome[]>
  /** The DLQ entry of an item (its replayable payload, ids for filtering). */
  deadLetterOf(item: I, failure: { stage: 'store' | 'breaker_open'; errorClass: string; error: string }): DeadLetterInput
  /** What the log line of an isolated poison item names (sensor, series). */
  describe(item: I): Record<string, unknown>
}

/** The error text of a DLQ entry: the adapters put the driver's code (SQLSTATE, SQL Server number) in front. */
export function describeStoreError(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/** The DLQ error class of a permanent store error, as the adapter classified it. */
function errorClassOf(err: unknown): string {
  return err instanceof PermanentStoreError ? err.errorClass : 'store_error'
}

/**
 * One flush with the failure policy of DESIGN §6, for any item kind (readings, data points): through the
 * store's circuit breaker, transient errors retried with full-jitter backoff, a permanent error isolated
 * by bisection so only the poison item is dead-lettered, and (CB_OPEN_ACTION=dlq) an outage
 * dead-lettering the batch instead of failing the callers.
 */
export function createResilientFlush<I>(options: ResilientFlushOptions<I>): (items: I[]) => Promise<ItemOutcome[]> {
  const { config, clock, logger, metrics, breaker, counters } = options

  const deadLetter = async (items: I[], stage: 'store' | 'breaker_open', errorClass: string, err: unknown): Promise<ItemOutcome[]> => {
    const dlq = options.dlq
    if (!dlq) throw err
    try {
      const error = describeStoreError(err)
      const ids = await dlq.add(items.map((item) => options.deadLetterOf(item, { stage, errorClass, error })))
      metrics.deadLettered.inc({ stage, error_class: errorClass }, items.length)
      counters.dlqSent += items.length
      return ids.map((id) => ({ status: 'dead_lettered', code: stage === 'breaker_open' ? 'BREAKER_OPEN' : errorClass.toUpperCase(), dlqId: id }))
    } catch (dlqErr) {
      counters.dlqErrors += items.length
      if (dlqErr instanceof DlqFullError) {
        counters.dlqRefused += items.length
        metrics.dlqRefused.inc(items.length)
        throw new UnavailableError(dlqErr.message, { code: 'DLQ_FULL', cause: dlqErr })
      }
      throw dlqErr
    }
  }

  const flush = async (items: I[]): Promise<ItemOutcome[]> => {
    try {
      // Each attempt goes through the breaker, so a hang or outage opens it within a few attempts,
      // and an open breaker stops the retries at once.
      return await retryTransient(() => breaker.call(() => options.write(items)), {
        maxAttempts: Math.max(1, config.ingest.storeMaxRetries),
        baseDelayMs: 50,
        maxDelayMs: 2_000,
        clock,
        deadline: clock.now() + config.ingest.commitTimeoutMs,
        // An open breaker stops the retries; so does a commit whose outcome is unknown (a retry could
        // store items without a dedup key twice): the caller gets 503 and decides.
        isTransient: (err) => !(err instanceof BreakerOpenError) && !isCommitUnknown(err) && classifyStoreError(err) !== 'permanent',
        onRetry: (attempt, delayMs, err) => logger.warn({ attempt, delayMs, err: (err as Error).message }, 'flush retry'),
      })
    } catch (err) {
      const cls = err instanceof BreakerOpenError ? 'outage' : classifyStoreError(err)
      if (cls !== 'permanent') {
        // A commit whose outcome is unknown is never dead-lettered: the items may be stored, and the
        // automatic replay of outage entries would store the items without a dedup key twice.
        if (config.breaker.openAction === 'dlq' && options.dlq && !isCommitUnknown(err)) return deadLetter(items, err instanceof BreakerOpenError ? 'breaker_open' : 'store', 'outage', err)
        throw err
      }
      if (items.length > 1) {
        const mid = items.length >> 1
        const first = await flush(items.slice(0, mid))
        const rest = items.slice(mid)
        try {
          return [...first, ...(await flush(rest))]
        } catch (restErr) {
          // The first half is committed: its callers must hear so (a 503 would make them send it again,
          // and an item without a dedup key would be stored twice). Only the rest failed.
          const failed = new FailedOutcome(restErr)
          return [...first, ...rest.map(() => failed)]
        }
      }
      const poison = items[0] as I
      logger.warn({ err: (err as Error).message, ...options.describe(poison) }, 'poison item isolated')
      if (!options.dlq) return [{ status: 'rejected', code: 'STORE_REJECTED' }]
      try {
        return await deadLetter(items, 'store', errorClassOf(err), err)
      } catch (dlqErr) {
        // Neither stored nor dead-lettered: the sender must retry (503), never be told "rejected".
        logger.error({ err: (dlqErr as Error).message }, 'poison item could not be dead-lettered')
        throw dlqErr instanceof UnavailableError ? dlqErr : new UnavailableError('the dead-letter queue is unavailable', { code: 'DLQ_UNAVAILABLE', cause: dlqErr })
      }
    }
  }
  return flush
}
