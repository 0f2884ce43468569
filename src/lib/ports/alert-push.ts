/**
 * The legacy push (reference §6.8 step 6): each alert this service opened is announced to the backend
 * after its commit. Best effort and bounded: `announce` never waits and never throws; what cannot be
 * sent is counted, never retried into the ingest path.
 */
export interface AlertPush {
  /** Queues the alerts opened by one committed flush. */
  announce(alertIds: readonly number[]): void
  /** Waits for the pushes in flight (bounded by their timeout), then stops. */
  close(): Promise<void>
}

/** What happened to one push: answered 2xx, failed (error, timeout or non-2xx), or dropped (queue full). */
export type PushOutcome = 'sent' | 'failed' | 'dropped'
