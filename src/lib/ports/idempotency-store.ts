export type IdempotencyBegin =
  | { state: 'new' }
  | { state: 'in_flight' }
  | { state: 'mismatch' }
  | { state: 'done'; httpStatus: number; response: unknown }

/** `Idempotency-Key` records (DESIGN §9): per credential scope, kept for a TTL. */
export interface IdempotencyStore {
  /** Claims (scope, key) for a request with this body hash, or reports the earlier outcome. */
  begin(scope: string, key: string, requestHash: string, nowMs: number, ttlMs: number): Promise<IdempotencyBegin>
  /** Records the answer, kept until `expiresAtMs` (the full TTL). */
  complete(scope: string, key: string, httpStatus: number, response: unknown, expiresAtMs: number): Promise<void>
  /** Forgets a claim whose request failed (so the client may retry with the same key). */
  abandon(scope: string, key: string): Promise<void>
  prune(nowMs: number): Promise<number>
}
