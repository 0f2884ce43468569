import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

import type { AuthOutcome, ServeRuntime } from '../../app/serve.js'
import type { RateLimitRequest } from '../../app/rate-limit/rate-limiter.js'
import { assertBodyShape } from '../app.js'
import { withIdempotency } from '../idempotency.js'
import { parseBulk, parsePacket, parseReading } from '../schemas.js'

function header(req: FastifyRequest, name: string): string | undefined {
  const v = req.headers[name]
  const s = Array.isArray(v) ? v[0] : v
  return s === undefined || s === '' ? undefined : s
}

/** One 401 body for every authentication failure: no detail tells a missing device from a wrong key. */
export function refuse(rt: ServeRuntime, reply: FastifyReply, outcome: Exclude<AuthOutcome, { ok: true }>, route: string): FastifyReply {
  rt.metrics.authFailures.inc({ route, reason: outcome.code })
  if (outcome.reason === 'forbidden') return reply.code(403).send({ detail: 'Not authorized' })
  return reply.code(401).send({ detail: outcome.reason === 'missing' ? 'API key required' : 'Invalid API key' })
}

/** Rate limits are counted after authentication (a bogus key cannot spend a device's quota). */
async function limited(rt: ServeRuntime, reply: FastifyReply, request: RateLimitRequest): Promise<boolean> {
  const r = await rt.rateLimiter.check(request)
  if (r.allowed) return false
  rt.metrics.rateLimited.inc({ scope: r.scope })
  await reply.code(429).header('Retry-After', String(r.retryAfterSeconds)).header('X-RateLimit-Limit', String(r.limit)).send({ detail: r.detail })
  return true
}

/** The IoT write routes (reference §1.9–§1.11) with receipts (DESIGN §3). */
export function registerIngestRoutes(app: FastifyInstance, rt: ServeRuntime): void {
  const { config } = rt

  app.post('/ingest/packets', async (req, reply) => {
    const deviceKey = header(req, 'x-device-key')
    const apiKey = header(req, 'x-api-key')
    if (deviceKey === undefined && apiKey === undefined) return refuse(rt, reply, { ok: false, reason: 'missing', code: 'NO_CREDENTIAL' }, '/ingest/packets')
    assertBodyShape(req)
    const packet = parsePacket(req.body, config.http.maxItems)
    const auth = await rt.auth.device({ deviceUuid: packet.deviceUuid, deviceKey, apiKey, sourceIp: req.clientAddress })
    if (!auth.ok) return refuse(rt, reply, auth, '/ingest/packets')
    if (packet.readings.length === 0) {
      return { inserted: 0, unknown_sensors: [], ingested_ts: rt.clock.now() / 1000, duplicates: 0, rejected: 0, dead_lettered: 0, receipts: [] }
    }
    if (await limited(rt, reply, { ip: req.clientAddress, device: packet.deviceUuid })) return reply
    return withIdempotency(rt, req, reply, auth.principal, () => rt.ingest.ingestPacket(packet))
  })

  app.post('/ingest/readings', async (req, reply) => {
    const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: true, route: '/ingest/readings' })
    if (!auth.ok) return refuse(rt, reply, auth, '/ingest/readings')
    assertBodyShape(req)
    const reading = parseReading(req.body)
    if (await limited(rt, reply, { ip: req.clientAddress, sensors: [reading.sensorId] })) return reply
    return withIdempotency(rt, req, reply, auth.principal, () => rt.ingest.ingestById([reading], 'http'))
  })

  app.post('/ingest/readings/bulk', async (req, reply) => {
    const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: true, route: '/ingest/readings/bulk' })
    if (!auth.ok) return refuse(rt, reply, auth, '/ingest/readings/bulk')
    assertBodyShape(req)
    const readings = parseBulk(req.body, config.http.maxItems)
    if (readings.length === 0) return { inserted: 0, duplicates: 0, rejected: 0, dead_lettered: 0, receipts: [] }
    if (await limited(rt, reply, { ip: req.clientAddress, sensors: [...new Set(readings.map((r) => r.sensorId))] })) return reply
    return withIdempotency(rt, req, reply, auth.principal, () => rt.ingest.ingestById(readings, 'http'))
  })
}

export { header }
