import type { FastifyReply, FastifyRequest } from 'fastify'

import type { ServeRuntime } from '../app/serve.js'
import { AppError, UnavailableError, UserError } from '../errors/index.js'
import { JsonInvalid, ProtoPoisoning } from './app.js'
import { BodyInvalid } from './validation.js'

/**
 * The one place that knows the wire format (reference §1.1): `{"detail": "..."}`, 422 with a
 * pydantic-style list, 422 `json_invalid` for malformed JSON, 413 for oversize bodies, 400 for
 * prototype poisoning, 503 + Retry-After when a store or the queue cannot take the request, and a
 * plain-text `Internal Server Error` for bugs (logged with the request id, never sent).
 */
export function sendError(rt: ServeRuntime, err: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  if (err instanceof BodyInvalid) return reply.code(422).send({ detail: err.issues })
  if (err instanceof JsonInvalid) {
    return reply.code(422).send({ detail: [{ type: 'json_invalid', loc: ['body', err.position], msg: 'JSON decode error', input: {}, ctx: { error: err.reason } }] })
  }
  if (err instanceof ProtoPoisoning) return reply.code(400).send({ detail: 'Object contains forbidden prototype property' })
  const code = (err as { code?: unknown }).code
  if (code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send({ detail: 'Request body too large' })
  if (code === 'FST_ERR_CTP_INVALID_JSON_BODY' || code === 'FST_ERR_CTP_EMPTY_JSON_BODY') {
    return reply.code(422).send({ detail: [{ type: 'json_invalid', loc: ['body', 0], msg: 'JSON decode error', input: {}, ctx: { error: 'Expecting value' } }] })
  }
  if (code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH') return reply.code(400).send({ detail: 'Invalid Content-Length' })
  if (err instanceof UnavailableError || (err instanceof AppError && err.httpStatus === 503)) {
    rt.logger.warn({ reqId: req.id, code: err.code, err: err.message }, 'unavailable')
    const retryAfter = (err as { retryAfterSeconds?: number }).retryAfterSeconds ?? (err.code === 'QUEUE_FULL' ? 1 : err instanceof UnavailableError ? 5 : 1)
    return reply.code(503).header('Retry-After', String(retryAfter)).send({ detail: err.code === 'QUEUE_FULL' ? 'Server busy: ingest queue full' : 'Service unavailable' })
  }
  if (err instanceof UserError) return reply.code(err.httpStatus).send({ detail: err.message })
  if (err instanceof AppError && err.httpStatus < 500) return reply.code(err.httpStatus).send({ detail: err.message })
  const status = (err as { statusCode?: unknown }).statusCode
  if (typeof status === 'number' && status >= 400 && status < 500) return reply.code(status).send({ detail: (err as Error).message })
  rt.logger.error({ reqId: req.id, err }, 'unhandled error')
  return reply.code(500).type('text/plain; charset=utf-8').send('Internal Server Error')
}
