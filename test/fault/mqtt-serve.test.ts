import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { ServiceProcess } from '../helpers/fault/service.js'
import { eventually, MqttWorld, Publisher, readingMessage } from '../helpers/mosquitto.js'
import { postgresAvailable } from '../helpers/services.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** `serve` with FF_MQTT_INGEST_ENABLED=true runs the receivers in process; SIGTERM drains both transports. */
describe.skipIf(!(await postgresAvailable()))('MQTT receivers in serve, and SIGTERM (processes, private Mosquitto)', () => {
  let world: MqttWorld
  const services: ServiceProcess[] = []

  beforeAll(async () => {
    world = await MqttWorld.create()
  })
  afterAll(async () => {
    for (const s of services) await s.destroy()
    await world?.destroy()
  })

  it('serve with FF_MQTT_INGEST_ENABLED=true stores MQTT readings and answers /mqtt/health, /mqtt/stats and /metrics for them; SIGTERM exits 0', async () => {
    const prefix = `serve-${process.pid}`
    const svc = await ServiceProcess.create({ ...world.env(prefix, `${prefix}-c`, { MQTT_CONNECTIONS: '2' }), FF_MQTT_INGEST_ENABLED: 'true' }, world.dir)
    services.push(svc)
    await eventually('serve to connect to the broker', async () => (await svc.getJson<{ health?: { connected?: boolean } }>('/mqtt/health'))?.body.health?.connected === true, 20_000)
    await sleep(500)
    const sensorId = world.fleet.devices[0]?.sensors[0]?.id as number
    const publisher = await Publisher.connect(world.broker.url, `${prefix}-pub`)
    await publisher.publishAll(Array.from({ length: 20 }, (_, i) => readingMessage(prefix, sensorId, i, Date.now(), 'sv')))
    await publisher.close()
    await eventually('the readings to be stored', async () => (await world.count('sv')).rows === 20, 20_000)
    const stats = await svc.getJson<{ enabled: boolean; stats: Record<string, unknown> }>('/mqtt/stats')
    expect(stats?.status).toBe(200)
    expect(stats?.body).toMatchObject({ enabled: true, stats: { stored: 20, duplicates: 0, dead_lettered: 0, in_flight: 0, connections: 2, connected: true } })
    expect((await svc.getJson('/mqtt/stats', { 'x-api-key': 'wrong-key-000000000000' }))?.status).toBe(401)
    const metrics = await svc.metrics()
    expect(metrics?.get('ingest_mqtt_messages_total{outcome="stored"}')).toBe(20)
    svc.kill('SIGTERM')
    expect((await svc.waitExit(30_000)).code).toBe(0)
    expect(svc.logProblems([])).toEqual([])
  })

  it('mqtt listen on SIGTERM under load acks what committed and exits 0; restarted, it stores the rest exactly once', async () => {
    const prefix = `term-${process.pid}`
    const tag = 't'
    const N = 4000
    // Two connections (a few hundred messages/s): the SIGTERM must land mid-stream, whatever the machine's speed.
    const l = await world.listener(world.env(prefix, `${prefix}-c`, { MQTT_CONNECTIONS: '2' }))
    const publisher = await Publisher.connect(world.broker.url, `${prefix}-pub`)
    // The SIGTERM does not wait for the publisher: how long publishing takes varies with the broker's
    // saves (autosave on every change), and once everything is published the listener may catch up.
    const publishing = publisher.publishAll(world.messages(prefix, tag, N), { window: 50 })
    await eventually('part of the stream to be stored', async () => (await world.count(tag)).rows >= 500, 60_000, 20)
    l.kill('SIGTERM')
    const exit = await l.waitExit(30_000)
    const atExit = await world.count(tag)
    expect(await publishing).toBe(N)
    await publisher.close()
    expect(exit.code).toBe(0)
    expect(atExit.rows).toBeLessThan(N)
    expect(l.stdout).toMatch(/stopped on SIGTERM: \d+ stored/)
    await l.start()
    await eventually('every message to be stored', async () => (await world.count(tag)).rows >= N, 120_000, 250)
    await sleep(1000)
    expect(await world.missing(tag, N)).toEqual([])
    expect(await world.count(tag)).toEqual({ rows: N, keys: N })
    // Acked before the exit means committed: the restart finds nothing it stored again as new.
    const stats = await l.stats()
    expect(Number(stats?.['stored'])).toBe(N - atExit.rows)
    expect(Number(stats?.['duplicates'])).toBe(0)
    expect(l.logProblems()).toEqual([])
  })
})
