import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { AUTH_CACHE_TTL_MS } from '../../src/lib/app/authenticate.js'
import { replayDlq, replayThroughIngest } from '../../src/lib/app/dlq.js'
import { createKey, revokeKey, rotateKey } from '../../src/lib/app/keys.js'
import { engineList, type Harness, startHarness } from '../helpers/http-harness.js'

const engines = await engineList()

interface DataReply {
  inserted: number
  rejected: number
  duplicates: number
  dead_lettered: number
  results: Array<{ stream_id: string; status: string; classification?: string; reason?: string; duplicate?: boolean }>
  receipts: Array<{ index: number; status: string; code?: string; classification?: string }>
}

const BPM = [25, 35, 42, 47, 55, 170, 190, 210, 230]

describe.each(engines)('POST /ingest/data on %s', (engine) => {
  let h: Harness
  let admin: string
  let writer: string
  let reader: string
  const post = (body: unknown, key: string | undefined, headers: Record<string, string> = {}) =>
    h.app.inject({ method: 'POST', url: '/ingest/data', headers: { 'content-type': 'application/json', ...(key === undefined ? {} : { 'x-api-key': key }), ...headers }, payload: JSON.stringify(body) })
  const count = async (sql: string, params: unknown[] = []) => Number((await h.sql(sql, params))[0]?.['n'])
  const iso = (offsetS: number) => new Date(h.clock.now() - 600_000 + offsetS * 1000).toISOString()
  // ward-3/bpm has a config in fixtures/demo.yaml (physical and operational only): the §8.4 example runs on the built-in one.
  const bpmPacket = (source = 'ward-7', stream = 'bpm') => ({ source_id: source, domain: 'health', data_points: BPM.map((value, i) => ({ stream_id: stream, value, timestamp: iso(i) })) })

  beforeAll(async () => {
    h = await startHarness(engine)
    admin = (await createKey(h.ctx, { role: 'admin' })).key
    writer = (await createKey(h.ctx, { role: 'source_writer', sourceId: 'ward-3', domains: ['health'] })).key
    reader = (await createKey(h.ctx, { role: 'read_only' })).key
  })
  afterAll(async () => {
    await h?.close()
  })
  // The audit log is append-only (a trigger refuses DELETE): each test reads the rows after its start.
  let auditFrom = 0
  beforeEach(async () => {
    for (const table of ['data_points', 'stream_alerts', 'stream_rule_state']) await h.sql(`DELETE FROM ${table}`)
    auditFrom = Number((await h.sql('SELECT coalesce(max(id), 0) AS n FROM ingestion_audit_log'))[0]?.['n'])
  })

  it('a source_writer posts its own source and domain; 403 elsewhere, read_only 403, nothing stored by a refused request', async () => {
    const ok = await post({ source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72, timestamp: iso(0) }] }, writer)
    expect(ok.statusCode).toBe(201)
    expect(ok.json<DataReply>()).toMatchObject({ inserted: 1, rejected: 0, results: [{ stream_id: 'bpm', status: 'ok', classification: 'normal' }] })

    const otherSource = await post({ source_id: 'ward-4', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72 }] }, writer)
    expect(otherSource.statusCode).toBe(403)
    expect(otherSource.json()).toEqual({ detail: "Not authorized to write to source_id 'ward-4'" })
    const otherDomain = await post({ source_id: 'ward-3', domain: 'finance', data_points: [{ stream_id: 'price', value: 1 }] }, writer)
    expect(otherDomain.statusCode).toBe(403)
    expect(otherDomain.json()).toEqual({ detail: "Not authorized to write to domain 'finance'" })
    const readOnly = await post({ source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72 }] }, reader)
    expect(readOnly.statusCode).toBe(403)
    const none = await post({ source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72 }] }, undefined)
    expect(none.statusCode).toBe(401)
    expect(none.json()).toEqual({ detail: 'API key required' })
    const wrong = await post({ source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72 }] }, 'ingk_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA')
    expect(wrong.statusCode).toBe(401)
    // The global key is not a role key: the universal routes need one.
    const global = await post({ source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72 }] }, 'test-global-key')
    expect(global.statusCode).toBe(401)
    expect(await count('SELECT count(*) AS n FROM data_points')).toBe(1)
  })

  it("domain 'iot' is refused with the original's message (422) and stores nothing", async () => {
    const r = await post({ source_id: 'ward-3', domain: 'IoT', data_points: [{ stream_id: 'x', value: 1 }] }, admin)
    expect(r.statusCode).toBe(422)
    const detail = r.json<{ detail: Array<{ loc: unknown[]; msg: string; type: string }> }>().detail
    expect(detail).toContainEqual(expect.objectContaining({ type: 'value_error', loc: ['body', 'domain'], msg: "Value error, domain='iot' is not allowed in universal ingestion. Use POST /ingest/packets for IoT data." }))
    const bad = await post({ source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72 }, { stream_id: 'bpm', value: 'NaN' }] }, admin)
    expect(bad.statusCode).toBe(422)
    expect(await count('SELECT count(*) AS n FROM data_points')).toBe(0)
  })

  it('a revoked or expired key is 401; a rotated key works until its grace ends, then 401', async () => {
    const body = { source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'bpm', value: 70 }] }
    const revoked = await createKey(h.ctx, { role: 'source_writer', sourceId: 'ward-3', domains: ['health'] })
    await revokeKey(h.ctx, revoked.kid)
    expect((await post(body, revoked.key)).statusCode).toBe(401)
    const expiring = await createKey(h.ctx, { role: 'source_writer', sourceId: 'ward-3', domains: ['health'], expiresIn: 60 })
    const exp1 = await post(body, expiring.key)
    expect(exp1.statusCode, exp1.body).toBe(201)
    h.clock.advance(61_000 + AUTH_CACHE_TTL_MS)
    expect((await post(body, expiring.key)).statusCode).toBe(401)

    const old = await createKey(h.ctx, { role: 'source_writer', sourceId: 'ward-3', domains: ['health'] })
    const rotated = await rotateKey(h.ctx, old.kid, { graceSeconds: 3600 })
    const withOld = await post(body, old.key)
    expect(withOld.statusCode, withOld.body).toBe(201)
    const withNew = await post(body, rotated.key)
    expect(withNew.statusCode, withNew.body).toBe(201)
    h.clock.advance(3_601_000 + AUTH_CACHE_TTL_MS)
    expect((await post(body, old.key)).statusCode).toBe(401)
    expect((await post(body, rotated.key)).statusCode).toBe(201)
  })

  it('classifies the bpm series as reference §8.4 lists; 25 and 230 are rejected; re-posting adds no row; one active alert', async () => {
    const r = await post(bpmPacket(), admin)
    expect(r.statusCode).toBe(201)
    const reply = r.json<DataReply>()
    expect(reply.results.map((x) => x.classification ?? x.status)).toEqual(['rejected', 'critical_violation', 'warning_violation', 'warning_violation', 'normal', 'warning_violation', 'warning_violation', 'critical_violation', 'rejected'])
    expect(reply).toMatchObject({ inserted: 7, rejected: 2, duplicates: 0 })
    expect(reply.results[0]?.reason).toMatch(/physical minimum/)
    const rows = await h.sql("SELECT value, classification, domain_metadata FROM data_points WHERE stream_id = 'bpm' ORDER BY \"timestamp\"")
    expect(rows.map((row) => [Number(row['value']), row['classification']])).toEqual([
      [35, 'critical_violation'],
      [42, 'warning_violation'],
      [47, 'warning_violation'],
      [55, 'normal'],
      [170, 'warning_violation'],
      [190, 'warning_violation'],
      [210, 'critical_violation'],
    ])
    const meta = rows[0]?.['domain_metadata']
    expect(typeof meta === 'string' ? JSON.parse(meta) : meta).toMatchObject({ reasons: [expect.objectContaining({ code: 'CRITICAL_ZONE', rule: 'critical_min' })] })
    expect(await count('SELECT count(*) AS n FROM stream_alerts WHERE is_active = ? ', [engine === 'sqlite' ? 1 : true])).toBe(1)

    const again = await post(bpmPacket(), admin)
    expect(again.json<DataReply>()).toMatchObject({ inserted: 0, duplicates: 7, rejected: 2 })
    expect(await count('SELECT count(*) AS n FROM data_points')).toBe(7)
    expect(await count('SELECT count(*) AS n FROM stream_alerts WHERE is_active = ?', [engine === 'sqlite' ? 1 : true])).toBe(1)
  })

  it('audit: a row per request, one per refused point, refused requests too; never a secret', async () => {
    await post(bpmPacket('ward-3'), writer)
    await post({ source_id: 'ward-4', domain: 'health', data_points: [{ stream_id: 'bpm', value: 72 }] }, writer)
    await post({ source_id: 'ward-3', domain: 'iot', data_points: [{ stream_id: 'bpm', value: 72 }] }, writer)
    // Refused requests are audited after the answer (best effort): wait for them, bounded.
    const read = () => h.sql('SELECT series_id, status, transport, api_key_hash, client_ip, error_message, metadata FROM ingestion_audit_log WHERE id > ? ORDER BY id', [auditFrom])
    let rows = await read()
    for (let i = 0; i < 50 && rows.filter((r) => r['status'] === 'refused').length < 2; i++) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      rows = await read()
    }
    expect(rows.filter((r) => r['status'] === 'accepted')).toHaveLength(1)
    expect(rows.filter((r) => r['status'] === 'rejected').map((r) => r['series_id'])).toEqual(['health:ward-3:bpm', 'health:ward-3:bpm'])
    expect(rows.filter((r) => r['status'] === 'refused').map((r) => String(r['error_message'])).sort()).toEqual(['403 SOURCE_NOT_ALLOWED', '422 BODY_INVALID'])
    for (const r of rows) {
      expect(r['transport']).toBe('http')
      expect(String(r['api_key_hash'])).toMatch(/^[0-9a-f]{12}$/)
      expect(JSON.stringify(r)).not.toContain(writer.slice(5, 17 + 10))
    }
  })

  it('GET /series/{id}/status: latest value, class and active alert, for any role key', async () => {
    await post(bpmPacket(), admin)
    const r = await h.app.inject({ method: 'GET', url: `/series/${encodeURIComponent('health:ward-7:bpm')}/status`, headers: { 'x-api-key': reader } })
    expect(r.statusCode).toBe(200)
    expect(r.json()).toMatchObject({ series_id: 'health:ward-7:bpm', status: 'alert', points: 7, latest_value: 210, classification: 'critical_violation', active_alert: { severity: 'CRITICAL' } })
    const unknown = await h.app.inject({ method: 'GET', url: '/series/health:ward-3:nothing/status', headers: { 'x-api-key': reader } })
    expect(unknown.json()).toMatchObject({ status: 'unknown', points: 0, active_alert: null })
    expect((await h.app.inject({ method: 'GET', url: '/series/health:ward-3:bpm/status' })).statusCode).toBe(401)
  })

  it('a point the database refuses is dead-lettered alone; dlq replay stores it once the cause is gone', async () => {
    if (engine === 'sqlite') await h.sql('CREATE TRIGGER poison_point BEFORE INSERT ON data_points WHEN NEW.value = 666 BEGIN SELECT RAISE(ABORT, \'poison value\'); END')
    else {
      await h.sql("CREATE FUNCTION poison_point() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.value = 666 THEN RAISE EXCEPTION 'poison value' USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$")
      await h.sql('CREATE TRIGGER poison_point BEFORE INSERT ON data_points FOR EACH ROW EXECUTE FUNCTION poison_point()')
    }
    const body = { source_id: 'ward-3', domain: 'lab', data_points: [1, 666, 3].map((value, i) => ({ stream_id: 'x', value, timestamp: iso(i) })) }
    const r = await post(body, admin)
    expect(r.statusCode).toBe(201)
    expect(r.json<DataReply>()).toMatchObject({ inserted: 2, dead_lettered: 1, results: [{ status: 'ok' }, { status: 'error' }, { status: 'ok' }] })
    expect(await count('SELECT count(*) AS n FROM data_points')).toBe(2)
    await h.sql(engine === 'sqlite' ? 'DROP TRIGGER poison_point' : 'DROP TRIGGER poison_point ON data_points')
    const dlq = h.rt.dlq
    if (!dlq) throw new Error('the harness runs with a DLQ')
    const replayed = await replayDlq(h.ctx, dlq, { filter: { seriesId: 'lab:ward-3:x' }, dryRun: false, maxRetries: 3, replay: replayThroughIngest(h.rt.ingest, h.rt.points) })
    expect(replayed).toMatchObject({ selected: 1, stored: 1, failed: 0, skipped: 0 })
    expect((await h.sql('SELECT value FROM data_points ORDER BY "timestamp"')).map((row) => Number(row['value']))).toEqual([1, 666, 3])
    // Replaying the same point again stores nothing new (its key decides).
    expect((await h.rt.points.replayPoints([{ kind: 'point', domain: 'lab', sourceId: 'ward-3', streamId: 'x', value: 666, time: Date.parse(iso(1)), timed: true, sequence: -1, metadata: {}, streamType: null, ingestTime: h.clock.now(), transport: 'http', backfill: false, alerts: false }])).duplicates).toBe(1)
  })

  it('a stream config from the database: store_out_of_physical keeps 25 and 230 as critical; consecutive violations gate the alert', async () => {
    const t = engine === 'sqlite' ? 1 : true
    await h.sql("INSERT INTO stream_configs (stream_id, source_id, domain) VALUES ('bpm', 'ward-9', 'health')")
    const id = Number((await h.sql("SELECT id FROM stream_configs WHERE source_id = 'ward-9'"))[0]?.['id'])
    await h.sql(
      'INSERT INTO value_constraints (stream_config_id, physical_min, physical_max, operational_min, operational_max, warning_min, warning_max, critical_min, critical_max, consecutive_violations_required, cooldown_seconds, store_out_of_physical) VALUES (?, 30, 220, 50, 180, 45, 160, 40, 200, 2, 0, ?)',
      [id, t],
    )
    const all = bpmPacket('ward-9')
    // Two violations in a row are needed: the first (25) alone opens nothing.
    const first = await post({ ...all, data_points: all.data_points.slice(0, 1) }, admin)
    expect(first.json<DataReply>().results.map((x) => x.classification)).toEqual(['critical_violation'])
    expect(await count("SELECT count(*) AS n FROM stream_alerts WHERE source_id = 'ward-9'")).toBe(0)
    const rest = await post({ ...all, data_points: all.data_points.slice(1) }, admin)
    const reply = rest.json<DataReply>()
    expect(reply.results.map((x) => x.classification)).toEqual(['critical_violation', 'warning_violation', 'warning_violation', 'normal', 'warning_violation', 'warning_violation', 'critical_violation', 'critical_violation'])
    expect(reply).toMatchObject({ inserted: 8, rejected: 0 })
    expect(await count('SELECT count(*) AS n FROM data_points')).toBe(9)
    const alerts = await h.sql("SELECT severity, is_active FROM stream_alerts WHERE source_id = 'ward-9' ORDER BY id")
    expect(alerts.filter((a) => a['is_active'] === t).map((a) => a['severity'])).toEqual(['CRITICAL'])
  })

  it('Idempotency-Key: the same key and body gets the first answer again, storing nothing more', async () => {
    const body = { source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'spo2', value: 97 }] }
    const first = await post(body, writer, { 'idempotency-key': 'req-1' })
    const again = await post(body, writer, { 'idempotency-key': 'req-1' })
    expect(first.statusCode).toBe(201)
    expect(again.statusCode).toBe(201)
    expect(again.json()).toEqual(first.json())
    // Without a timestamp a point is not idempotent on its own: the key is what keeps it single.
    expect(await count("SELECT count(*) AS n FROM data_points WHERE stream_id = 'spo2'")).toBe(1)
  })

  it('a point keeps its microseconds, its metadata as JSON and its sequence', async () => {
    const at = new Date(h.clock.now() - 60_000).toISOString().replace(/\.\d{3}Z$/, '.123456Z')
    const r = await post({ source_id: 'ward-3', domain: 'health', data_points: [{ stream_id: 'temp', value: -0.5, timestamp: at, sequence: 7, metadata: { bed: 'B-2', note: 'ünïcode "q"' } }] }, writer)
    expect(r.json<DataReply>()).toMatchObject({ inserted: 1 })
    const row = (await h.sql("SELECT value, sequence, domain_metadata, \"timestamp\" AS t FROM data_points WHERE stream_id = 'temp'"))[0]
    const status = await h.app.inject({ method: 'GET', url: '/series/health:ward-3:temp/status', headers: { 'x-api-key': reader } })
    expect(status.json<{ latest_timestamp: string }>().latest_timestamp).toBe(at)
    expect(Number(row?.['value'])).toBe(-0.5)
    expect(Number(row?.['sequence'])).toBe(7)
    const meta = row?.['domain_metadata']
    expect(typeof meta === 'string' ? JSON.parse(meta) : meta).toMatchObject({ bed: 'B-2', note: 'ünïcode "q"', reasons: [expect.objectContaining({ code: 'NO_CONSTRAINTS' })] })
  })
})
