import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { MqttReceivers } from '../../src/lib/mqtt/receivers.js'
import type { TopicKind } from '../../src/lib/mqtt/topics.js'
import { FakeClock, type Harness, startHarness } from '../helpers/http-harness.js'
import { eventually, type Message, PrivateBroker, Publisher, readingMessage } from '../helpers/mosquitto.js'
import { postgresAvailable } from '../helpers/services.js'

/** Real time: the receivers' backoff and the ingest guards run on the wall clock here. */
class WallClock extends FakeClock {
  override now(): number {
    return Date.now()
  }
  override sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms))
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const PREFIX = `mqtt-int-${process.pid}`

describe.skipIf(!(await postgresAvailable()))('MQTT receivers (in process, PostgreSQL, private Mosquitto)', () => {
  let h: Harness
  let broker: PrivateBroker
  let publisher: Publisher
  let sensorId: number
  const running: MqttReceivers[] = []

  const start = (topicPrefix: string, clientId: string, connections: number, topics: TopicKind[] = ['iot', 'universal']): MqttReceivers => {
    const r = new MqttReceivers(h.rt, { url: broker.url, clientId, command: 'test', connections, group: 'g', topicPrefix, topics, keepaliveSeconds: 30, maxPayloadBytes: 1_000_000, maxJsonDepth: 32, statsLogIntervalMs: 0, reconnectMinMs: 100, retryMaxMs: 500 })
    running.push(r)
    r.start()
    return r
  }
  const connected = (r: MqttReceivers) => eventually('the receivers to connect and subscribe', () => r.stats.connected === r.stats.connections, 10_000).then(() => sleep(300))

  beforeAll(async () => {
    broker = await PrivateBroker.create()
    h = await startHarness('postgres', {}, new WallClock())
    const [row] = await h.sql('SELECT id FROM sensors ORDER BY id LIMIT 1')
    sensorId = Number(row?.['id'])
    publisher = await Publisher.connect(broker.url, `${PREFIX}-pub`)
  })
  afterAll(async () => {
    for (const r of running) await r.stop(2000)
    await publisher?.close()
    await h?.close()
    await broker?.destroy()
  })

  it('sends the PUBACK only after the commit: a message held by a locked table stays unacked until the lock goes', async () => {
    const prefix = `${PREFIX}-ack`
    const r = start(prefix, `${prefix}-c`, 1, ['iot'])
    await connected(r)
    const lock = new pg.Client({ connectionString: h.ctx.config.storage.postgresUrl })
    await lock.connect()
    try {
      await lock.query('BEGIN')
      await lock.query('LOCK TABLE sensor_readings IN EXCLUSIVE MODE')
      await publisher.publishAll([readingMessage(prefix, sensorId, 1)])
      await eventually('the message to reach the receiver', () => r.stats.received === 1, 10_000)
      await sleep(1500)
      // Received, under commit, not acked: the broker has seen no PUBACK from the receiver.
      expect(r.stats.inFlight).toBe(1)
      expect(r.stats.stored).toBe(0)
      expect(broker.pubacksFrom(`${prefix}-c`)).toBe(0)
      await lock.query('COMMIT')
    } finally {
      await lock.end()
    }
    await eventually('the reading to commit', () => r.stats.stored === 1, 15_000)
    await eventually('the PUBACK', () => broker.pubacksFrom(`${prefix}-c`) === 1, 5000)
    const rows = await h.sql("SELECT count(*) AS n FROM sensor_readings WHERE dedup_key = 'm-1'")
    expect(Number(rows[0]?.['n'])).toBe(1)
    expect(r.stats.inFlight).toBe(0)
  })

  it('dead-letters each poison message once and acks it, stores every good one, and the broker redelivers nothing afterwards', async () => {
    const prefix = `${PREFIX}-poison`
    const clientId = `${prefix}-c`
    const r = start(prefix, clientId, 4)
    await connected(r)
    const dlq = h.rt.dlq
    if (!dlq) throw new Error('the harness runtime has no DLQ')
    const before = (await dlq.list({})).length
    const now = Date.now()
    const ts = new Date(now - 1000).toISOString()
    const topic = (id: number | string) => `${prefix}/iot/sensors/${id}/readings`
    const good: Message[] = Array.from({ length: 200 }, (_, i) => readingMessage(prefix, sensorId, i, now, 'good'))
    const poison: Array<{ m: Message; cls: string }> = []
    for (let i = 0; i < 10; i++) {
      poison.push({ m: { topic: topic(sensorId), payload: `not json {${i}` }, cls: 'invalid_json' })
      poison.push({ m: { topic: topic(sensorId), payload: JSON.stringify({ sensorId, value: 1 }) }, cls: 'validation_error' })
      poison.push({ m: { topic: topic(sensorId), payload: JSON.stringify({ sensorId, value: true, timestamp: ts }) }, cls: 'validation_error' })
      poison.push({ m: { topic: topic(sensorId), payload: JSON.stringify({ sensorId, value: 50, timestamp: new Date(now - 60 * 86_400_000).toISOString(), msgId: `old-${i}` }) }, cls: 'TIMESTAMP_TOO_OLD' })
      poison.push({ m: { topic: topic(sensorId + 1000), payload: JSON.stringify({ sensorId, value: 50, timestamp: ts, msgId: `own-${i}` }) }, cls: 'ownership_denied' })
      poison.push({ m: { topic: topic(999_999), payload: JSON.stringify({ sensorId: 999_999, value: 50, timestamp: ts, msgId: `unk-${i}` }) }, cls: 'UNKNOWN_SENSOR' })
      poison.push({ m: { topic: `${prefix}/iot/x/y/data`, payload: JSON.stringify({ value: 1 }) }, cls: 'invalid_domain' })
      // Below the built-in physical minimum of health/bpm (30): refused, kept replayable.
      poison.push({ m: { topic: `${prefix}/health/ward-5/bpm/data`, payload: JSON.stringify({ value: 1, timestamp: ts, sequence: i }) }, cls: 'VALUE_OUTSIDE_PHYSICAL_LIMITS' })
    }
    // Universal points on {domain}/{source}/{stream}/data go through the point path.
    for (let i = 0; i < 10; i++) good.push({ topic: `${prefix}/health/ward-5/bpm/data`, payload: JSON.stringify({ value: 70 + i, timestamp: new Date(now - 10_000 + i * 100).toISOString(), metadata: { bed: 5 } }) })
    // Interleaved: a poison message after every 2–3 good ones.
    const all: Message[] = []
    let p = 0
    good.forEach((g, i) => {
      all.push(g)
      if (i % 5 === 1 || i % 5 === 3) {
        const next = poison[p++]
        if (next) all.push(next.m)
      }
    })
    while (p < poison.length) all.push((poison[p++] as { m: Message }).m)
    expect(await publisher.publishAll(all, { window: 20 })).toBe(all.length)

    await eventually('every message to be acked', () => r.stats.processed === all.length, 30_000)
    expect(r.stats.stored).toBe(good.length)
    expect(r.stats.deadLettered).toBe(poison.length)
    const stored = await h.sql("SELECT count(*) AS n, count(DISTINCT dedup_key) AS d FROM sensor_readings WHERE dedup_key LIKE 'good-%'")
    expect(Number(stored[0]?.['n'])).toBe(good.length - 10)
    expect(Number(stored[0]?.['d'])).toBe(good.length - 10)
    const points = await h.sql("SELECT count(*) AS n FROM data_points WHERE domain = 'health' AND source_id = 'ward-5' AND stream_id = 'bpm'")
    expect(Number(points[0]?.['n'])).toBe(10)
    const entries = await dlq.list({})
    expect(entries.length - before).toBe(poison.length)
    const byClass = new Map<string, number>()
    for (const e of entries.filter((e) => e.transport === 'mqtt')) byClass.set(e.errorClass, (byClass.get(e.errorClass) ?? 0) + 1)
    const expected = new Map<string, number>()
    for (const x of poison) expected.set(x.cls, (expected.get(x.cls) ?? 0) + 1)
    expect(Object.fromEntries(byClass)).toEqual(Object.fromEntries(expected))
    await eventually('the broker to receive every PUBACK', () => broker.pubacksFrom(clientId) === all.length, 5000)

    // No redelivery loop: the same sessions, reconnected, get nothing back.
    await r.stop(5000)
    const again = start(prefix, clientId, 4)
    await connected(again)
    await sleep(2000)
    expect(again.stats.received).toBe(0)
    expect((await dlq.list({})).length - before).toBe(poison.length)
  })
})
