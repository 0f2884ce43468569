import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
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
 * any other type reaches the validator as a string and fails with 422. An empty body (of any type) is no
 * body: the parsers answer `missing` at `["body"]`, as FastAPI does; whitespace is a JSON decode error.
 */
export function registerBodyParsers(app: FastifyInstance, options: { maxJsonDepth: number }): void {
  app.removeAllContentTypeParsers()
  const jsonParser = (req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => {
    if (body.length === 0) return done(null, undefined)
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
    if (req.headers['content-type'] === undefined || body === '') return jsonParser(req, body as string, done)
    done(null, body)
  })
}

/** Routes call this first: a too-deep body is a 422 before any validation. */
export function assertBodyShape(req: FastifyRequest): void {
  if (req.bodyTooDeep !== undefined) throw new BodyTooDeepError(req.bodyTooDeep)
}

/** How much of a refused body is read and thrown away so its sender sees the 413 (beyond it: the socket closes). */
const DISCARD_LIMIT_BYTES = 64 * 1024 * 1024

/**
 * After a 413, the rest of the body is read and discarded, up to DISCARD_LIMIT_BYTES, instead of closing
 * the connection: a client still sending when the socket closes gets EPIPE/ECONNRESET, never the answer
 * (about 8 of 20 12 MB posts with Node's fetch). fastify asks for `Connection: close` on a body error;
 * here the connection stays usable once the body has been read (Node discards it), and a sender past the
 * bound is cut off. The server's request timeout (120 s) still bounds a slow one.
 */
export function discardRestOfBody(req: FastifyRequest, reply: FastifyReply): void {
  const raw = req.raw
  if (raw.readableEnded || raw.destroyed) return
  void reply.removeHeader('connection')
  let seen = 0
  raw.on('data', (chunk: Buffer) => {
    seen += chunk.length
    if (seen > DISCARD_LIMIT_BYTES) raw.socket.destroy()
  })
  raw.resume()
}
