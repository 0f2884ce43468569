import type { AddressInfo } from 'node:net'

import Fastify, { type FastifyBaseLogger, type FastifyInstance, LogController } from 'fastify'

import { clientIp } from '../app/rate-limit/client-ip.js'
import { header } from './route-helpers.js'
import { registerHealthRoutes } from './routes/health.js'
import { type MqttAwareRuntime, registerMqttRoutes } from './routes/mqtt.js'

/**
 * The probe app of `ingest mqtt listen --port P` (DESIGN §8): `/health` (alive), `/ready` (503 while a
 * store is down; also `/health/postgres` and `/ingest/health`), `/mqtt/health`, `/mqtt/stats` and
 * `/metrics`, for container probes and scrapers. No ingest route: this process ingests only from MQTT.
 */
export function buildProbeApp(rt: MqttAwareRuntime): FastifyInstance {
  const app: FastifyInstance = Fastify({
    loggerInstance: rt.logger as unknown as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
  })
  app.decorateRequest('clientAddress', '')
  app.addHook('onRequest', (req, _reply, done) => {
    req.clientAddress = clientIp({ socketAddress: req.socket.remoteAddress, headers: req.headers, trustProxy: rt.config.http.trustProxy })
    done()
  })
  app.setNotFoundHandler((_req, reply) => reply.code(404).send({ detail: 'Not Found' }))

  // /health, /ready (503 while a store is down) and the legacy health routes, as serve answers them.
  registerHealthRoutes(app, rt)
  app.get('/metrics', async (req, reply) => {
    if (rt.config.auth.metricsApiKey !== undefined && !rt.auth.metrics(header(req, 'x-api-key'))) {
      return reply.code(401).send({ detail: header(req, 'x-api-key') === undefined ? 'API key required' : 'Invalid API key' })
    }
    rt.metrics.queueDepth.set(rt.ingest.committer.queued)
    return reply.type(rt.metrics.registry.contentType).send(await rt.metrics.registry.metrics())
  })
  registerMqttRoutes(app, rt)
  return app
}

/** Listens on the probe app; close() stops it (the runtime is closed by its owner). */
export async function startProbeServer(rt: MqttAwareRuntime, options: { host: string; port: number }): Promise<{ url: string; port: number; close(): Promise<void> }> {
  const app = buildProbeApp(rt)
  await app.listen({ host: options.host, port: options.port })
  const address = app.server.address() as AddressInfo
  return { url: `http://${options.host}:${address.port}`, port: address.port, close: () => app.close() }
}
