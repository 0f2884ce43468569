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
 * restarted mid-stream (persistence on, SIGTERM) loses nothing that its publisher got a PUBACK for
 * with `--shared-group none` while the publisher keeps publishing; with a shared group, Mosquitto
 * 2.0.11 drops what the restarted broker acked before the listener subscribed again (its sessions come
 * back without their $share subscriptions), and nothing else, and nothing when the publisher comes
 * back after the listener.
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

  it('--shared-group none, the broker restarted while the publisher keeps publishing: every message it got a PUBACK for is stored once, including those acked before the listener was back', async () => {
    const r = await restartWhilePublishing(world, 'none')
    console.log(`[mqtt-broker] --shared-group none: ${r.ackedInGap} PUBACKs in the ${r.gapMs} ms between the broker's restart and the listener's reconnect, ${r.missing.length} of ${r.n} lost, ${r.final.rows} rows`)
    // Anti-vacuity: the stream was under way at the stop, and the restarted broker acked messages while
    // the listener was still away (with a shared group those have no subscriber and are dropped).
    expect(r.atStop).toBeLessThan(r.n)
    expect(r.disconnectedMeanwhile).toBe(true)
    expect(r.ackedInGap).toBeGreaterThan(0)
    expect(r.acked).toBe(r.n)
    expect(r.missing).toEqual([])
    expect(r.final).toEqual({ rows: r.n, keys: r.n })
    expect(r.listener.exits).toEqual([])
    expect(r.listener.logProblems()).toEqual([])
  })

  it('a shared group, the broker restarted while the publisher keeps publishing: what is lost (Mosquitto 2.0.11 drops $share subscriptions) was acked between the stop and the listener subscribing again, nothing else', async () => {
    const r = await restartWhilePublishing(world, 'ingest')
    const outside = r.missing.filter((i) => {
      const at = r.ackedAt.get(i) ?? 0
      return at < r.stopAt || at > r.listenerBackAt + 1000
    })
    console.log(`[mqtt-broker] shared group: ${r.ackedInGap} PUBACKs in the ${r.gapMs} ms between the broker's restart and the listener's reconnect, ${r.missing.length} of ${r.n} lost (the README's bound), ${outside.length} lost outside that window`)
    expect(r.acked).toBe(r.n)
    expect(outside).toEqual([])
    expect(r.final.rows).toBe(r.final.keys)
    expect(r.final.rows + r.missing.length).toBe(r.n)
    expect(r.listener.exits).toEqual([])
  })

  it('a shared group and a publisher that comes back only after the listener: every message the publisher got a PUBACK for is stored, once', async () => {
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

/**
 * `mqtt listen --shared-group <group>` and a device publishing a paced QoS 1 stream through a broker
 * restart (SIGTERM, 2 s down, started again on the same port and persistence file). The publisher stays
 * up: it reconnects within 200 ms and resends what was not acked, so it is back before the listener
 * (reconnect backoff). Returns what was stored and how many PUBACKs the restarted broker sent before
 * the listener had reconnected (the window a broker without the listener's subscription drops).
 */
async function restartWhilePublishing(world: MqttWorld, group: string) {
  const tag = `g${group.replace(/[^a-z0-9]/gi, '')}`
  const prefix = `restart-${tag}-${process.pid}`
  const n = 2000
  if (!world.broker.running) await world.broker.start()
  const l = await world.listener(world.env(prefix, `${prefix}-c`, { MQTT_SHARED_GROUP: group, MQTT_CONNECTIONS: group === 'none' ? '1' : '4' }))
  const publisher = await Publisher.connect(world.broker.url, `${prefix}-pub`)
  let brokerBackAt = Infinity
  let listenerBackAt = Infinity
  let ackedInGap = 0
  const ackedAt = new Map<number, number>()
  // 250 messages/s for 8 s, well under one connection's commit rate (bench/RESULTS.md: m1).
  const publishing = publisher.publishAll(world.messages(prefix, tag, n), {
    window: 10,
    intervalMs: 4,
    timeoutMs: 120_000,
    onAcked: (_, i) => {
      const now = Date.now()
      ackedAt.set(i, now)
      if (now >= brokerBackAt && now < listenerBackAt) ackedInGap++
    },
  })
  await eventually('600 PUBACKs', () => ackedAt.size >= 600, 30_000, 10)
  const stopAt = Date.now()
  await world.broker.stop('SIGTERM')
  const atStop = (await world.count(tag)).rows
  await sleep(1000)
  const disconnectedMeanwhile = (await l.get<Health>('/mqtt/health'))?.body.health?.connected === false
  await sleep(1000)
  await world.broker.start()
  brokerBackAt = Date.now()
  await eventually('the listener to reconnect', async () => (await l.get<Health>('/mqtt/health'))?.body.health?.connected === true, 20_000, 20)
  listenerBackAt = Date.now()
  const ackedCount = await publishing
  await publisher.close()
  // Everything acked is stored within seconds unless the broker dropped it: wait for n, or for the count to settle.
  let last = -1
  await eventually('the stored count to reach n or settle', async () => {
    const rows = (await world.count(tag)).rows
    const settled = rows === last
    last = rows
    return rows >= n || settled
  }, 60_000, 3000)
  await sleep(1000)
  return { n, acked: ackedCount, ackedAt, stopAt, listenerBackAt, atStop, disconnectedMeanwhile, ackedInGap, gapMs: listenerBackAt - brokerBackAt, missing: await world.missing(tag, n), final: await world.count(tag), listener: l }
}
