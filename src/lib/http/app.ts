import { randomUUID } from 'node:crypto'

import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import secureJson from 'secure-json-parse'

import type { ServeRuntime } from '../app/serve.js'
import { clientIp } from '../app/rate-limit/client-ip.js'
import type { AppError, UnavailableError } from '../errors/index.js'
import { registerDocs } from './docs.js'
import { sendError } from './error-handler.js'
import { registerHealthRoutes } from './routes/health.js'
import { registerIngestRoutes } from './routes/ingest.js'
import { registerReadRoutes } from './routes/read.js'
import { registerResilienceRoutes } from './routes/resilience.js'
import { BodyInvalid, jsonDepthExceeds } from './validation.js'

declare module 'fastify' {
  interface FastifyRequest {
    clientAddress: string
    /** Set when the JSON body exceeded the depth limit (answered 422 by the route). */
    bodyTooDeep?: boolean
  }
}

/** Raised by the JSON parser; the error handler turns it into the FastAPI 422 `json_invalid` list. */
export class JsonInvalid extends Error {
  constructor(
    readonly position: number,
    readonly reason: string,
  ) {
    super('JSON decode error')
  }
}

export class ProtoPoisoning extends Error {}

function parseJson(text: string): unknown {
  try {
    return secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch (err) {
    if (err instanceof SyntaxError && /forbidden prototype property/i.test(err.message)) throw new ProtoPoisoning(err.message)
    const msg = err instanceof Error ? err.message : String(err)
    const pos = Number(/position (\d+)/.exec(msg)?.[1] ?? 0)
    throw new JsonInvalid(pos, text.trim() === '' ? 'Expecting value' : msg.replace(/^Unexpected token.*?(, |$)/, 'Unexpected token$1').slice(0, 200))
  }
}

/**
 * Builds the fastify app (DESIGN §9); `serve` listens on it. The legacy FastAPI wire format is owned by
 * the error handler; bodies are parsed here (secure-json-parse, depth limit, a missing Content-Type is
 * JSON as in the original) and validated without coercion in the routes.
 */
export function buildApp(rt: ServeRuntime, state: { closing: boolean } = { closing: false }): FastifyInstance {
  const { config } = rt
  const app: FastifyInstance = Fastify({
    loggerInstance: rt.logger as unknown as FastifyBaseLogger,
    disableRequestLogging: true,
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    requestTimeout: 120_000,
    return503OnClosing: true,
    genReqId: () => randomUUID(),
  })

  app.decorateRequest('clientAddress', '')
  app.addHook('onRequest', async (req) => {
    req.clientAddress = clientIp({ socketAddress: req.socket.remoteAddress, headers: req.headers, trustProxy: config.http.trustProxy })
  })

  app.removeAllContentTypeParsers()
  const jsonParser = (req: FastifyRequest, body: string, done: (err: Error | null, value?: unknown) => void) => {
    try {
      const value = parseJson(body)
      if (jsonDepthExceeds(value, config.http.maxJsonDepth)) req.bodyTooDeep = true
      done(null, value)
    } catch (err) {
      done(err as Error)
    }
  }
  app.addContentTypeParser(['application/json', 'application/*+json'], { parseAs: 'string' }, jsonParser)
  // A missing Content-Type is parsed as JSON (as the original did); any other type reaches the
  // validator as a string and fails with 422.
  app.addContentTypeParser('*', { parseAs: 'string' }, (req, body, done) => {
    if (req.headers['content-type'] === undefined) return jsonParser(req, body as string, done)
    done(null, body)
  })

  app.setErrorHandler((err, req, reply) => sendError(rt, err, req, reply))
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ detail: 'Not Found' })
  })

  // While shutting down, every answer closes its connection: an idle keep-alive client must not hold
  // the exit until the deadline.
  app.addHook('onSend', async (_req, reply) => {
    if (state.closing) void reply.header('connection', 'close')
  })

  app.addHook('onResponse', async (req, reply) => {
    rt.metrics.requests.inc({ route: req.routeOptions.url ?? 'unmatched', method: req.method, status: String(reply.statusCode) })
  })

  registerHealthRoutes(app, rt)
  registerIngestRoutes(app, rt)
  registerReadRoutes(app, rt)
  registerResilienceRoutes(app, rt)
  registerDocs(app)
  return app
}

/** Routes call this first: a too-deep body is a 422 before any validation. */
export function assertBodyShape(req: FastifyRequest): void {
  if (req.bodyTooDeep) {
    throw new BodyInvalid([{ type: 'json_too_deep', loc: ['body'], msg: `JSON nesting deeper than ${req.server.initialConfig.bodyLimit ? 'the limit' : 'allowed'}`, input: null }])
  }
}

export function unavailable(reply: FastifyReply, err: UnavailableError | AppError, retryAfter = 1): FastifyReply {
  return reply.code(503).header('Retry-After', String(retryAfter)).send({ detail: err.message })
}
