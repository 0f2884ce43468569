import { createHash } from 'node:crypto'

import type { FastifyReply, FastifyRequest } from 'fastify'

import type { HttpRuntime } from './runtime.js'

let lastPrune = 0

/**
 * `Idempotency-Key` on batch posts (DESIGN §9): per credential, kept IDEMPOTENCY_TTL_HOURS; the same key
 * and body returns the first answer, a different body 422, while the first is in flight 409. Only
 * successful answers are kept: a failed request releases its key so the client can retry it.
 */
export async function withIdempotency<T>(rt: HttpRuntime, req: FastifyRequest, reply: FastifyReply, principal: string, run: () => Promise<T>): Promise<T | FastifyReply> {
  const raw = req.headers['idempotency-key']
  const key = Array.isArray(raw) ? raw[0] : raw
  if (key === undefined || key === '') return run()
  if (key.length > 255) return reply.code(400).send({ detail: 'Idempotency-Key is longer than 255 characters' })
  // Through the universal store's breaker: an outage there answers 503 fast instead of waiting.
  const breaker = rt.universalBreaker
  const idem = rt.universal.idempotency
  const store = {
    begin: (...a: Parameters<typeof idem.begin>) => breaker.call(() => idem.begin(...a)),
    complete: (...a: Parameters<typeof idem.complete>) => breaker.call(() => idem.complete(...a)),
    abandon: (...a: Parameters<typeof idem.abandon>) => breaker.call(() => idem.abandon(...a)),
    prune: (...a: Parameters<typeof idem.prune>) => breaker.call(() => idem.prune(...a)),
  }
  const now = rt.clock.now()
  const scope = createHash('sha256').update(principal).digest('hex').slice(0, 32)
  const hash = createHash('sha256').update(`${req.method} ${req.url}\n${JSON.stringify(req.body)}`).digest('hex')
  if (now - lastPrune > 60_000) {
    lastPrune = now
    void store.prune(now).catch((err: unknown) => rt.logger.warn({ err }, 'idempotency prune failed'))
  }
  const begun = await store.begin(scope, key, hash, now, rt.config.http.idempotencyTtlHours * 3_600_000)
  if (begun.state === 'mismatch') return reply.code(422).send({ detail: 'Idempotency-Key was already used with a different request' })
  if (begun.state === 'in_flight') return reply.code(409).send({ detail: 'A request with this Idempotency-Key is still in progress' })
  if (begun.state === 'done') return reply.code(begun.httpStatus).header('Idempotent-Replayed', 'true').send(begun.response)
  try {
    const result = await run()
    // The status the route set (201 on /ingest/data) is what a replay answers too.
    await store.complete(scope, key, reply.statusCode, result, rt.clock.now() + rt.config.http.idempotencyTtlHours * 3_600_000)
    return result
  } catch (err) {
    await store.abandon(scope, key).catch(() => undefined)
    throw err
  }
}
