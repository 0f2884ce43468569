import type { FastifyReply, FastifyRequest } from 'fastify'

import type { RateLimitRequest } from '../app/rate-limit/rate-limiter.js'
import type { Parsed } from '../domain/ingest/issues.js'
import { BodyValidationError } from '../errors/index.js'
import type { AuthOutcome, HttpRuntime } from './runtime.js'

/** A request header's first value; an empty header counts as absent. */
export function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name]
  const s = Array.isArray(v) ? v[0] : v
  return s === undefined || s === '' ? undefined : s
}

/** One 401 body for every authentication failure: no detail tells a missing device from a wrong key. */
export function refuse(rt: HttpRuntime, reply: FastifyReply, outcome: Exclude<AuthOutcome, { ok: true }>, route: string): FastifyReply {
  rt.metrics.authFailures.inc({ route, reason: outcome.code })
  if (outcome.reason === 'forbidden') return reply.code(403).send({ detail: outcome.detail ?? 'Not authorized' })
  return reply.code(401).send({ detail: outcome.reason === 'missing' ? 'API key required' : 'Invalid API key' })
}

/** Rate limits are counted after authentication (a bogus key cannot spend a device's quota). */
export async function limited(rt: HttpRuntime, reply: FastifyReply, request: RateLimitRequest): Promise<boolean> {
  const r = await rt.rateLimiter.check(request)
  if (r.allowed) return false
  rt.metrics.rateLimited.inc({ scope: r.scope })
  await reply.code(429).header('Retry-After', String(r.retryAfterSeconds)).header('X-RateLimit-Limit', String(r.limit)).send({ detail: r.detail })
  return true
}

/** The parsed body, or the 422 (the error handler writes the FastAPI list). */
export function bodyOf<T>(parsed: Parsed<T>): T {
  if (!parsed.ok) throw new BodyValidationError(parsed.issues)
  return parsed.value
}
