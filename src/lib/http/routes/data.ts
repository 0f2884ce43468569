import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

import { isPlainObject } from '../../domain/ingest/fields.js'
import { parsePointPacket } from '../../domain/ingest/points.js'
import { formatSeriesId, parseSeriesId, validateSeriesKey } from '../../domain/universal/index.js'
import type { ParseIssue } from '../../domain/ingest/issues.js'
import { BodyValidationError, ParamValidationError } from '../../errors/index.js'
import type { AuditRow } from '../../ports/universal-store.js'
import { assertBodyShape } from '../body-parser.js'
import { withIdempotency } from '../idempotency.js'
import { header, refuse } from '../route-helpers.js'
import type { AuthOutcome, HttpRuntime } from '../runtime.js'
import { isoForWire } from '../../domain/time.js'

/**
 * The universal routes (reference §1.13, DESIGN §7): `POST /ingest/data` with a role key (`admin`, or a
 * `source_writer` within its source and domains), and `GET /series/{series_id}/status` for any role key.
 */
export function registerDataRoutes(app: FastifyInstance, rt: HttpRuntime): void {
  const packetOptions = { maxItems: rt.config.http.maxItems, transport: 'http' } as const

  /** One audit row for a request refused whole (401, 403, 422): nothing of it is stored. */
  const auditRefused = (req: FastifyRequest, status: number, error: string): void => {
    const body = isPlainObject(req.body) ? req.body : {}
    const domain = typeof body['domain'] === 'string' ? body['domain'].slice(0, 50) : '?'
    const sourceId = typeof body['source_id'] === 'string' ? body['source_id'].slice(0, 255) : '?'
    const points = Array.isArray(body['data_points']) ? body['data_points'].length : null
    const row: AuditRow = {
      seriesId: `${domain}:${sourceId}:*`,
      domain,
      sourceId,
      value: null,
      classification: null,
      transport: 'http',
      credential: rt.auth.credential(header(req, 'x-api-key')),
      clientIp: req.clientAddress,
      dataTime: rt.clock.now(),
      status: 'refused',
      error: `${status} ${error}`,
      metadata: JSON.stringify({ points }),
    }
    // Best effort: an audit failure never changes the answer.
    rt.universal.points.audit([row]).catch((err: unknown) => rt.logger.warn({ err }, 'audit row not written'))
  }

  const refuseAudited = (req: FastifyRequest, reply: FastifyReply, outcome: Extract<AuthOutcome, { ok: false }>): FastifyReply => {
    auditRefused(req, outcome.reason === 'forbidden' ? 403 : 401, outcome.code)
    return refuse(rt, reply, outcome, '/ingest/data')
  }

  app.post('/ingest/data', async (req, reply) => {
    const apiKey = header(req, 'x-api-key')
    if (apiKey === undefined) return refuseAudited(req, reply, { ok: false, reason: 'missing', code: 'MISSING_CREDENTIAL' })
    assertBodyShape(req)
    const parsed = parsePointPacket(req.body, packetOptions)
    if (!parsed.ok) {
      // An unauthenticated caller learns nothing about the body: the key is checked first.
      const who = await rt.auth.global({ apiKey, sourceIp: req.clientAddress, write: false, route: '/ingest/data' })
      if (!who.ok) return refuseAudited(req, reply, who)
      auditRefused(req, 422, 'BODY_INVALID')
      throw new BodyValidationError(parsed.issues)
    }
    const packet = parsed.value
    const auth = await rt.auth.source({ apiKey, sourceIp: req.clientAddress, sourceId: packet.sourceId, domain: packet.domain, transport: 'http' })
    if (!auth.ok) return refuseAudited(req, reply, auth)
    reply.code(201)
    return withIdempotency(rt, req, reply, auth.principal, () => rt.points.ingestPoints(packet, { transport: 'http', credential: auth.credential, clientIp: req.clientAddress }))
  })

  app.get<{ Params: { series_id: string } }>('/series/:series_id/status', async (req, reply) => {
    const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: false, route: '/series/{series_id}/status' })
    if (!auth.ok) return refuse(rt, reply, auth, '/series/{series_id}/status')
    const issues: ParseIssue[] = []
    const key = validateSeriesKey(parseSeriesId(req.params.series_id), ['series_id'], issues)
    if (!key) throw new ParamValidationError('path', issues)
    const series = { seriesId: formatSeriesId(key), domain: key.domain, sourceId: key.source_id, streamId: key.stream_id }
    const st = await rt.universal.points.seriesStatus(series)
    const a = st.activeAlert
    return {
      series_id: series.seriesId,
      domain: key.domain,
      source_id: key.source_id,
      stream_id: key.stream_id,
      status: st.latest === null ? 'unknown' : a ? 'alert' : 'ok',
      points: st.points,
      latest_value: st.latest?.value ?? null,
      latest_timestamp: st.latest ? isoForWire(st.latest.time) : null,
      classification: st.latest?.classification ?? null,
      active_alert: a ? { id: a.id, severity: a.severity, value: a.value, threshold_violated: a.thresholdViolated, message: a.message, triggered_at: isoForWire(a.triggeredAt) } : null,
    }
  })
}
