import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'

import type { BatchReceipt } from '../../src/lib/app/ingest/ingest-service.js'
import type { IngestRuntime } from '../../src/lib/app/ingest/runtime.js'
import { UnavailableError } from '../../src/lib/errors/index.js'
import { engineList, type Harness, startHarness } from '../helpers/http-harness.js'

/**
 * A second, non-HTTP caller of the runtime `serve` is wired with, in a few lines: a toy line protocol
 * (`sensor_id,value,epoch_seconds` per line). Everything after parsing (receipts, dedup, DLQ, breaker)
 * must behave as it does for HTTP, because it is the same runtime.
 */
function lineTransport(rt: IngestRuntime): (text: string) => Promise<BatchReceipt> {
  return (text) =>
    rt.ingest.ingestById(
      text.trim().split('\n').map((line) => {
        const [id, value, ts] = line.split(',').map(Number)
        return { sensorId: id as number, value: value as number, timestamp: (ts as number) * 1000 }
      }),
      'csv',
    )
}

const POISON = 66.6

const engines = await engineList()

describe.each(engines)('one ingest runtime, two transports, on %s', (engine) => {
  let h: Harness
  let sensorId: number
  let send: (text: string) => Promise<BatchReceipt>
  const bulk = (readings: Array<{ sensor_id: number; value: number; timestamp: number }>) =>
    h.app.inject({ method: 'POST', url: '/ingest/readings/bulk', headers: { 'content-type': 'application/json', 'x-api-key': 'test-global-key' }, payload: JSON.stringify({ readings }) })
  /** The same readings as the line protocol and as the bulk body. */
  const readings = (values: number[], start: number) => values.map((value, i) => ({ sensor_id: sensorId, value, timestamp: start + i }))
  const lines = (rs: Array<{ sensor_id: number; value: number; timestamp: number }>) => rs.map((r) => `${r.sensor_id},${r.value},${r.timestamp}`).join('\n')
  const count = async (where = '') => Number((await h.sql(`SELECT count(*) AS n FROM sensor_readings ${where}`))[0]?.['n'])

  beforeAll(async () => {
    h = await startHarness(engine, { CB_FAILURE_THRESHOLD: '2', CB_RECOVERY_TIMEOUT: '30', SP_MAX_RETRIES: '1', RATE_LIMIT_ENABLED: '0' })
    sensorId = Number((await h.sql('SELECT id FROM sensors ORDER BY id'))[0]?.['id'])
    send = lineTransport(h.rt)
    // A row the database refuses (a permanent error on one row): the poison value.
    if (engine === 'sqlite') await h.sql(`CREATE TRIGGER poison BEFORE INSERT ON sensor_readings WHEN NEW.value = ${POISON} BEGIN SELECT RAISE(ABORT, 'poison value'); END`)
    else {
      await h.sql(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF NEW.value = ${POISON} THEN RAISE EXCEPTION 'poison value' USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$`)
      await h.sql('CREATE TRIGGER poison BEFORE INSERT ON sensor_readings FOR EACH ROW EXECUTE FUNCTION poison()')
    }
  })
  afterAll(async () => {
    await h.close()
  })

  it('gives the same receipts as HTTP, and each sees the other’s readings as duplicates', async () => {
    const t = h.clock.now() / 1000 - 3600
    const a = readings([30, 31, 32, 33], t)
    const b = readings([30, 31, 32, 33], t + 100)
    const viaHttp = await bulk(a)
    expect(viaHttp.statusCode, viaHttp.body).toBe(200)
    const viaLines = await send(lines(b))
    expect(viaLines).toEqual(viaHttp.json())
    expect(viaLines).toMatchObject({ inserted: 4, duplicates: 0, rejected: 0, dead_lettered: 0 })
    // Each transport's resend of the other's readings: duplicates, decided by the same keys.
    const againHttp = await bulk(b)
    const againLines = await send(lines(a))
    expect(againLines).toEqual(againHttp.json())
    expect(againLines).toMatchObject({ inserted: 0, duplicates: 4 })
    expect(await count()).toBe(8)
    // Guards and unknown sensors: the same rejection receipts.
    const bad = [{ sensor_id: 999_999, value: 1, timestamp: t + 200 }, { sensor_id: sensorId, value: 1e6, timestamp: t + 201 }]
    expect(await send(lines(bad))).toEqual((await bulk(bad)).json())
    expect((await send(lines(bad))).receipts.map((r) => r.code)).toEqual(['UNKNOWN_SENSOR', 'VALUE_OUTSIDE_PHYSICAL_LIMITS'])
  })

  it('dead-letters only the poison row on either transport, the rest commits', async () => {
    const t = h.clock.now() / 1000 - 3000
    const before = await count()
    const viaHttp = (await bulk(readings([34, POISON, 35], t))).json<BatchReceipt>()
    const viaLines = await send(lines(readings([34, POISON, 35], t + 100)))
    for (const r of [viaHttp, viaLines]) {
      expect(r).toMatchObject({ inserted: 2, dead_lettered: 1 })
      expect(r.receipts[1]).toMatchObject({ status: 'dead_lettered', code: 'CONSTRAINT', dlq_id: expect.any(String) as unknown })
    }
    expect(await count()).toBe(before + 4)
    const entries = await h.rt.dlq?.list({ stage: 'store' })
    expect(entries?.map((e) => [e.transport, e.errorClass, (e.payload as { value: number }).value])).toEqual(
      expect.arrayContaining([
        ['http', 'constraint', POISON],
        ['csv', 'constraint', POISON],
      ]),
    )
  })

  it('opens the same breaker for both: an outage fails both callers, then both are refused at once until it recovers', async () => {
    const store = h.ctx.iot.ingest
    const down = vi.spyOn(store, 'transaction').mockRejectedValue(new UnavailableError('store down (test)', { code: 'POSTGRES_UNAVAILABLE' }))
    const t = h.clock.now() / 1000 - 2000
    try {
      const first = await bulk(readings([36], t))
      expect(first.statusCode).toBe(503)
      await expect(send(lines(readings([36], t + 1)))).rejects.toMatchObject({ code: 'POSTGRES_UNAVAILABLE' })
      expect(h.rt.breakers.iot.current).toBe('open')
      const calls = down.mock.calls.length
      const refused = await bulk(readings([37], t + 2))
      expect(refused.statusCode).toBe(503)
      expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0)
      await expect(send(lines(readings([37], t + 3)))).rejects.toMatchObject({ code: 'BREAKER_OPEN' })
      // Refused without touching the store.
      expect(down.mock.calls.length).toBe(calls)
    } finally {
      down.mockRestore()
    }
    h.clock.advance(31_000)
    expect((await bulk(readings([38], t + 4))).statusCode).toBe(200)
    expect(await send(lines(readings([38], t + 5)))).toMatchObject({ inserted: 1 })
    expect(h.rt.breakers.iot.current).not.toBe('open')
  })
})
