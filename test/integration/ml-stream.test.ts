import { randomBytes } from 'node:crypto'

import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { epochSecondsText } from '../../src/lib/adapters/redis/ml-stream.js'
import { isoMicros } from '../../src/lib/domain/time.js'
import { MqttReceivers } from '../../src/lib/mqtt/receivers.js'
import { ML_STREAMS, RAW_FIELDS, VALIDATED_FIELDS } from '../../src/lib/ports/ml-stream.js'
import { DEMO_DEVICE, DEMO_SENSOR, type Harness, startHarness } from '../helpers/http-harness.js'
import { eventually, PrivateBroker, Publisher } from '../helpers/mosquitto.js'
import { redisAvailable, REDIS_URL } from '../helpers/services.js'

const redisUp = await redisAvailable()
const PREFIX = `ingest_ml_${process.pid}_${randomBytes(4).toString('hex')}:`
const GLOBAL = { 'content-type': 'application/json', 'x-api-key': 'test-global-key' }

type Entry = Record<string, string>

/** Reads a whole stream (under the test's key prefix) as field maps, in order. */
async function readStream(admin: Redis, stream: string): Promise<Array<{ names: string[]; fields: Entry }>> {
  const rows = await admin.xrange(`${PREFIX}${stream}`, '-', '+')
  return rows.map(([, flat]) => {
    const names = flat.filter((_, i) => i % 2 === 0)
    const fields: Entry = {}
    for (let i = 0; i < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string
    return { names, fields }
  })
}

describe.skipIf(!redisUp)('ML stream on a real Redis (HTTP and MQTT, SQLite)', () => {
  let h: Harness
  let admin: Redis
  let sensorId: number
  /** Data time of the next reading, epoch seconds: every test moves forward (one sensor, one throttle). */
  let t: number
  const validated = () => readStream(admin, ML_STREAMS.validated)
  const raw = () => readStream(admin, ML_STREAMS.raw)
  const status = () => h.rt.mlStream.status()
  const published = async (stream: string, n: number) => eventually(`${n} entries in ${stream}`, async () => (await admin.xlen(`${PREFIX}${stream}`)) >= n, 5000, 20)

  beforeAll(async () => {
    admin = new Redis(REDIS_URL)
    h = await startHarness('sqlite', { REDIS_URL, REDIS_KEY_PREFIX: PREFIX, ML_PUBLISH_MIN_INTERVAL_SECONDS: '1', ML_STREAM_MAXLEN: '1000' })
    sensorId = Number((await h.sql('SELECT id FROM sensors ORDER BY id LIMIT 1'))[0]?.['id'])
    t = Math.floor(h.clock.now() / 1000) - 3600
    await eventually('the ML stream to be connected', () => status().available, 5000, 20)
    // Warm-up (min_readings_for_normal 10): afterwards a reading out of the hard limits is an ALERT.
    const warmup = Array.from({ length: 10 }, (_, i) => ({ sensor_id: sensorId, value: 30, timestamp: new Date((t + i) * 1000).toISOString() }))
    expect((await h.app.inject({ method: 'POST', url: '/ingest/readings/bulk', headers: GLOBAL, payload: JSON.stringify({ readings: warmup }) })).json()).toMatchObject({ inserted: 10 })
    t += 10
    await published(ML_STREAMS.validated, 10)
  })
  afterAll(async () => {
    await h?.close()
    if (admin) {
      const keys = await admin.keys(`${PREFIX}*`)
      if (keys.length > 0) await admin.del(...keys)
      admin.disconnect()
    }
  })

  it('clean readings of /ingest/packets reach readings:validated with the reference §11.2 fields plus classification and schema_version; nothing goes to readings:raw', async () => {
    const start = t
    t += 5
    const body = { device_uuid: DEMO_DEVICE, readings: [0, 1, 2, 3, 4].map((i) => ({ sensor_uuid: DEMO_SENSOR, value: 30 + i * 0.5, sensor_ts: start + i + 0.25 })) }
    const r = await h.app.inject({ method: 'POST', url: '/ingest/packets', headers: { 'content-type': 'application/json', 'x-device-key': h.deviceKey }, payload: JSON.stringify(body) })
    expect(r.json()).toMatchObject({ inserted: 5 })
    const clean = r.json<{ receipts: Array<{ classification?: string }> }>().receipts.filter((x) => x.classification === undefined).length
    expect(clean).toBe(5)
    await published(ML_STREAMS.validated, 10 + 5)
    const entries = (await validated()).slice(10)
    expect(entries).toHaveLength(5)
    for (const e of entries) expect(e.names).toEqual(['sensor_id', 'sensor_type', 'value', 'timestamp', 'classification', 'schema_version'])
    expect(entries[0]?.names).toEqual([...VALIDATED_FIELDS])
    expect(entries.map((e) => e.fields)).toEqual([0, 1, 2, 3, 4].map((i) => ({ sensor_id: String(sensorId), sensor_type: 'temperature', value: ['30.0', '30.5', '31.0', '31.5', '32.0'][i], timestamp: `${start + i}.25`, classification: 'ML_PREDICTION', schema_version: '1' })))
    // The reference consumers parse with int() and float().
    for (const e of entries) {
      expect(Number.isInteger(Number(e.fields['sensor_id']))).toBe(true)
      expect(Number.isFinite(Number(e.fields['timestamp']))).toBe(true)
    }
    expect(await admin.xlen(`${PREFIX}${ML_STREAMS.raw}`)).toBe(0)
    expect(status()).toMatchObject({ enabled: true, available: true, queued: 0, errors: 0, dropped: 0 })
  })

  it('/ingest/readings and /ingest/readings/bulk publish too', async () => {
    const before = (await validated()).length
    t += 1
    const one = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers: GLOBAL, payload: JSON.stringify({ sensor_id: sensorId, value: 31, timestamp: new Date(t * 1000).toISOString() }) })
    expect(one.json()).toMatchObject({ inserted: 1 })
    t += 1
    const bulk = await h.app.inject({ method: 'POST', url: '/ingest/readings/bulk', headers: GLOBAL, payload: JSON.stringify({ readings: [{ sensor_id: sensorId, value: 32, timestamp: new Date(t * 1000).toISOString() }] }) })
    expect(bulk.json()).toMatchObject({ inserted: 1, receipts: [{ status: 'stored' }] })
    await published(ML_STREAMS.validated, before + 2)
    const last = (await validated()).slice(before)
    expect(last.map((e) => [e.fields['value'], e.fields['timestamp'], e.fields['classification']])).toEqual([
      ['31.0', `${t - 1}.0`, 'ML_PREDICTION'],
      ['32.0', `${t}.0`, 'ML_PREDICTION'],
    ])
    t += 1
  })

  it('throttled per sensor by data time (ML_PUBLISH_MIN_INTERVAL_SECONDS=1): of readings 0.25 s apart, one per second goes out; an older one is dropped; counted in health and /metrics', async () => {
    const before = (await validated()).length
    const throttledBefore = status().throttled
    const start = t + 10
    // 0, 0.25, ... 2.75 s: 12 clean readings -> published at 0, 1, 2 s.
    const readings = Array.from({ length: 12 }, (_, i) => ({ sensor_id: sensorId, value: 33, timestamp: new Date(start * 1000 + i * 250).toISOString() }))
    const r = await h.app.inject({ method: 'POST', url: '/ingest/readings/bulk', headers: GLOBAL, payload: JSON.stringify({ readings }) })
    expect(r.json()).toMatchObject({ inserted: 12 })
    await published(ML_STREAMS.validated, before + 3)
    // Out of order (before the last published data time): stored, not published.
    const late = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers: GLOBAL, payload: JSON.stringify({ sensor_id: sensorId, value: 34, timestamp: new Date((start + 1.5) * 1000).toISOString() }) })
    expect(late.json()).toMatchObject({ inserted: 1 })
    await eventually('the ML stream to settle', () => status().queued === 0, 5000, 20)
    const added = (await validated()).slice(before)
    expect(added.map((e) => e.fields['timestamp'])).toEqual([`${start}.0`, `${start + 1}.0`, `${start + 2}.0`])
    expect(status().throttled - throttledBefore).toBe(10)
    const health = (await h.app.inject({ url: '/ingest/health' })).json<{ ml_stream: Record<string, unknown> }>()
    expect(health.ml_stream).toMatchObject({ status: 'on', queued: 0, dropped: 0, throttled: status().throttled })
    const resilience = (await h.app.inject({ url: '/resilience/health', headers: GLOBAL })).json<{ ml_stream: Record<string, unknown> }>()
    expect(resilience.ml_stream).toMatchObject({ enabled: true, available: true, minIntervalSeconds: 1, maxLen: 1000 })
    const metrics = (await h.app.inject({ url: '/metrics', headers: GLOBAL })).body
    expect(metrics).toMatch(/^ingest_ml_stream_enabled 1$/m)
    expect(metrics).toMatch(/^ingest_ml_stream_available 1$/m)
    expect(metrics).toMatch(new RegExp(`^ingest_ml_stream_entries_total\\{stream="readings:validated",outcome="throttled"\\} ${status().throttled}$`, 'm'))
    expect(metrics).toMatch(new RegExp(`^ingest_ml_stream_entries_total\\{stream="readings:validated",outcome="published"\\} ${status().published['readings:validated']}$`, 'm'))
    t = start + 10
  })

  describe('MQTT', () => {
    let broker: PrivateBroker
    let publisher: Publisher
    let receivers: MqttReceivers

    beforeAll(async () => {
      broker = await PrivateBroker.create()
      publisher = await Publisher.connect(broker.url, `${PREFIX}pub`)
      receivers = new MqttReceivers(h.rt, { url: broker.url, clientId: `${PREFIX}sub`, command: 'test', connections: 1, group: 'none', topicPrefix: 'mlt', topics: ['iot'], keepaliveSeconds: 30, maxPayloadBytes: 1_000_000, maxJsonDepth: 32, statsLogIntervalMs: 0, reconnectMinMs: 100, retryMaxMs: 500 })
      receivers.start()
      await eventually('the receivers to subscribe', () => receivers.stats.connected === receivers.stats.connections, 10_000)
      await new Promise((resolve) => setTimeout(resolve, 300))
    })
    afterAll(async () => {
      await receivers?.stop(2000)
      await publisher?.close()
      await broker?.destroy()
    })

    it('every stored MQTT reading goes to readings:raw (reference §11.3 fields plus the class, unthrottled); the clean ones also to readings:validated (throttled)', async () => {
      const rawBefore = (await raw()).length
      const validatedBefore = (await validated()).length
      const start = t
      // 6 readings 0.5 s apart (the last above the hard limit: an ALERT): all 6 in readings:raw; the
      // clean ones 1 s apart in readings:validated.
      const values = [35, 36, 37, 38, 39, 95]
      const times = values.map((_, i) => start * 1000 + i * 500 + 0.123)
      await publisher.publishAll(values.map((value, i) => ({ topic: `mlt/iot/sensors/${sensorId}/readings`, payload: JSON.stringify({ sensorId, value, timestamp: isoMicros(times[i] as number), msgId: `ml-${i}` }) })), { window: 1 })
      await eventually('6 MQTT readings stored', () => receivers.stats.stored === 6, 10_000)
      await published(ML_STREAMS.raw, rawBefore + 6)
      const entries = (await raw()).slice(rawBefore)
      expect(entries).toHaveLength(6)
      for (const e of entries) expect(e.names).toEqual([...RAW_FIELDS])
      expect(entries.map((e) => e.fields)).toEqual(
        values.map((value, i) => ({
          sensor_id: String(sensorId),
          sensor_type: 'temperature',
          value: `${value}.0`,
          timestamp: epochSecondsText(times[i] as number),
          timestamp_iso: isoMicros(times[i] as number),
          classification: value === 95 ? 'ALERT' : 'ML_PREDICTION',
          schema_version: '1',
        })),
      )
      // Clean ones at 0, 0.5, 1, 1.5, 2 s -> published at 0, 1, 2 s; the ALERT at 2.5 s is not clean.
      await published(ML_STREAMS.validated, validatedBefore + 3)
      await eventually('the ML stream to settle', () => status().queued === 0, 5000, 20)
      const v = (await validated()).slice(validatedBefore)
      expect(v.map((e) => e.fields['timestamp'])).toEqual([0, 2, 4].map((i) => epochSecondsText(times[i] as number)))
      expect(status().published['readings:raw']).toBe(6)
      t = start + 10
    })

    it('a non-clean reading over HTTP is stored and not published', async () => {
      const before = status().published['readings:validated']
      // Not offered to the stream at all: neither published nor throttled nor dropped.
      const throttledAndDropped = status().throttled + status().dropped
      const r = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers: GLOBAL, payload: JSON.stringify({ sensor_id: sensorId, value: 96, timestamp: new Date(t * 1000).toISOString() }) })
      expect(r.json()).toMatchObject({ inserted: 1, receipts: [{ status: 'stored', classification: 'ALERT' }] })
      await new Promise((resolve) => setImmediate(resolve))
      await eventually('the ML stream to settle', () => status().queued === 0, 5000, 20)
      expect(status().published['readings:validated']).toBe(before)
      expect(status().throttled + status().dropped).toBe(throttledAndDropped)
    })
  })
})

