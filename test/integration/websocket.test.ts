import type { AddressInfo } from 'node:net'

import type { FastifyInstance } from 'fastify'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'

import { createKey, revokeKey } from '../../src/lib/app/keys.js'
import { buildApp } from '../../src/lib/http/app.js'
import type { AckFrame } from '../../src/lib/http/ws/frames.js'
import { engineList, type Harness, startHarness } from '../helpers/http-harness.js'

const engines = await engineList()

type Frame = Record<string, unknown> & { type: string }
type Ack = Frame & AckFrame

/** A `ws` client that queues the frames it gets, so a test reads them in order. */
class Client {
  private readonly frames: Frame[] = []
  private waiter: (() => void) | undefined
  readonly closed: Promise<{ code: number; reason: string }>
  pings = 0

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      this.frames.push(JSON.parse(data.toString()) as Frame)
      this.waiter?.()
    })
    ws.on('ping', () => this.pings++)
    ws.on('error', () => undefined)
    this.closed = new Promise((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })))
  }

  /** Opens; rejects with the HTTP status when the upgrade is refused. */
  static open(url: string, options: { headers?: Record<string, string>; autoPong?: boolean } = {}): Promise<Client> {
    const ws = new WebSocket(url, { headers: options.headers ?? {}, autoPong: options.autoPong ?? true })
    const client = new Client(ws)
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(client))
      ws.once('unexpected-response', (_req, res) => {
        reject(new Error(`HTTP ${res.statusCode}`))
        ws.terminate()
      })
    })
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  async next(): Promise<Frame> {
    while (this.frames.length === 0) {
      if (this.ws.readyState === WebSocket.CLOSED) throw new Error('closed with no frame')
      await Promise.race([new Promise<void>((resolve) => (this.waiter = resolve)), this.closed])
    }
    return this.frames.shift() as Frame
  }

  /** Everything still queued (after a close). */
  rest(): Frame[] {
    return this.frames.splice(0)
  }
}

