import fastifyWebsocket from '@fastify/websocket'
import type { FastifyInstance } from 'fastify'

import { header } from '../route-helpers.js'
import type { HttpRuntime } from '../runtime.js'
import { StreamSession } from './session.js'

/** The open `/ingest/stream` connections; `tick()` runs their timers (tests call it after moving the clock). */
export interface StreamHub {
  readonly size: number
  tick(): void
}

declare module 'fastify' {
  interface FastifyInstance {
    ingestStream: StreamHub
  }
}

/** How often the sessions' timers are looked at (their deadlines are read on the runtime's clock). */
const TICK_MS = 1000
/** After the 1001 close on shutdown, how long a client has to answer before its socket is cut. */
const CLOSE_GRACE_MS = 2000

/**
 * WebSocket `/ingest/stream` (reference §1.16, DESIGN §7): role key from `X-API-Key` on the upgrade or
 * `api_key` in the `connect` frame (never the query string); `FF_WEBSOCKET_ENABLED=false` refuses the
 * upgrade with 403. Messages over WS_MAX_PAYLOAD_BYTES close the connection with 1009 (ws does it before
 * buffering the whole message). On close of the app every connection gets 1001 after its acks.
 */
export function registerStreamRoute(app: FastifyInstance, rt: HttpRuntime): void {
  const { config } = rt
  const sessions = new Set<StreamSession>()
  const hub: StreamHub = {
    get size() {
      return sessions.size
    },
    tick() {
      for (const s of sessions) s.tick()
    },
  }
  app.decorate('ingestStream', hub)
  const timer = setInterval(() => hub.tick(), TICK_MS)
  timer.unref()

  void app.register(async (scope) => {
    await scope.register(fastifyWebsocket, {
      options: { maxPayload: config.websocket.maxPayloadBytes, perMessageDeflate: false },
      // Socket errors (a reset, a protocol error: ws has already sent its close code) are the client's.
      errorHandler: (err, socket) => {
        rt.logger.debug({ err }, 'websocket error')
        if (socket.readyState === socket.OPEN) socket.close(1011, 'Internal error')
      },
      preClose: async () => {
        clearInterval(timer)
        await Promise.all([...sessions].map((s) => s.shutdown(CLOSE_GRACE_MS)))
        await new Promise<void>((resolve) => scope.websocketServer.close(() => resolve()))
      },
    })

    scope.route({
      method: 'GET',
      url: '/ingest/stream',
      onRequest: async (_req, reply) => {
        // The original closed with 1008 before accepting, which the client sees as a 403 on the handshake.
        if (!config.features.websocket) return reply.code(403).send({ detail: 'WebSocket transport disabled' })
        return undefined
      },
      handler: async (_req, reply) => reply.code(426).header('Upgrade', 'websocket').send({ detail: 'Upgrade Required: /ingest/stream is a WebSocket endpoint' }),
      wsHandler: (ws, req) => {
        const session = new StreamSession({
          rt,
          ws,
          socket: req.socket,
          clientIp: req.clientAddress,
          headerKey: header(req, 'x-api-key'),
          logger: rt.logger,
          limits: { ...config.websocket, maxItems: config.http.maxItems, maxJsonDepth: config.http.maxJsonDepth },
        })
        sessions.add(session)
        void session.closed.then(() => sessions.delete(session))
      },
    })
  })
}
