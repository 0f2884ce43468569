import type { FastifyInstance, FastifyRequest } from 'fastify'
import secureJson from 'secure-json-parse'

import { jsonDepthExceeds } from '../domain/ingest/fields.js'
import { BodyForbiddenKeyError, BodyJsonError, BodyTooDeepError } from '../errors/index.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The depth limit, set when the JSON body exceeded it (answered 422 by the route). */
    bodyTooDeep?: number
  }
}

function parseJson(text: string): unknown {
  try {
    return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch (err) {
    if (err instanceof SyntaxError && /forbidden prototype property/i.test(err.message)) throw new BodyForbiddenKeyError()
    const msg = err instanceof Error ? err.message : String(err)
    const pos = Number(/position (\d+)/.exec(msg)?.[1] ?? 0)
    throw new BodyJsonError(pos, text.trim() === '' ? 'Expecting value' : msg.replace(/^Unexpected token.*?(, |$)/, 'Unexpected token$1').slice(0, 200))
  }
}

/**
 * Bodies are JSON (secure-json-parse, a depth limit); a missing Content-Type is JSON as in the original;
 * any other type reaches the validator as a string and fails with 422.
 */
export function registerBodyParsers(app: FastifyInstance, options: { maxJsonDepth: number }): void {
  app.removeAllContentTypeParsers()
  const jsonParser = (req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => {
    try {
      const value = parseJson(body)
      if (jsonDepthExceeds(value, options.maxJsonDepth)) req.bodyTooDeep = options.maxJsonDepth
      done(null, value)
    } catch (err) {
      done(err as Error)
    }
  }
  app.addContentTypeParser(['application/json', 'application/*+json'], { parseAs: 'string' }, jsonParser)
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    if (req.headers['content-type'] === undefined) return jsonParser(req, body as string, done)
    done(null, body)
  })
}

/** Routes call this first: a too-deep body is a 422 before any validation. */
export function assertBodyShape(req: FastifyRequest): void {
  if (req.bodyTooDeep !== undefined) throw new BodyTooDeepError(req.bodyTooDeep)
}
