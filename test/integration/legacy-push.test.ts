import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { type Harness, packet, startHarness } from '../helpers/http-harness.js'

/** The legacy backend's push endpoint, stood in for by a small server started here. */
function fakeBackend(answer: (n: number) => { status: number; body: string }) {
  const calls: Array<{ url: string | undefined; headers: IncomingHttpHeaders; body: unknown }> = []
  const server: Server = createServer((req, res) => {
    let text = ''
    req.on('data', (c: Buffer) => (text += c.toString()))
    req.on('end', () => {
      calls.push({ url: req.url, headers: req.headers, body: JSON.parse(text) as unknown })
      const a = answer(calls.length)
      res.writeHead(a.status, { 'content-type': 'application/json' }).end(a.body)
    })
  })
  return {
    calls,
    start: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/api`))),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}

async function metric(h: Harness, outcome: string): Promise<number> {
  const m = await h.rt.metrics.alertPushes.get()
  return m.values.find((v) => v.labels['outcome'] === outcome)?.value ?? 0
}

/** Waits until `check` holds (pushes run after the answer), at most 5 s. */
async function eventually(check: () => Promise<boolean> | boolean): Promise<void> {
  const deadline = Date.now() + 5_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met within 5 s')
    await new Promise((r) => setTimeout(r, 20))
  }
}

describe('legacy push of opened alerts (INTERNAL_API_KEY)', () => {
  const backend = fakeBackend((n) => (n === 2 ? { status: 200, body: '{"ok":false,"error":"bad key"}' } : { status: 200, body: '{"ok":true}' }))
  let h: Harness
  const post = (body: unknown) => h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json', 'x-device-key': h.deviceKey }, payload: JSON.stringify(body) })
  const t0 = () => h.clock.now() / 1000 - 3600

  beforeAll(async () => {
    const url = await backend.start()
    h = await startHarness('sqlite', { INTERNAL_API_KEY: 'internal-secret', BACKEND_URL: url })
  })
  afterAll(async () => {
    await h.close()
    await backend.stop()
  })

  it('POSTs each opened alert once after its commit, with the legacy headers and body', async () => {
    // Warm-up (10 readings), then a critical value (> 90): one alert opened; a repeat updates it (no new push).
    expect((await post(packet({ values: [...Array<number>(10).fill(40), 95, 96], start: t0() }))).json()).toMatchObject({ inserted: 12 })
    await eventually(() => backend.calls.length >= 1)
    const alertId = Number((await h.sql("SELECT id FROM alerts WHERE status = 'active'"))[0]?.['id'])
    expect(backend.calls).toEqual([{ url: '/api/notifications/internal/trigger-push', headers: expect.objectContaining({ 'x-internal-key': 'internal-secret', 'content-type': 'application/json' }) as unknown, body: { type: 'alert', alertId: String(alertId) } }])
    expect(await metric(h, 'sent')).toBe(1)
  })

  it('a backend that refuses ({ok:false}) or is gone never fails ingestion: counted as failed', async () => {
    // A drop (a delta spike), then 3 clean readings resolve the alert; a new critical value opens a second one.
    expect((await post(packet({ values: [40, 40.5, 41, 41.5, 97], start: t0() + 100 }))).statusCode).toBe(200)
    await eventually(async () => (await metric(h, 'failed')) === 1)
    expect(backend.calls).toHaveLength(2)
    await backend.stop()
    const res = await post(packet({ values: [40, 40.5, 41, 41.5, 98], start: t0() + 200 }))
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ inserted: 5 })
    await eventually(async () => (await metric(h, 'failed')) === 2)
    const text = (await h.app.inject({ method: 'GET', url: '/metrics' })).body
    expect(text).toContain('ingest_alert_push_total{outcome="failed"} 2')
  })
})
