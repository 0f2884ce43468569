import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { eventually, MqttWorld, Publisher, readingMessage } from '../helpers/mosquitto.js'
import { postgresAvailable } from '../helpers/services.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Health {
  enabled?: boolean
  health?: { connected?: boolean; running?: boolean }
}

/**
 * The broker going away (reliability.md §1.6, DESIGN §10): `mqtt listen` started before its broker
 * never exits and reports itself disconnected, then connects and stores within seconds; a broker
 * restarted mid-stream (persistence on, SIGTERM) loses nothing that its publisher got a PUBACK for.
 */
describe.skipIf(!(await postgresAvailable()))('mqtt listen and a broker that is down or restarts (processes, private Mosquitto)', () => {
  let world: MqttWorld

  beforeAll(async () => {
    world = await MqttWorld.create({ startBroker: false })
  })
  afterAll(async () => {
    await world?.destroy()
  })

  it('a broker started 10 s after the listener: the listener stays up, says disconnected meanwhile, and stores the first message within 5 s of the broker starting', async () => {
    const prefix = `late-${process.pid}`
    const l = await world.listener(world.env(prefix, `${prefix}-c`, { MQTT_CONNECTIONS: '2' }), [], { connected: false })
    const until = Date.now() + 10_000
    let polls = 0
    while (Date.now() < until) {
      const h = await l.get<Health>('/mqtt/health')
      expect(l.running).toBe(true)
      expect(h?.body).toMatchObject({ enabled: true, health: { running: true, connected: false } })
      polls++
      await sleep(500)
    }
    expect(polls).toBeGreaterThan(10)
    await world.broker.start()
    const started = Date.now()
    const sensorId = world.fleet.devices[0]?.sensors[0]?.id as number
    const publisher = await Publisher.connect(world.broker.url, `${prefix}-pub`)
    // Published every 100 ms: a message sent before the listener's subscription exists has no receiver (MQTT).
    let i = 0
    let firstStoredAt = 0
    while (Date.now() - started < 6000 && firstStoredAt === 0) {
      await publisher.publishAll([readingMessage(prefix, sensorId, i++, Date.now(), 'late')])
      if ((await world.count('late')).rows > 0) firstStoredAt = Date.now()
      await sleep(100)
    }
    await publisher.close()
    expect(firstStoredAt).toBeGreaterThan(0)
    expect(firstStoredAt - started).toBeLessThanOrEqual(5000)
    expect((await l.get<Health>('/mqtt/health'))?.body.health?.connected).toBe(true)
    expect(l.exits).toEqual([])
    expect(l.logProblems()).toEqual([])
    console.log(`[mqtt-broker] first message stored ${firstStoredAt - started} ms after the broker started`)
  })

  it('the broker restarted mid-stream: every message the publisher got a PUBACK for is stored, once', async () => {
    const prefix = `restart-${process.pid}`
    const tag = 'r'
    const N = 3000
    const l = await world.listener(world.env(prefix, `${prefix}-c`, { MQTT_CONNECTIONS: '4' }))
    const publisher = await Publisher.connect(world.broker.url, `${prefix}-pub`)
    const publishing = publisher.publishAll(world.messages(prefix, tag, N), { window: 10, timeoutMs: 180_000 })
    await eventually('a third of the stream to be stored', async () => (await world.count(tag)).rows >= N / 3, 60_000, 20)
    // The publisher comes back only after the listener: Mosquitto 2.0.11 restores sessions without their
    // $share subscriptions, so what is published before the receivers subscribe again has no receiver
    // and is dropped by the broker (a broker gap the README documents, not one of ours).
    await publisher.hold()
    await world.broker.stop('SIGTERM')
    const atStop = await world.count(tag)
    await sleep(1500)
    const disconnected = await l.get<Health>('/mqtt/health')
    await world.broker.start()
    await eventually('the listener to reconnect', async () => (await l.get<Health>('/mqtt/health'))?.body.health?.connected === true, 20_000)
    await sleep(500)
    await publisher.resume()
    expect(await publishing).toBe(N)
    await publisher.close()
    await eventually('every message to be stored', async () => (await world.count(tag)).rows >= N, 120_000, 250)
    await sleep(1000)
    // Anti-vacuity: the broker went away with the stream under way, and the listener saw it.
    expect(atStop.rows).toBeLessThan(N)
    expect(disconnected?.body.health?.connected).toBe(false)
    expect(await world.missing(tag, N)).toEqual([])
    expect(await world.count(tag)).toEqual({ rows: N, keys: N })
    expect(l.exits).toEqual([])
    expect(l.logProblems()).toEqual([])
  })
})
