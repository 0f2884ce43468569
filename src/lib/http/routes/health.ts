import type { FastifyInstance } from 'fastify'

import { LEGACY_FLOATS, useFloats } from '../float-json.js'
import type { HttpRuntime } from '../runtime.js'

/** Liveness, readiness and the legacy health routes (reference §1.3–§1.7, §1.13). No credential. */
export function registerHealthRoutes(app: FastifyInstance, rt: HttpRuntime): void {
  app.get('/health', () => ({ status: 'ok' }))

  // 503 while any store is down: a load balancer stops sending traffic this replica cannot commit.
  app.get('/ready', async (_req, reply) => {
    try {
      await Promise.all(rt.databases.map((db) => db.ping()))
      return { status: 'ready' }
    } catch (err) {
      rt.logger.warn({ err: (err as Error).message }, 'not ready')
      return reply.code(503).send({ detail: 'not ready' })
    }
  })

  app.get('/health/postgres', async (_req, reply) => {
    useFloats(reply, LEGACY_FLOATS.postgresHealth)
    const pg = rt.databases.find((db) => db.engine === 'postgres')
    if (!pg) return { status: 'disabled', message: 'PostgreSQL not configured (POSTGRES_URL not set)' }
    const t0 = performance.now()
    try {
      await pg.ping()
      return { status: 'ok', latency_ms: Math.round((performance.now() - t0) * 100) / 100 }
    } catch (err) {
      rt.logger.warn({ err: (err as Error).message }, 'postgres health')
      return { status: 'error', message: 'PostgreSQL connection failed' }
    }
  })

  app.get('/ingest/health', async () => {
    let universalUp = true
    try {
      await rt.universal.ping()
    } catch {
      universalUp = false
    }
    const postgres = rt.config.storage.postgresUrl !== undefined
    const ml = rt.mlStream.status()
    return {
      status: universalUp ? 'healthy' : 'degraded',
      iot_domain: 'available',
      multi_domain: universalUp ? 'available' : 'unavailable',
      postgres_configured: postgres,
      universal_engine: rt.universal.engine,
      message: universalUp ? 'Multi-domain ingestion ready' : 'Universal store unavailable',
      // DESIGN §11: whether clean readings reach the ML consumers, and how far behind the stream is.
      ml_stream: { status: !ml.enabled ? 'off' : ml.available ? 'on' : 'unavailable', reason: ml.reason, queued: ml.queued, last_publish_age_seconds: ml.lastPublishAgeSeconds, throttled: ml.throttled, dropped: ml.dropped, last_error: ml.lastError },
    }
  })
}
