import { randomUUID } from 'node:crypto'

import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'

import { clientIp } from '../app/rate-limit/client-ip.js'
import { trackAllowedMethods } from './allowed-methods.js'
import { registerBodyParsers } from './body-parser.js'
import { registerDocs } from './docs.js'
import { sendError } from './error-handler.js'
import { registerCsvRoutes } from './routes/csv.js'
import { registerHealthRoutes } from './routes/health.js'
import { registerDataRoutes } from './routes/data.js'
import { registerIngestRoutes } from './routes/ingest.js'
import { registerMqttRoutes } from './routes/mqtt.js'
import { registerReadRoutes } from './routes/read.js'
import { registerResilienceRoutes } from './routes/resilience.js'
import type { HttpRuntime } from './runtime.js'
import { registerStreamRoute } from './ws/stream-route.js'

declare module 'fastify' {
  interface FastifyRequest {
    clientAddress: string
  }
}

/**
 * Builds the fastify app (DESIGN §9); `serve` listens on it. The legacy FastAPI wire format is owned by
 * the error handler; bodies are parsed by body-parser.ts and validated without coercion by the
 * transport-neutral parsers of lib/domain/ingest in the routes.
 */
export function buildApp(rt: HttpRuntime, state: { closing: boolean } = { closing: false }): FastifyInstance {
  const { config } = rt
  const app: FastifyInstance = Fastify({
    loggerInstance: rt.logger as unknown as FastifyBaseLogger,
    // Request lines are not logged (errors are, by the error handler); passed through logController, the
    // top-level disableRequestLogging option prints FSTDEP023 on every start.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: config.http.bodyLimitBytes,
    trustProxy: config.http.trustProxy,
    requestTimeout: 120_000,
    return503OnClosing: true,
    genReqId: () => randomUUID(),
  })

  app.decorateRequest('clientAddress', '')
  app.addHook('onRequest', (req, _reply, done) => {
    req.clientAddress = clientIp({ socketAddress: req.socket.remoteAddress, headers: req.headers, trustProxy: config.http.trustProxy })
    done()
  })

  registerBodyParsers(app, { maxJsonDepth: config.http.maxJsonDepth })

  app.setErrorHandler((err, req, reply) => sendError(rt, err, req, reply))
  const allowedMethods = trackAllowedMethods(app)
  app.setNotFoundHandler((req, reply) => {
    const allowed = allowedMethods(req.url)
    if (allowed.length > 0) void reply.code(405).header('Allow', allowed.join(', ')).send({ detail: 'Method Not Allowed' })
    else void reply.code(404).send({ detail: 'Not Found' })
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
  registerDataRoutes(app, rt)
  registerStreamRoute(app, rt)
  registerReadRoutes(app, rt)
  registerCsvRoutes(app, rt)
  registerResilienceRoutes(app, rt)
  registerMqttRoutes(app, rt)
  registerDocs(app)
  return app
}
