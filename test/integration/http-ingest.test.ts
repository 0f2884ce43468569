import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'

import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { AUTH_CACHE_TTL_MS } from '../../src/lib/app/authenticate.js'
import { IngestService } from '../../src/lib/app/ingest/ingest-service.js'
import { createKey, revokeKey } from '../../src/lib/app/keys.js'
import { createMetrics } from '../../src/lib/app/metrics.js'
import { buildApp } from '../../src/lib/http/app.js'
import { DEMO_DEVICE, DEMO_SENSOR, engineList, type Harness, packet, startHarness } from '../helpers/http-harness.js'

const engines = await engineList()
const execFileAsync = promisify(execFile)

interface PacketReply {
  inserted: number
  duplicates: number
  rejected: number
  dead_lettered: number
  unknown_sensors: string[]
  ingested_ts: number
  receipts: Array<{ index: number; status: string; code?: string; classification?: string }>
}

/** A FastAPI 422 answer. */
interface Detail {
  detail: Array<{ type: string; loc: Array<string | number>; msg: string; input?: unknown; ctx?: Record<string, unknown> }>
}

describe.each(engines)('HTTP ingest on %s', (engine) => {
  let h: Harness
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json', 'x-device-key': h.deviceKey, ...headers }, payload: typeof body === 'string' ? body : JSON.stringify(body) })
  const count = async (sql: string, params: unknown[] = []) => Number((await h.sql(sql, params))[0]?.['n'])
  const nowS = () => h.clock.now() / 1000

  beforeAll(async () => {
    h = await startHarness(engine)
  })
  afterAll(async () => {
    await h.close()
  })

  it('stores a 100-reading packet; the same packet again stores nothing new and reports 100 duplicates', async () => {
    const body = packet({ values: Array.from({ length: 100 }, (_, i) => 30 + (i % 5) * 0.1), start: nowS() - 7000 })
    const first = await post(body)
    expect(first.statusCode, first.body).toBe(200)
    const a = first.json<PacketReply>()
    expect(a).toMatchObject({ inserted: 100, duplicates: 0, rejected: 0, dead_lettered: 0, unknown_sensors: [] })
    expect(a.receipts).toHaveLength(100)
    expect(typeof a.ingested_ts).toBe('number')
    const second = (await post(body)).json<PacketReply>()
    expect(second).toMatchObject({ inserted: 0, duplicates: 100, rejected: 0 })
    expect(second.receipts.every((r) => r.status === 'duplicate')).toBe(true)
    expect(await count('SELECT count(*) AS n FROM sensor_readings')).toBe(100)
    // Another replica (or this one after a restart) has an empty pre-filter: the database decides. On
    // PostgreSQL the optimistic COPY meets the stored keys and the flush is redone with the pre-check.
    const other = new IngestService({ config: h.ctx.config, logger: h.ctx.logger, clock: h.clock, store: h.ctx.iot.ingest, metrics: createMetrics() })
    try {
      const mixed = { ...body, readings: [...body.readings.slice(0, 50), { ...body.readings[0], value: 77.7, sensor_ts: (body.readings[0]?.sensor_ts ?? 0) - 1 }] }
      const r = await other.ingestPacket({ deviceUuid: DEMO_DEVICE, ts: null, transport: 'http', readings: mixed.readings.map((x) => ({ sensorUuid: x.sensor_uuid ?? DEMO_SENSOR, value: x.value, sensorTs: x.sensor_ts, sequence: null })) })
      expect(r).toMatchObject({ inserted: 1, duplicates: 50 })
    } finally {
      await other.close()
    }
    expect(await count('SELECT count(*) AS n FROM sensor_readings')).toBe(101)
  })

  it('after warm-up, an out-of-range reading opens one critical alert with one notification; repeats keep one; clean readings resolve it', async () => {
    await h.reset()
    const t0 = nowS() - 3000
    // Readings 1..10 only warm up, even out of range.
    const warm = (await post(packet({ values: [25, 25, 25, 25, 25, 25, 25, 25, 25, 99], start: t0 }))).json<PacketReply>()
    expect(warm.inserted).toBe(10)
    expect(await count(`SELECT count(*) AS n FROM alerts`)).toBe(0)
    const hit = (await post(packet({ values: [95], start: t0 + 10 }))).json<PacketReply>()
    expect(hit.receipts[0]?.classification).toBe('ALERT')
    const alerts = await h.sql(`SELECT severity, status FROM alerts`)
    expect(alerts).toEqual([{ severity: 'critical', status: 'active' }])
    expect(await count(`SELECT count(*) AS n FROM alert_notifications WHERE source = 'alert' AND severity = 'critical'`)).toBe(1)
    const sensorId = Number((await h.sql('SELECT id FROM sensors'))[0]?.['id'])
    const status = await h.app.inject({ url: `/sensors/${sensorId}/status`, headers: { 'x-api-key': 'test-global-key' } })
    expect(status.json()).toMatchObject({ sensor_id: sensorId, final_state: 'alert', alert_active: { severity: 'critical', status: 'active' } })
    // Concurrent violating readings of the one sensor never make two active alerts.
    const burst = await Promise.all(Array.from({ length: 12 }, (_, i) => post(packet({ values: [96 + i], start: t0 + 11 + i }))))
    expect(burst.every((r) => r.statusCode === 200)).toBe(true)
    expect(await count(`SELECT count(*) AS n FROM alerts WHERE status = 'active'`)).toBe(1)
    expect(await count(`SELECT count(*) AS n FROM alert_notifications`)).toBe(1)
    // Back in range: the first reading is a delta spike (a 77-unit drop), then resolve_after_readings (3)
    // clean readings resolve the alert and the spike.
    await post(packet({ values: [30, 30.5, 30, 30.2], start: t0 + 30 }))
    expect(await h.sql(`SELECT status FROM alerts`)).toEqual([{ status: 'resolved' }])
    const after = await h.app.inject({ url: `/sensors/${sensorId}/status`, headers: { 'x-api-key': 'test-global-key' } })
    expect(after.json()).toMatchObject({ final_state: 'unknown', alert_active: null, warning_active: null, operational_state: 'NORMAL' })
  })

  it('a critical after a warning escalates: the warning is resolved and a critical one opened', async () => {
    await h.reset()
    const t0 = nowS() - 2500
    await post(packet({ values: Array.from({ length: 10 }, () => 72), start: t0 - 10 }))
    // comfort (warning) needs 2 consecutive readings outside 20..70.
    const w = (await post(packet({ values: [75, 76], start: t0 }))).json<PacketReply>()
    expect(w.receipts.map((r) => r.classification)).toEqual([undefined, 'ALERT'])
    expect(await h.sql(`SELECT severity FROM alerts WHERE status = 'active'`)).toEqual([{ severity: 'warning' }])
    await post(packet({ values: [95], start: t0 + 2 }))
    expect(await h.sql(`SELECT severity FROM alerts WHERE status = 'active'`)).toEqual([{ severity: 'critical' }])
    expect(await count(`SELECT count(*) AS n FROM alerts WHERE status = 'resolved' AND severity = 'warning'`)).toBe(1)
    await post(packet({ values: [69, 68.5, 69, 68.8], start: t0 + 3 }))
    expect(await count(`SELECT count(*) AS n FROM alerts WHERE status = 'active'`)).toBe(0)
  })

  it('a delta spike opens one active DELTA_SPIKE event (and its cooldown adds none)', async () => {
    await h.reset()
    const t0 = nowS() - 2000
    await post(packet({ values: Array.from({ length: 10 }, () => 30), start: t0 - 10 }))
    await post(packet({ values: [30, 30.1, 30], start: t0 }))
    const spike = (await post(packet({ values: [45, 60], start: t0 + 3 }))).json<PacketReply>()
    expect(spike.receipts[0]?.classification).toBe('WARNING')
    const events = await h.sql(`SELECT event_code, status, event_type FROM ml_events WHERE event_code = 'DELTA_SPIKE'`)
    expect(events).toEqual([{ event_code: 'DELTA_SPIKE', status: 'active', event_type: 'warning' }])
    expect(await count(`SELECT count(*) AS n FROM alert_notifications WHERE source = 'ml_event'`)).toBe(1)
    const sensorId = Number((await h.sql('SELECT id FROM sensors'))[0]?.['id'])
    const status = await h.app.inject({ url: `/sensors/${sensorId}/status`, headers: { 'x-api-key': 'test-global-key' } })
    expect(status.json()).toMatchObject({ final_state: 'warning', warning_active: { event_code: 'DELTA_SPIKE', payload: { triggered_thresholds: expect.arrayContaining(['abs_delta']) as unknown } } })
  })

  it('concurrent flushes of one sensor with no rule-state row yet serialise on its row: no reading is lost from the state', async () => {
    await h.reset()
    const services = [0, 1, 2].map(() => new IngestService({ config: h.ctx.config, logger: h.ctx.logger, clock: h.clock, store: h.ctx.iot.ingest, metrics: createMetrics() }))
    try {
      const t = nowS() - 1500
      await Promise.all(services.map((svc, k) => svc.ingestPacket({ deviceUuid: DEMO_DEVICE, ts: null, transport: 'http', readings: Array.from({ length: 10 }, (_, i) => ({ sensorUuid: DEMO_SENSOR, value: 30 + i / 100, sensorTs: t + k * 10 + i, sequence: null })) })))
    } finally {
      for (const svc of services) await svc.close()
    }
    const state = (await h.sql('SELECT state FROM sensor_rule_state'))[0]?.['state']
    const parsed = (typeof state === 'string' ? JSON.parse(state) : state) as { readingsSeen: number }
    // A flush that commits after a newer one holds late readings, which move no state (DESIGN §4); every
    // other reading counts. A lost update would drop a whole flush's count.
    const reasons = await h.sql('SELECT reason_codes FROM sensor_readings')
    const late = reasons.filter((r) => JSON.stringify(r['reason_codes'] ?? null).includes('LATE_READING')).length
    expect(parsed.readingsSeen + late).toBe(30)
    expect(await count('SELECT count(*) AS n FROM sensor_readings')).toBe(30)
  })

  it('guard failures answer 200 with per-item rejected codes while the rest of the packet is stored', async () => {
    const before = await count('SELECT count(*) AS n FROM sensor_readings')
    const t = nowS()
    const body = {
      device_uuid: DEMO_DEVICE.toUpperCase(),
      readings: [
        { sensor_uuid: DEMO_SENSOR, value: 30, sensor_ts: t - 100 },
        { sensor_uuid: DEMO_SENSOR, value: 30, sensor_ts: t + 3600 },
        { sensor_uuid: DEMO_SENSOR, value: 30, sensor_ts: t - 40 * 86400 },
        { sensor_uuid: '00000000-0000-4000-8000-000000000000', value: 1 },
        { sensor_uuid: DEMO_SENSOR, value: 600, sensor_ts: t - 99 },
        { sensor_uuid: `{${DEMO_SENSOR.replaceAll('-', '')}}`, value: '31.5', sensor_ts: t - 98 },
      ],
    }
    const r = await post(body)
    expect(r.statusCode).toBe(200)
    const reply = r.json<PacketReply>()
    expect(reply.receipts.map((x) => x.status)).toEqual(['stored', 'rejected', 'rejected', 'rejected', 'rejected', 'stored'])
    expect(reply.receipts.map((x) => x.code ?? null)).toEqual([null, 'TIMESTAMP_IN_FUTURE', 'TIMESTAMP_TOO_OLD', 'UNKNOWN_SENSOR', 'VALUE_OUTSIDE_PHYSICAL_LIMITS', null])
    expect(reply).toMatchObject({ inserted: 2, rejected: 4, unknown_sensors: ['00000000-0000-4000-8000-000000000000'] })
    expect(await count('SELECT count(*) AS n FROM sensor_readings')).toBe(before + 2)
    // An inactive sensor is refused too.
    await h.sql(`UPDATE sensors SET is_active = ${engine === 'postgres' ? 'false' : '0'}`)
    h.rt.ingest.resolver.clear()
    const inactive = (await post(packet({ values: [30], start: t - 50 }))).json<PacketReply>()
    expect(inactive.receipts[0]).toMatchObject({ status: 'rejected', code: 'SENSOR_INACTIVE' })
    await h.sql(`UPDATE sensors SET is_active = ${engine === 'postgres' ? 'true' : '1'}`)
    h.rt.ingest.resolver.clear()
  })

  it('bad input never stores anything and never stops the server', async () => {
    const before = await count('SELECT count(*) AS n FROM sensor_readings')
    const t = nowS() - 500
    const good = packet({ values: [30], start: t })
    const malformed = await post('{"device_uuid": "x", "readings": [')
    expect(malformed.statusCode).toBe(422)
    expect(malformed.json<Detail>().detail[0]?.type).toBe('json_invalid')
    for (const [value, type] of [
      [true, 'float_type'],
      [null, 'float_type'],
      ['1e400', 'float_parsing'],
      ['NaN', 'float_parsing'],
      ['0x10', 'float_parsing'],
      [[3], 'float_type'],
    ] as const) {
      const r = await post({ ...good, readings: [{ ...good.readings[0], value }] })
      expect(r.statusCode, JSON.stringify(value)).toBe(422)
      expect(r.json<Detail>().detail[0]).toMatchObject({ type, loc: ['body', 'readings', 0, 'value'] })
    }
    const overflow = await post(`{"device_uuid":"${DEMO_DEVICE}","readings":[{"sensor_uuid":"${DEMO_SENSOR}","value":1e400}]}`)
    expect(overflow.statusCode).toBe(422)
    expect(overflow.json<Detail>().detail[0]).toMatchObject({ type: 'finite_number', loc: ['body', 'readings', 0, 'value'] })
    const big = await post({ ...good, pad: 'x'.repeat(1_100_000) })
    expect(big.statusCode).toBe(413)
    const deep = await post(`{"device_uuid":"${DEMO_DEVICE}","readings":[],"x":${'['.repeat(200)}${']'.repeat(200)}}`)
    expect(deep.statusCode).toBe(422)
    const proto = await post(`{"device_uuid":"${DEMO_DEVICE}","readings":[],"__proto__":{"polluted":1}}`)
    expect(proto.statusCode).toBe(400)
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined()
    const badUuid = await post({ ...good, device_uuid: 'not-a-uuid' })
    expect(badUuid.statusCode).toBe(422)
    expect(await count('SELECT count(*) AS n FROM sensor_readings')).toBe(before)
    expect((await h.app.inject({ url: '/health' })).statusCode).toBe(200)
  })

  it('wrong, expired or revoked keys and unknown devices get one 401 body; no credential says so', async () => {
    const body = packet({ values: [30], start: nowS() - 400 })
    const none = await h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) })
    expect(none.statusCode).toBe(401)
    expect(none.json()).toEqual({ detail: 'API key required' })
    const bodies = new Set<string>()
    const send = (headers: Record<string, string>) => h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(body) })
    for (const headers of [{ 'x-device-key': 'wrong' }, { 'x-device-key': `${h.deviceKey.slice(0, -1)}x` }, { 'x-device-key': h.deviceKey.replace(/_[A-Za-z0-9]{12}_/, '_AAAAAAAAAAAA_') }, { 'x-api-key': 'nope' }]) {
      const r = await send(headers)
      expect(r.statusCode, JSON.stringify(headers)).toBe(401)
      bodies.add(r.body)
    }
    const otherDevice = await post({ ...body, device_uuid: '11111111-2222-4333-8444-555555555555' })
    expect(otherDevice.statusCode).toBe(401)
    bodies.add(otherDevice.body)
    // A revoked key and an expired key answer the same (after the auth cache's revocation window).
    const revoked = await createKey(h.ctx, { device: DEMO_DEVICE })
    const expiring = await createKey(h.ctx, { device: DEMO_DEVICE, expiresIn: 60 })
    expect((await send({ 'x-device-key': revoked.key })).statusCode).toBe(200)
    expect((await send({ 'x-device-key': expiring.key })).statusCode).toBe(200)
    await revokeKey(h.ctx, revoked.kid)
    h.clock.advance(AUTH_CACHE_TTL_MS + 61_000)
    for (const key of [revoked.key, expiring.key]) {
      const r = await send({ 'x-device-key': key })
      expect(r.statusCode).toBe(401)
      bodies.add(r.body)
    }
    expect([...bodies]).toEqual(['{"detail":"Invalid API key"}'])
    // The correct global key is accepted on packets (LEGACY_API_KEY_ALLOWED defaults to true).
    const legacy = await h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json', 'x-api-key': 'test-global-key' }, payload: JSON.stringify(body) })
    expect(legacy.statusCode).toBe(200)
    // Legacy routes need the global key.
    const r = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers: { 'content-type': 'application/json', 'x-api-key': 'wrong' }, payload: '{"sensor_id":1,"value":1}' })
    expect(r.statusCode).toBe(401)
    expect((await h.app.inject({ url: '/sensors/1/status' })).json()).toEqual({ detail: 'API key required' })
  })

  it('legacy endpoints store by sensor id with receipts', async () => {
    const sensorId = Number((await h.sql('SELECT id FROM sensors'))[0]?.['id'])
    const headers = { 'content-type': 'application/json', 'x-api-key': 'test-global-key' }
    const ts = new Date(h.clock.now() - 300_000).toISOString()
    const one = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers, payload: JSON.stringify({ sensor_id: sensorId, value: 31.2, timestamp: ts }) })
    expect(one.json()).toMatchObject({ inserted: 1, duplicates: 0 })
    const again = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers, payload: JSON.stringify({ sensor_id: sensorId, value: 31.2, timestamp: ts }) })
    expect(again.json()).toMatchObject({ inserted: 0, duplicates: 1 })
    const bulk = await h.app.inject({ method: 'POST', url: '/ingest/readings/bulk', headers, payload: JSON.stringify({ readings: [{ sensor_id: sensorId, value: 1 }, { sensor_id: 999999, value: 2 }] }) })
    expect(bulk.json()).toMatchObject({ inserted: 1, rejected: 1, receipts: [{ status: 'stored' }, { status: 'rejected', code: 'UNKNOWN_SENSOR' }] })
    expect((await h.app.inject({ method: 'POST', url: '/ingest/readings/bulk', headers, payload: '{}' })).json()).toMatchObject({ inserted: 0 })
    const notInt = await h.app.inject({ url: '/sensors/abc/status', headers: { 'x-api-key': 'test-global-key' } })
    expect(notInt.statusCode).toBe(422)
  })

  it('Idempotency-Key: the same key and body replays the first answer, another body is 422', async () => {
    const body = packet({ values: [33, 34], start: nowS() - 200 })
    const a = await post(body, { 'idempotency-key': 'k-1' })
    const b = await post(body, { 'idempotency-key': 'k-1' })
    expect(a.statusCode).toBe(200)
    expect(b.json()).toEqual(a.json())
    expect(b.headers['idempotent-replayed']).toBe('true')
    const c = await post(packet({ values: [35], start: nowS() - 150 }), { 'idempotency-key': 'k-1' })
    expect(c.statusCode).toBe(422)
  })

  it('serves health, readiness, metrics and docs', async () => {
    expect((await h.app.inject({ url: '/ready' })).json()).toEqual({ status: 'ready' })
    const pg = (await h.app.inject({ url: '/health/postgres' })).json<{ status: string }>()
    expect(pg.status).toBe(engine === 'postgres' ? 'ok' : 'disabled')
    const metrics = await h.app.inject({ url: '/metrics' })
    expect(metrics.headers['content-type']).toMatch(/^text\/plain/)
    expect(metrics.body).toMatch(/ingest_items_total\{transport="http",class="ML_PREDICTION",outcome="stored"\} \d+/)
    expect(metrics.body).toMatch(/ingest_flush_size_count \d+/)
    const openapi = (await h.app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, unknown> }>()
    expect(Object.keys(openapi.paths)).toContain('/ingest/packets')
    expect((await h.app.inject({ url: '/docs' })).body).toContain('/ingest/packets')
    const res = (await h.app.inject({ url: '/health/resilience', headers: { 'x-api-key': 'test-global-key' } })).json<unknown>()
    expect(res).toMatchObject({ breaker: { name: 'iot-store', state: 'closed' }, breakers: { iot: { state: 'closed' }, universal: { name: 'iot-store' } }, dlq: { enabled: true, backend: 'local', depth: 0 } })
    expect((await h.app.inject({ url: '/resilience/health' })).statusCode).toBe(401)
    const diag = await h.app.inject({ url: '/api/ingestion/diagnostics', headers: { 'x-api-key': 'test-global-key' } })
    expect(diag.json()).toMatchObject({ health: expect.stringMatching(/PASS|WARN|FAIL/) as unknown })
  })
})

