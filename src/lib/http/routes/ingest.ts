import type { FastifyInstance } from 'fastify'

import { isPlainObject } from '../../domain/ingest/fields.js'
import { parseIdReading, parseIdReadings, parsePacket } from '../../domain/ingest/readings.js'
import { normaliseUuid } from '../../domain/uuid.js'
import { assertBodyShape } from '../body-parser.js'
import { LEGACY_FLOATS, useFloats } from '../float-json.js'
import { withIdempotency } from '../idempotency.js'
import { bodyOf, header, limited, refuse } from '../route-helpers.js'
import type { AuthOutcome, HttpRuntime } from '../runtime.js'

/** The IoT write routes (reference §1.9–§1.11) with receipts (DESIGN §3). */
export function registerIngestRoutes(app: FastifyInstance, rt: HttpRuntime): void {
  const { config } = rt
  const packetOptions = { maxItems: config.http.maxItems, transport: 'http' } as const
  const listOptions = { maxItems: config.http.maxItems }

  app.post('/ingest/packets', async (req, reply) => {
    useFloats(reply, LEGACY_FLOATS.packet)
    const deviceKey = header(req, 'x-device-key')
    const apiKey = header(req, 'x-api-key')
    if (deviceKey === undefined && apiKey === undefined) return refuse(rt, reply, { ok: false, reason: 'missing', code: 'NO_CREDENTIAL' }, '/ingest/packets')
    let auth: AuthOutcome | undefined
    if (deviceKey === undefined) {
      // The legacy key does not depend on the device: it is checked before the body, as the legacy
      // header dependency was (a wrong key is 401 whatever the body). The device is only the audit target.
      const raw = isPlainObject(req.body) ? req.body['device_uuid'] : undefined
      auth = await rt.auth.device({ deviceUuid: (typeof raw === 'string' ? normaliseUuid(raw) : undefined) ?? '', deviceKey, apiKey, sourceIp: req.clientAddress })
      if (!auth.ok) return refuse(rt, reply, auth, '/ingest/packets')
    }
    assertBodyShape(req)
    const packet = bodyOf(parsePacket(req.body, packetOptions))
    // A device key is bound to its device: the body must say which before it can be checked.
    auth ??= await rt.auth.device({ deviceUuid: packet.deviceUuid, deviceKey, apiKey, sourceIp: req.clientAddress })
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
    const reading = bodyOf(parseIdReading(req.body))
    if (await limited(rt, reply, { ip: req.clientAddress, sensors: [reading.sensorId] })) return reply
    return withIdempotency(rt, req, reply, auth.principal, () => rt.ingest.ingestById([reading], 'http'))
  })

  app.post('/ingest/readings/bulk', async (req, reply) => {
    const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: true, route: '/ingest/readings/bulk' })
    if (!auth.ok) return refuse(rt, reply, auth, '/ingest/readings/bulk')
    assertBodyShape(req)
    const readings = bodyOf(parseIdReadings(req.body, listOptions))
    if (readings.length === 0) return { inserted: 0, duplicates: 0, rejected: 0, dead_lettered: 0, receipts: [] }
    if (await limited(rt, reply, { ip: req.clientAddress, sensors: [...new Set(readings.map((r) => r.sensorId))] })) return reply
    return withIdempotency(rt, req, reply, auth.principal, () => rt.ingest.ingestById(readings, 'http'))
  })
}