describe.each(engines)('WebSocket /ingest/stream on %s', (engine) => {
  let h: Harness
  let url: string
  let admin: string
  let writer: string
  let reader: string
  const count = async (sql: string, params: unknown[] = []) => Number((await h.sql(sql, params))[0]?.['n'])
  const iso = (offsetMs: number) => new Date(h.clock.now() - 7_200_000 + offsetMs).toISOString()
  const listen = async (app: FastifyInstance) => {
    await app.listen({ host: '127.0.0.1', port: 0 })
    return `ws://127.0.0.1:${(app.server.address() as AddressInfo).port}/ingest/stream`
  }
  /** A client past `connected` on ward-3/health. */
  const connected = async (key = writer, source = 'ward-3') => {
    const c = await Client.open(url, { headers: { 'x-api-key': key } })
    c.send({ type: 'connect', source_id: source, domain: 'health' })
    const hello = await c.next()
    expect(hello.type).toBe('connected')
    expect(hello['session_id']).toMatch(/^[0-9a-f-]{36}$/)
    return c
  }
  /** Closes from the client side and waits until the server has let the session go. */
  const bye = async (c: Client) => {
    c.ws.close()
    await c.closed
    await expect.poll(() => h.app.ingestStream.size).toBe(0)
  }
  /** Sends a frame and returns the one answer (frames are answered in order). */
  const roundTrip = async (c: Client, frame: unknown) => {
    c.send(frame)
    return c.next()
  }

  beforeAll(async () => {
    h = await startHarness(engine, { HTTP_MAX_ITEMS: '500', WS_MAX_PAYLOAD_BYTES: '65536', WS_PING_INTERVAL_SECONDS: '15', WS_PONG_TIMEOUT_SECONDS: '10', WS_CONNECT_TIMEOUT_SECONDS: '10' })
    url = await listen(h.app)
    admin = (await createKey(h.ctx, { role: 'admin' })).key
    writer = (await createKey(h.ctx, { role: 'source_writer', sourceId: 'ward-3', domains: ['health'] })).key
    reader = (await createKey(h.ctx, { role: 'read_only' })).key
  })
  afterAll(async () => {
    await h?.close()
  })

  it('10 000 points in 100 pipelined batches: one ack per batch in order after the commit, every point stored once; a resent batch is all duplicates', async () => {
    await h.sql("DELETE FROM data_points WHERE source_id = 'ward-3'")
    const auditFrom = await count('SELECT coalesce(max(id), 0) AS n FROM ingestion_audit_log')
    const c = await connected()
    const batch = (b: number) => ({
      type: 'data',
      batch_id: `b${b}`,
      batch: Array.from({ length: 100 }, (_, i) => ({ stream_id: `s${i % 10}`, value: 50 + (i % 7), timestamp: iso((b * 100 + i) * 500), sequence: b * 100 + i + 1 })),
    })
    for (let b = 0; b < 100; b++) c.send(batch(b))
    let inserted = 0
    for (let b = 0; b < 100; b++) {
      const ack = (await c.next()) as Ack
      expect(ack).toMatchObject({ type: 'ack', batch_id: `b${b}`, sequence_up_to: (b + 1) * 100, rejected: [], processed: 100, duplicates: 0, dead_lettered: 0 })
      expect(ack.receipts.map((r) => r.index)).toEqual(Array.from({ length: 100 }, (_, i) => i))
      inserted += ack.inserted
    }
    expect(inserted).toBe(10_000)
    expect(await count("SELECT count(*) AS n FROM data_points WHERE source_id = 'ward-3'")).toBe(10_000)
    expect(await count("SELECT count(DISTINCT sequence) AS n FROM data_points WHERE source_id = 'ward-3'")).toBe(10_000)

    const again = (await roundTrip(c, batch(7))) as Ack
    expect(again).toMatchObject({ type: 'ack', batch_id: 'b7', inserted: 0, duplicates: 100, processed: 100, rejected: [] })
    expect(again.receipts.every((r) => r.status === 'duplicate')).toBe(true)
    expect(await count("SELECT count(*) AS n FROM data_points WHERE source_id = 'ward-3'")).toBe(10_000)
    // One audit row per batch, with the transport and the key's hash prefix (never the key).
    const audit = await h.sql("SELECT transport, api_key_hash FROM ingestion_audit_log WHERE id > ? AND status = 'accepted'", [auditFrom])
    expect(audit).toHaveLength(101)
    expect(audit.every((r) => r['transport'] === 'websocket' && typeof r['api_key_hash'] === 'string' && !writer.includes(String(r['api_key_hash'])))).toBe(true)

    c.send({ type: 'disconnect' })
    expect(await c.closed).toEqual({ code: 1000, reason: '' })
  })

  it('auth: X-API-Key on the upgrade or api_key in the connect frame; a query-string key is ignored; wrong source, read_only, iot, invalid and revoked keys close 1008', async () => {
    const refused = async (frame: Record<string, unknown>, headers: Record<string, string> = {}, query = '') => {
      const c = await Client.open(url + query, { headers })
      c.send({ type: 'connect', ...frame })
      const error = await c.next()
      const close = await c.closed
      return { error, close }
    }
    // Header key and frame key both work.
    await bye(await connected())
    const viaFrame = await Client.open(url)
    viaFrame.send({ type: 'connect', source_id: 'ward-3', domain: 'health', api_key: writer })
    expect(await viaFrame.next()).toMatchObject({ type: 'connected' })
    await bye(viaFrame)

    // The query string never authenticates, not even an admin key.
    expect(await refused({ source_id: 'ward-3', domain: 'health' }, {}, `?api_key=${encodeURIComponent(admin)}`)).toEqual({
      error: { type: 'error', error: 'Missing source_id, domain, or api_key' },
      close: { code: 1003, reason: 'Missing source_id, domain, or api_key' },
    })
    expect(await refused({ source_id: 'ward-4', domain: 'health', api_key: writer })).toMatchObject({ error: { error: "Not authorized to write to source_id 'ward-4'" }, close: { code: 1008 } })
    expect(await refused({ source_id: 'ward-3', domain: 'finance' }, { 'x-api-key': writer })).toMatchObject({ error: { error: "Not authorized to write to domain 'finance'" }, close: { code: 1008 } })
    expect(await refused({ source_id: 'ward-3', domain: 'health', api_key: reader })).toMatchObject({ error: { type: 'error' }, close: { code: 1008 } })
    expect(await refused({ source_id: 'ward-3', domain: 'IoT', api_key: admin })).toMatchObject({ error: { error: "domain='iot' not allowed in WebSocket transport" }, close: { code: 1008 } })
    expect(await refused({ source_id: 'ward-3', domain: 'health', api_key: 'ingk_AAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' })).toMatchObject({ error: { error: 'Invalid API key' }, close: { code: 1008 } })
    expect(await refused({ source_id: 'ward-3', domain: 'health', api_key: 'test-global-key' })).toMatchObject({ error: { error: 'Invalid API key' }, close: { code: 1008 } })
    const revoked = await createKey(h.ctx, { role: 'admin' })
    await revokeKey(h.ctx, revoked.kid)
    expect(await refused({ source_id: 'ward-3', domain: 'health', api_key: revoked.key })).toMatchObject({ error: { error: 'Invalid API key' }, close: { code: 1008 } })

    // The first frame must be `connect`.
    const c = await Client.open(url, { headers: { 'x-api-key': admin } })
    c.send({ type: 'data', batch: [{ stream_id: 'x', value: 1 }] })
    expect(await c.next()).toEqual({ type: 'error', error: "Expected 'connect' message" })
    expect((await c.closed).code).toBe(1003)
    // Nothing was stored by any refused connection.
    expect(await count("SELECT count(*) AS n FROM data_points WHERE source_id = 'ward-4' OR stream_id = 'x'")).toBe(0)
  })

  it('FF_WEBSOCKET_ENABLED=false refuses the upgrade with 403; a plain GET is 426', async () => {
    const app = buildApp({ ...h.rt, config: { ...h.rt.config, features: { ...h.rt.config.features, websocket: false } } })
    try {
      const off = await listen(app)
      await expect(Client.open(off, { headers: { 'x-api-key': admin } })).rejects.toThrow('HTTP 403')
    } finally {
      await app.close()
    }
    const plain = await h.app.inject({ method: 'GET', url: '/ingest/stream' })
    expect(plain.statusCode).toBe(426)
  })

  it('data frames: bad items rejected with their reason while the rest commit; empty, oversized, unknown, malformed, too deep and __proto__ frames get an error frame and the connection goes on', async () => {
    await h.sql("DELETE FROM data_points WHERE source_id = 'ward-3'")
    const c = await connected()
    const ack = (await roundTrip(c, {
      type: 'data',
      id: 42,
      batch: [{ stream_id: 'bpm', value: 70, timestamp: iso(1), sequence: 3 }, { value: 5 }, { stream_id: 'bpm', value: 'NaN' }, { stream_id: 'bpm', value: 71, timestamp: iso(2), sequence: 9 }, { stream_id: 'bpm' }],
    })) as Ack
    expect(ack).toMatchObject({ type: 'ack', id: 42, sequence_up_to: 9, processed: 2, inserted: 2 })
    expect(ack.rejected.map((r) => [r.index, r.stream_id, r.reason.replace(/^value: .*/, 'value: ...')])).toEqual([
      [1, 'unknown', 'Missing stream_id or value'],
      [2, 'bpm', 'value: ...'],
      [4, 'bpm', 'Missing stream_id or value'],
    ])
    expect(ack.receipts.map((r) => `${r.index}:${r.status}`)).toEqual(['0:stored', '1:rejected', '2:rejected', '3:stored', '4:rejected'])
    expect(await count("SELECT count(*) AS n FROM data_points WHERE source_id = 'ward-3'")).toBe(2)

    expect(await roundTrip(c, { type: 'data', batch: [] })).toEqual({ type: 'error', error: 'Empty batch' })
    expect(await roundTrip(c, { type: 'data', batch_id: 'big', batch: Array.from({ length: 501 }, (_, i) => ({ stream_id: 'bpm', value: i })) })).toEqual({ type: 'error', error: 'Batch too large: 501 items (at most 500)', batch_id: 'big' })
    expect(await roundTrip(c, { type: 'subscribe' })).toEqual({ type: 'error', error: 'Unknown message type: subscribe' })
    expect(String((await roundTrip(c, '{"type": "data", '))['error'])).toMatch(/^Invalid JSON/)
    let deep: unknown = 1
    for (let i = 0; i < 40; i++) deep = [deep]
    expect(await roundTrip(c, { type: 'data', batch: [{ stream_id: 'bpm', value: 1, metadata: { deep } }] })).toEqual({ type: 'error', error: 'JSON nested deeper than 32 levels' })
    expect(String((await roundTrip(c, '{"type": "data", "batch": [{"stream_id": "bpm", "value": 1, "metadata": {"__proto__": {"x": 1}}}]}'))['error'])).toMatch(/^Forbidden key/)
    // Still usable, and nothing of the refused frames was stored.
    expect(await roundTrip(c, { type: 'data', batch: [{ stream_id: 'bpm', value: 72, timestamp: iso(3) }] })).toMatchObject({ type: 'ack', inserted: 1 })
    expect(await count("SELECT count(*) AS n FROM data_points WHERE source_id = 'ward-3'")).toBe(3)
    await bye(c)
  })

  it('a message over WS_MAX_PAYLOAD_BYTES closes the connection with 1009 and stores nothing', async () => {
    await h.sql("DELETE FROM data_points WHERE source_id = 'ward-3'")
    const c = await connected()
    c.send({ type: 'data', batch: [{ stream_id: 'bpm', value: 1, timestamp: iso(0), metadata: { pad: 'x'.repeat(70_000) } }] })
    expect((await c.closed).code).toBe(1009)
    expect(await count("SELECT count(*) AS n FROM data_points WHERE source_id = 'ward-3'")).toBe(0)
  })

  it('ping every WS_PING_INTERVAL_SECONDS, dropped without a pong within WS_PONG_TIMEOUT_SECONDS; no connect frame within WS_CONNECT_TIMEOUT_SECONDS closes 1008 (fake clock)', async () => {
    await expect.poll(() => h.app.ingestStream.size).toBe(0)
    const live = await connected()
    const mute = await Client.open(url, { headers: { 'x-api-key': writer }, autoPong: false })
    mute.send({ type: 'connect', source_id: 'ward-3', domain: 'health' })
    expect(await mute.next()).toMatchObject({ type: 'connected' })
    const idle = await Client.open(url)
    // The idle client's upgrade has been served once it answers a frame; wait for the session to exist.
    await expect.poll(() => h.app.ingestStream.size).toBe(3)

    h.clock.advance(15_000)
    h.app.ingestStream.tick()
    expect(await idle.next()).toEqual({ type: 'error', error: "Expected 'connect' message within 10 s" })
    expect((await idle.closed).code).toBe(1008)
    await expect.poll(() => live.pings + mute.pings).toBe(2)
    // The live client's pong was read before the answer to a later frame.
    expect(await roundTrip(live, { type: 'noop' })).toMatchObject({ type: 'error' })

    h.clock.advance(10_000)
    h.app.ingestStream.tick()
    expect((await mute.closed).code).toBe(1006)
    expect(await roundTrip(live, { type: 'data', batch: [{ stream_id: 'bpm', value: 70, timestamp: iso(5) }] })).toMatchObject({ type: 'ack' })
    expect(live.ws.readyState).toBe(WebSocket.OPEN)
    await bye(live)
  })

  it('closing the app acks every batch it has read, then closes 1001; what was acked is stored', async () => {
    await h.sql("DELETE FROM data_points WHERE source_id = 'ward-3'")
    const app = buildApp(h.rt)
    const u = await listen(app)
    const c = await Client.open(u, { headers: { 'x-api-key': writer } })
    c.send({ type: 'connect', source_id: 'ward-3', domain: 'health' })
    expect(await c.next()).toMatchObject({ type: 'connected' })
    for (let b = 0; b < 20; b++) c.send({ type: 'data', batch_id: b, batch: Array.from({ length: 50 }, (_, i) => ({ stream_id: 'drain', value: i, timestamp: iso(b * 50 + i) })) })
    expect(await c.next()).toMatchObject({ type: 'ack', batch_id: 0 })
    await app.close()
    const close = await c.closed
    expect(close).toEqual({ code: 1001, reason: 'server shutting down' })
    const acks = c.rest() as Ack[]
    const ids = acks.map((a) => a.batch_id)
    expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i + 1))
    const acked = 50 * (1 + acks.length)
    expect(await count("SELECT count(*) AS n FROM data_points WHERE source_id = 'ward-3' AND stream_id = 'drain'")).toBe(acked)
  })
})