describe('ML stream without Redis', () => {
  let h: Harness

  beforeAll(async () => {
    h = await startHarness('sqlite', {})
  })
  afterAll(async () => {
    await h?.close()
  })

  it('ingestion works and health and /metrics say the stream is off, and why', async () => {
    const sensorId = Number((await h.sql('SELECT id FROM sensors ORDER BY id LIMIT 1'))[0]?.['id'])
    const r = await h.app.inject({ method: 'POST', url: '/ingest/readings', headers: GLOBAL, payload: JSON.stringify({ sensor_id: sensorId, value: 31, timestamp: new Date(h.clock.now() - 60_000).toISOString() }) })
    expect(r.json()).toMatchObject({ inserted: 1 })
    expect(h.rt.mlStream.enabled).toBe(false)
    const health = (await h.app.inject({ url: '/ingest/health' })).json<{ ml_stream: Record<string, unknown> }>()
    expect(health.ml_stream).toMatchObject({ status: 'off' })
    expect(String(health.ml_stream['reason'])).toContain('Redis not configured')
    const resilience = (await h.app.inject({ url: '/resilience/health', headers: GLOBAL })).json<{ ml_stream: Record<string, unknown> }>()
    expect(resilience.ml_stream).toMatchObject({ enabled: false, available: false, published: { 'readings:validated': 0 } })
    expect((await h.app.inject({ url: '/metrics', headers: GLOBAL })).body).toMatch(/^ingest_ml_stream_enabled 0$/m)
  })
})