describe('limits on sqlite', () => {
  it('too many requests get 429 with Retry-After and X-RateLimit-Limit, counted after auth', async () => {
    const h = await startHarness('sqlite', { RATE_LIMIT_DEVICE_PER_MIN: '3' })
    try {
      const send = (headers: Record<string, string> = {}) => h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json', 'x-device-key': h.deviceKey, ...headers }, payload: JSON.stringify(packet({ values: [30], start: h.clock.now() / 1000 - 100 })) })
      for (let i = 0; i < 5; i++) expect((await send({ 'x-device-key': 'bogus' })).statusCode).toBe(401)
      const codes = []
      for (let i = 0; i < 4; i++) codes.push((await send()).statusCode)
      expect(codes).toEqual([200, 200, 200, 429])
      const limited = await send()
      expect(limited.headers['retry-after']).toMatch(/^\d+$/)
      expect(limited.headers['x-ratelimit-limit']).toBe('3')
      expect(limited.json()).toEqual({ detail: 'Rate limit exceeded for device. Max 3/min.' })
      h.clock.advance(120_000)
      expect((await send()).statusCode).toBe(200)
    } finally {
      await h.close()
    }
  })

  it('a full queue answers 503 with Retry-After; queued items still commit', async () => {
    const h = await startHarness('sqlite', { BATCH_BUFFER_SIZE: '100', HTTP_MAX_ITEMS: '100', DB_QUERY_TIMEOUT_MS: '20000' })
    // Another process holds the embedded database's write lock: the first flush waits (busy retry),
    // the next packet queues, and the one after finds the queue full.
    const blocker = new Database(join(h.ctx.config.dataDir, 'ingest.db'))
    try {
      const send = (start: number) => h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json', 'x-device-key': h.deviceKey }, payload: JSON.stringify(packet({ values: Array.from({ length: 100 }, () => 30), start })) })
      const t = h.clock.now() / 1000 - 900
      // Warm the key and sensor caches (and the once-a-minute last_used write) before blocking.
      expect((await send(t - 200)).statusCode).toBe(200)
      blocker.exec('BEGIN IMMEDIATE')
      const first = send(t)
      await new Promise((r) => setTimeout(r, 100))
      const second = send(t + 100)
      await new Promise((r) => setTimeout(r, 100))
      const third = await send(t + 200)
      expect(third.statusCode).toBe(503)
      expect(third.headers['retry-after']).toBe('1')
      blocker.exec('ROLLBACK')
      expect((await first).statusCode).toBe(200)
      const secondReply = await second
      expect(secondReply.json(), secondReply.body).toMatchObject({ inserted: 100 })
      expect(Number((await h.sql('SELECT count(*) AS n FROM sensor_readings'))[0]?.['n'])).toBe(300)
    } finally {
      if (blocker.inTransaction) blocker.exec('ROLLBACK')
      blocker.close()
      await h.close()
    }
  })
})

