import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { eventually, MqttWorld, Publisher } from '../helpers/mosquitto.js'
import { postgresAvailable } from '../helpers/services.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * `ingest mqtt listen` as users run it (a child process of the built package) against a private
 * Mosquitto and a PostgreSQL database of its own: SIGKILL half way through a stream, and two
 * listeners sharing one subscription group. Rows are counted by dedup key (every message has a msgId).
 */
describe.skipIf(!(await postgresAvailable()))('mqtt listen: SIGKILL mid-stream and a shared group (processes, private Mosquitto)', () => {
  let world: MqttWorld

  beforeAll(async () => {
    world = await MqttWorld.create()
  })
  afterAll(async () => {
    await world?.destroy()
  })

  it('10 000 QoS 1 messages, the listener SIGKILLed half way and started again: every message stored exactly once', async () => {
    const prefix = `kill-${process.pid}`
    const tag = 'k'
    const N = 10_000
    const l = await world.listener(world.env(prefix, `${prefix}-c`))
    const publisher = await Publisher.connect(world.broker.url, `${prefix}-pub`)
    const publishing = publisher.publishAll(world.messages(prefix, tag, N), { window: 50, timeoutMs: 240_000 })
    await eventually('half the stream to be stored', async () => (await world.count(tag)).rows >= N / 2, 120_000, 20)
    l.kill('SIGKILL')
    const exit = await l.waitExit(10_000)
    const atKill = await world.count(tag)
    await sleep(1000)
    await l.start()
    expect(await publishing).toBe(N)
    await publisher.close()
    await eventually('every message to be stored', async () => (await world.count(tag)).rows >= N, 180_000, 250)
    await sleep(1500)
    const final = await world.count(tag)
    const stats = await l.stats()
    console.log(`[mqtt-kill] killed at ${atKill.rows} stored; after restart: ${JSON.stringify(stats)}`)
    // Anti-vacuity: killed by the signal, with part of the stream still to store, which the restart stored.
    expect(exit.signal).toBe('SIGKILL')
    expect(atKill.rows).toBeLessThan(N)
    expect(Number(stats?.['stored']) + Number(stats?.['duplicates'])).toBeGreaterThanOrEqual(N - atKill.rows)
    // The broker resent what the killed process had received but not acked (DUP=1): at-least-once at work.
    expect(Number(stats?.['redelivered'])).toBeGreaterThan(0)
    // Exactly once: every msgId stored, one row each.
    expect(await world.missing(tag, N)).toEqual([])
    expect(final).toEqual({ rows: N, keys: N })
    expect(l.logProblems()).toEqual([])
  })

  it('two listeners in one --shared-group split a 5 000-message stream: each stores >= 20%, the sum is what was published, 0 duplicates', async () => {
    const prefix = `shared-${process.pid}`
    const tag = 's'
    const N = 5000
    const args = ['--shared-group', `grp-${process.pid}`, '--topics', 'iot']
    const [a, b] = await Promise.all([world.listener(world.env(prefix, `${prefix}-a`, { MQTT_CONNECTIONS: '4' }), args), world.listener(world.env(prefix, `${prefix}-b`, { MQTT_CONNECTIONS: '4' }), args)])
    const publisher = await Publisher.connect(world.broker.url, `${prefix}-pub`)
    expect(await publisher.publishAll(world.messages(prefix, tag, N), { window: 50 })).toBe(N)
    await publisher.close()
    await eventually('every message to be stored', async () => (await world.count(tag)).rows >= N, 120_000, 250)
    await sleep(1000)
    const [sa, sb] = await Promise.all([a.stats(), b.stats()])
    const storedA = Number(sa?.['stored'])
    const storedB = Number(sb?.['stored'])
    console.log(`[mqtt-shared] a stored ${storedA}, b stored ${storedB}`)
    expect(storedA).toBeGreaterThanOrEqual(0.2 * N)
    expect(storedB).toBeGreaterThanOrEqual(0.2 * N)
    expect(storedA + storedB).toBe(N)
    expect(Number(sa?.['duplicates']) + Number(sb?.['duplicates'])).toBe(0)
    expect(await world.count(tag)).toEqual({ rows: N, keys: N })
    expect([...a.logProblems(), ...b.logProblems()]).toEqual([])
  })
})
