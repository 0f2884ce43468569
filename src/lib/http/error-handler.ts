import type { FastifyReply, FastifyRequest } from 'fastify'

import { AppError, BodyJsonError, BodyLengthError, BodyTooDeepError, BodyTooLargeError, InputValidationError, UnavailableError, UserError } from '../errors/index.js'
import { discardRestOfBody } from './body-parser.js'
import type { HttpRuntime } from './runtime.js'

/** fastify's own body errors, as the coded errors the rest of the handler knows. */
function fromFastify(err: unknown): unknown {
  switch ((err as { code?: unknown }).code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new BodyTooLargeError()
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new BodyJsonError(0, 'Expecting value')
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new BodyLengthError()
    default:
      return err
  }
}

/** Neutral issues as FastAPI's 422 `detail` list: `loc` starts with where the input was (`body`, `query`, `path`). */
function fastApiDetail(err: InputValidationError): unknown[] {
  return err.issues.map((i) => {
    const item: Record<string, unknown> = { type: i.code, loc: [err.location, ...i.path], msg: i.msg, input: i.input }
    if (i.ctx !== undefined) item['ctx'] = i.ctx
    return item
  })
}

/**
 * The one place that knows the wire format (reference §1.1): `{"detail": "..."}`, 422 with a
 * pydantic-style list, 422 `json_invalid` for malformed JSON, 413 for oversize bodies, 400 for
 * prototype poisoning, 503 + Retry-After when a store or the queue cannot take the request, and a
 * plain-text `Internal Server Error` for bugs (logged with the request id, never sent).
 */
export function sendError(rt: HttpRuntime, error: unknown, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const err = fromFastify(error)
  if (err instanceof InputValidationError) return reply.code(422).send({ detail: fastApiDetail(err) })
  if (err instanceof BodyJsonError) {
    return reply.code(422).send({ detail: [{ type: 'json_invalid', loc: ['body', err.position], msg: 'JSON decode error', input: {}, ctx: { error: err.reason } }] })
  }
  if (err instanceof BodyTooLargeError) discardRestOfBody(req, reply)
  if (err instanceof BodyTooDeepError) return reply.code(422).send({ detail: [{ type: 'json_too_deep', loc: ['body'], msg: err.message, input: null }] })
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
