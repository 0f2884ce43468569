import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { toMsOrNull } from '../../src/lib/adapters/storage/sql/row.js'
import { epochMicros, secondsToMs } from '../../src/lib/domain/time.js'
import { DEMO_DEVICE, DEMO_SENSOR, engineList, type Harness, startHarness } from '../helpers/http-harness.js'

const engines = await engineList()

describe.each(engines)('device times keep their microseconds end to end on %s', (engine) => {
  let h: Harness
  let base: number

  beforeAll(async () => {
    h = await startHarness(engine)
    base = Math.floor(h.clock.now() / 1000) - 3600
  })
  afterAll(async () => {
    await h.close()
  })

  /** The stored device time: the driver's value through the adapter's decoder, and the database's own microseconds. */
  async function stored(value: number): Promise<{ ms: number | null; micros: number }> {
    const sql =
      engine === 'postgres'
        ? 'SELECT device_timestamp AS t, (extract(epoch FROM device_timestamp) * 1000000)::bigint::text AS us FROM sensor_readings WHERE value = ?'
        : 'SELECT device_timestamp AS t, device_timestamp AS us FROM sensor_readings WHERE value = ?'
    const row = (await h.sql(sql, [value]))[0]
    const us = String(row?.['us'])
    // SQLite stores the text itself: six fraction digits, parsed here independently of the adapter.
    const micros = engine === 'postgres' ? Number(us) : Date.parse(us.slice(0, 23) + 'Z') * 1000 + Number(us.slice(23, 26))
    return { ms: toMsOrNull(row?.['t']), micros }
  }

  it('x.123456 is stored and read back as x.123456, and a float printed as x.7999997 as x.800000', async () => {
    const precise = base + 20.123456
    const float = base + 10.7999997
    const res = await h.app.inject({
      method: 'POST',
      url: '/ingest/packets',
      headers: { 'content-type': 'application/json', 'x-device-key': h.deviceKey },
      payload: JSON.stringify({ device_uuid: DEMO_DEVICE, readings: [{ sensor_uuid: DEMO_SENSOR, value: 31.25, sensor_ts: precise }, { sensor_uuid: DEMO_SENSOR, value: 31.5, sensor_ts: float }] }),
    })
    expect(res.statusCode, res.body).toBe(200)
    expect(res.json()).toMatchObject({ inserted: 2 })
    const a = await stored(31.25)
    expect(a.micros).toBe((base + 20) * 1e6 + 123456)
    expect(a.ms !== null && epochMicros(a.ms)).toBe((base + 20) * 1e6 + 123456)
    const b = await stored(31.5)
    expect(b.micros).toBe((base + 10) * 1e6 + 800000)
    expect(b.ms).toBe(secondsToMs(float))
    if (engine === 'sqlite') {
      const text = String((await h.sql('SELECT device_timestamp AS t FROM sensor_readings WHERE value = ?', [31.25]))[0]?.['t'])
      expect(text).toMatch(/\.123456Z$/)
    }
    // The latest value's time and the status read keep them too.
    const status = await h.app.inject({ method: 'GET', url: `/sensors/${String((await h.sql('SELECT id FROM sensors'))[0]?.['id'])}/status`, headers: { 'x-api-key': 'test-global-key' } })
    expect(status.statusCode, status.body).toBe(200)
    expect(status.json<{ latest_reading_at: string }>().latest_reading_at).toMatch(/:20\.123456Z$/)
    // The same readings again are duplicates: the dedup key holds the time to the microsecond.
    const again = await h.app.inject({
      method: 'POST',
      url: '/ingest/packets',
      headers: { 'content-type': 'application/json', 'x-device-key': h.deviceKey },
      payload: JSON.stringify({ device_uuid: DEMO_DEVICE, readings: [{ sensor_uuid: DEMO_SENSOR, value: 31.25, sensor_ts: precise }, { sensor_uuid: DEMO_SENSOR, value: 31.25, sensor_ts: precise + 0.000001 }] }),
    })
    expect(again.json()).toMatchObject({ inserted: 1, duplicates: 1 })
  })
})