describe('legacy wire and operability on sqlite', () => {
  let h: Harness
  const global = { 'x-api-key': 'test-global-key' }
  const json = { 'content-type': 'application/json' }
  beforeAll(async () => {
    h = await startHarness('sqlite')
  })
  afterAll(async () => {
    await h.close()
  })

  it('a wrong method is 405 Method Not Allowed with Allow; an unknown path stays 404', async () => {
    for (const [method, url, allow] of [
      ['POST', '/health', /^GET\b/],
      ['GET', '/ingest/packets', /^POST$/],
      ['PUT', '/ingest/readings/bulk', /^POST$/],
      ['DELETE', '/sensors/12/status', /^GET\b/],
      ['POST', '/api/ingestion/diagnostics?sensor_id=1', /^GET\b/],
    ] as const) {
      const r = await h.app.inject({ method, url })
      expect(r.statusCode, `${method} ${url}`).toBe(405)
      expect(r.json()).toEqual({ detail: 'Method Not Allowed' })
      expect(r.headers['allow']).toMatch(allow)
    }
    for (const [method, url] of [['GET', '/nope'], ['POST', '/nope'], ['GET', '/sensors/1/status/x'], ['GET', '/ingest']] as const) {
      const r = await h.app.inject({ method, url })
      expect(r.statusCode, `${method} ${url}`).toBe(404)
      expect(r.json()).toEqual({ detail: 'Not Found' })
      expect(r.headers['allow']).toBeUndefined()
    }
  })

  it('parameters are located where they were sent; a negative sensor id is just unknown', async () => {
    const query = await h.app.inject({ url: '/api/ingestion/diagnostics?sensor_id=abc', headers: global })
    expect(query.statusCode).toBe(422)
    expect(query.json<Detail>().detail).toEqual([{ type: 'int_parsing', loc: ['query', 'sensor_id'], msg: 'Input should be a valid integer, unable to parse string as an integer', input: 'abc' }])
    const path = await h.app.inject({ url: '/api/ingestion/diagnostics/abc', headers: global })
    expect(path.json<Detail>().detail[0]?.loc).toEqual(['path', 'sensor_id'])
    const negative = await h.app.inject({ url: '/sensors/-1/status', headers: global })
    expect(negative.statusCode).toBe(200)
    expect(negative.json()).toMatchObject({ sensor_id: -1, final_state: 'unknown', alert_active: null, warning_active: null, prediction_current: null })
    // Beyond the safe integers it is refused (the original's SQL Server int overflowed: a 500).
    const huge = await h.app.inject({ url: `/sensors/${'9'.repeat(30)}/status`, headers: global })
    expect(huge.statusCode).toBe(422)
  })

  it('an empty JSON body is 422 missing at ["body"]', async () => {
    for (const [url, headers] of [
      ['/ingest/packets', { ...json, 'x-device-key': h.deviceKey }],
      ['/ingest/readings', { ...json, ...global }],
      ['/ingest/readings/bulk', { ...json, ...global }],
      ['/ingest/readings', global],
    ] as const) {
      const r = await h.app.inject({ method: 'POST', url, headers, payload: '' })
      expect(r.statusCode, url).toBe(422)
      expect(r.json<Detail>().detail, url).toEqual([{ type: 'missing', loc: ['body'], msg: 'Field required', input: null }])
    }
    // Whitespace is not empty: it is a JSON decode error, as in the original.
    const blank = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers: { ...json, ...global }, payload: ' ' })
    expect(blank.json<Detail>().detail[0]?.type).toBe('json_invalid')
  })

  it('a date-only timestamp is midnight UTC', async () => {
    const sensorId = Number((await h.sql('SELECT id FROM sensors'))[0]?.['id'])
    const day = new Date(h.clock.now()).toISOString().slice(0, 10)
    const r = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers: { ...json, ...global }, payload: JSON.stringify({ sensor_id: sensorId, value: 21.25, timestamp: day }) })
    expect(r.statusCode, r.body).toBe(200)
    expect(r.json()).toMatchObject({ inserted: 1 })
    const rows = await h.sql('SELECT device_timestamp FROM sensor_readings WHERE value = 21.25')
    expect(rows).toHaveLength(1)
    expect(Date.parse(`${String(rows[0]?.['device_timestamp']).replace(' ', 'T').replace(/(\d)$/, '$1Z')}`)).toBe(Date.parse(`${day}T00:00:00Z`))
  })

  it('/ingest/packets with only a wrong X-API-Key is 401 before the body is validated', async () => {
    const send = (headers: Record<string, string>, payload: string) => h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { ...json, ...headers }, payload })
    for (const payload of ['{"device_uuid": "not-a-uuid", "readings": [{"value": true}]}', '[]', '{}', '']) {
      const r = await send({ 'x-api-key': 'wrong' }, payload)
      expect(r.statusCode, payload).toBe(401)
      expect(r.json()).toEqual({ detail: 'Invalid API key' })
    }
    // The global key (LEGACY_API_KEY_ALLOWED) and a device key: the body is validated.
    expect((await send(global, '{"device_uuid": "not-a-uuid"}')).statusCode).toBe(422)
    expect((await send({ 'x-device-key': h.deviceKey }, '{"device_uuid": "not-a-uuid"}')).statusCode).toBe(422)
    expect((await send({ 'x-device-key': 'wrong' }, '{"device_uuid": "not-a-uuid"}')).statusCode).toBe(422)
  })

  it('fields that are floats in the legacy answers keep their .0', async () => {
    await h.reset()
    const t0 = h.clock.now() / 1000 - 600
    await h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { ...json, 'x-device-key': h.deviceKey }, payload: JSON.stringify(packet({ values: Array.from({ length: 10 }, () => 25), start: t0 })) })
    const hit = await h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { ...json, 'x-device-key': h.deviceKey }, payload: JSON.stringify(packet({ values: [95], start: t0 + 10 })) })
    // The fake clock stands on a whole second: ingested_ts is still a float.
    expect(hit.body).toMatch(/"ingested_ts":\d+\.0,/)
    const sensorId = Number((await h.sql('SELECT id FROM sensors'))[0]?.['id'])
    const status = await h.app.inject({ url: `/sensors/${sensorId}/status`, headers: global })
    expect(status.body).toContain('"triggered_value":95.0,')
    expect(status.json()).toMatchObject({ alert_active: { triggered_value: 95 } })
    const diag = await h.app.inject({ url: '/api/ingestion/diagnostics', headers: global })
    expect(diag.headers['content-type']).toMatch(/^application\/json/)
    expect(diag.body).toContain('"expected_interval_ms":1000.0,"tolerance_ms":100.0')
    expect(diag.body).toMatch(/"uptime_seconds":\d+\.\d+,/)
    const one = await h.app.inject({ url: `/api/ingestion/diagnostics/${sensorId}`, headers: global })
    expect(one.body).toContain('"expected_interval_ms":1000.0')
    const health = await h.app.inject({ url: '/api/ingestion/health', headers: global })
    expect(health.body).toMatch(/"out_of_order_rate":0\.0[,}]/)
    // Integers stay integers.
    expect(diag.body).toMatch(/"total_readings":\d+,/)
    expect(diag.body).toMatch(/"samples":\d+}/)
    expect(status.body).toMatch(/"sensor_id":\d+,/)
  })

  it('a body over the limit gets a 413 the client can read (20 of 20 with fetch from another process)', async () => {
    const url = await h.app.listen({ host: '127.0.0.1', port: 0 })
    // The client runs in its own process, as a device would: in this one, the server could not close
    // the socket while the client is still writing, and the race would never show.
    const client = `
      const body = '{"device_uuid":"${DEMO_DEVICE}","readings":[],"pad":"' + 'x'.repeat(12 * 1024 * 1024) + '"}'
      const out = []
      for (let i = 0; i < 20; i++) {
        try {
          const r = await fetch(process.argv[1] + '/ingest/packets', { method: 'POST', headers: { 'content-type': 'application/json', 'x-device-key': process.argv[2] }, body })
          const text = await r.text()
          out.push(r.status === 413 && text === '{"detail":"Request body too large"}' ? 413 : r.status + ' ' + text)
        } catch (err) {
          out.push(err.cause?.code ?? String(err))
        }
      }
      console.log(JSON.stringify(out))
    `
    const { stdout } = await execFileAsync(process.execPath, ['--input-type=module', '-e', client, url, h.deviceKey], { maxBuffer: 1 << 20 })
    expect(JSON.parse(stdout) as unknown[]).toEqual(Array.from({ length: 20 }, () => 413))
    // The server still answers on a fresh connection.
    expect((await fetch(`${url}/health`)).status).toBe(200)
  })

  it('starting the app prints no deprecation warning', async () => {
    const warnings: string[] = []
    const onWarning = (w: Error & { code?: string }) => warnings.push(`${w.code ?? w.name}: ${w.message}`)
    process.on('warning', onWarning)
    try {
      const app = buildApp(h.rt)
      await app.ready()
      await app.close()
      await new Promise((r) => setTimeout(r, 20))
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings).toEqual([])
  })
})
