import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

import { sensorStatus } from '../../app/sensor-status.js'
import { strictInt } from '../../domain/ingest/fields.js'
import type { ParseIssue } from '../../domain/ingest/issues.js'
import { ParamValidationError } from '../../errors/index.js'
import { LEGACY_FLOATS, useFloats } from '../float-json.js'
import { header, refuse } from '../route-helpers.js'
import type { HttpRuntime } from '../runtime.js'

/** Reads need the global key or any role key (DESIGN §7); `/metrics` only when METRICS_API_KEY is set. */
export function registerReadRoutes(app: FastifyInstance, rt: HttpRuntime): void {
  const guard = async (req: FastifyRequest, reply: FastifyReply, route: string): Promise<boolean> => {
    const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: false, route })
    if (auth.ok) return true
    await refuse(rt, reply, auth, route)
    return false
  }

  // The legacy `int` parameter: any integer, negative ones included (they name no sensor: 200 unknown).
  const sensorIdParam = (raw: string, location: 'path' | 'query'): number => {
    const issues: ParseIssue[] = []
    const id = strictInt(raw, ['sensor_id'], issues)
    if (id === undefined) throw new ParamValidationError(location, issues)
    return id
  }

  app.get<{ Params: { sensor_id: string } }>('/sensors/:sensor_id/status', async (req, reply) => {
    if (!(await guard(req, reply, '/sensors/{sensor_id}/status'))) return reply
    useFloats(reply, LEGACY_FLOATS.sensorStatus)
    return sensorStatus(rt.iot.status, sensorIdParam(req.params.sensor_id, 'path'), { now: rt.clock.now(), staleAfterMs: rt.config.ingest.staleAfterSeconds * 1000 })
  })

  const diagnostics = async (req: FastifyRequest<{ Params: { sensor_id?: string }; Querystring: { sensor_id?: string | string[] } }>, reply: FastifyReply) => {
    if (!(await guard(req, reply, '/api/ingestion/diagnostics'))) return reply
    useFloats(reply, LEGACY_FLOATS.diagnostics)
    if (req.params.sensor_id !== undefined) return rt.diagnostics.snapshot(sensorIdParam(req.params.sensor_id, 'path'))
    // A repeated query parameter counts once, the last one (as FastAPI reads a scalar parameter).
    const query = req.query.sensor_id
    const raw = Array.isArray(query) ? query[query.length - 1] : query
    return rt.diagnostics.snapshot(raw === undefined ? undefined : sensorIdParam(raw, 'query'))
  }
  for (const base of ['/api/ingestion/diagnostics', '/diagnostics']) {
    app.get(base, diagnostics)
    app.get(`${base}/:sensor_id`, diagnostics)
  }

  app.get('/api/ingestion/health', async (req, reply) => {
    if (!(await guard(req, reply, '/api/ingestion/health'))) return reply
    useFloats(reply, LEGACY_FLOATS.ingestionHealth)
    return rt.diagnostics.health()
  })

  app.get('/metrics', async (req, reply) => {
    if (rt.config.auth.metricsApiKey !== undefined && !rt.auth.metrics(header(req, 'x-api-key'))) {
      return reply.code(401).send({ detail: header(req, 'x-api-key') === undefined ? 'API key required' : 'Invalid API key' })
    }
    rt.metrics.queueDepth.set(rt.ingest.committer.queued)
    return reply.type(rt.metrics.registry.contentType).send(await rt.metrics.registry.metrics())
  })
}
