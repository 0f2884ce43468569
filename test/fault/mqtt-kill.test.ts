import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { binPath, removePackageCopy } from '../helpers/fault/package.js'
import { type Fleet, setupFleet } from '../helpers/fault/setup.js'
import { eventually, ListenerProcess, type Message, PrivateBroker, Publisher, readingMessage } from '../helpers/mosquitto.js'
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../helpers/services.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const KEY = 'mqtt-fault-global-key-3b9e'

/**
 * `ingest mqtt listen` as users run it (a child process of the built package) against a private
 * Mosquitto and a PostgreSQL database of its own: SIGKILL half way through a stream, and two
 * listeners sharing one subscription group. Rows are counted by dedup key (every message has a msgId).
 */
describe.skipIf(!(await postgresAvailable()))('mqtt listen: SIGKILL mid-stream and a shared group (processes, private Mosquitto)', () => {
  let broker: PrivateBroker
  let db: TestDatabase
  let dir: string
  let fleet: Fleet
  let bin: string
  let client: pg.Client
  const procs: ListenerProcess[] = []

  const env = (prefix: string, clientId: string, extra: Record<string, string> = {}): Record<string, string> => {
    const data = join(dir, `data-${clientId}`)
    mkdirSync(data, { recursive: true })
    return { DATABASE_URL: db.url, INGEST_DATA_DIR: data, INGEST_API_KEY: KEY, MQTT_URL: broker.url, MQTT_TOPIC_PREFIX: prefix, MQTT_CLIENT_ID: clientId, MQTT_CONNECTIONS: '8', ...extra }
  }
  const listener = async (e: Record<string, string>, args: string[] = []): Promise<ListenerProcess> => {
    const l = await ListenerProcess.create(bin, e, dir, args)
    procs.push(l)
    await eventually('the listener to connect', async () => (await l.get<{ health?: { connected?: boolean } }>('/mqtt/health'))?.body.health?.connected === true, 20_000)
    await sleep(500)
    return l
  }
  const sensors = (): number[] => fleet.devices.flatMap((d) => d.sensors.map((s) => s.id))
  const messages = (prefix: string, tag: string, n: number): Message[] => {
    const ids = sensors()
    const now = Date.now()
    return Array.from({ length: n }, (_, i) => readingMessage(prefix, ids[i % ids.length] as number, i, now, tag))
  }
  const count = async (tag: string): Promise<{ rows: number; keys: number }> => {
    const r = await client.query<{ n: string; d: string }>('SELECT count(*) AS n, count(DISTINCT (sensor_id, dedup_key)) AS d FROM sensor_readings WHERE dedup_key LIKE $1', [`${tag}-%`])
    return { rows: Number(r.rows[0]?.n), keys: Number(r.rows[0]?.d) }
  }
  const missing = async (tag: string, n: number): Promise<number[]> => {
    const r = await client.query<{ dedup_key: string }>('SELECT dedup_key FROM sensor_readings WHERE dedup_key LIKE $1', [`${tag}-%`])
    const seen = new Set(r.rows.map((x) => x.dedup_key))
    return Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(`${tag}-${i}`))
  }

  beforeAll(async () => {
    broker = await PrivateBroker.create()
    db = await createTestDatabase()
    dir = mkdtempSync(join(tmpdir(), 'ingest-mqtt-fault-'))
    bin = await binPath()
    fleet = await setupFleet({ DATABASE_URL: db.url, INGEST_DATA_DIR: join(dir, 'setup') }, dir, { devices: 2, sensorsPerDevice: 4 })
    client = new pg.Client({ connectionString: db.url })
    await client.connect()
  })
  afterAll(async () => {
    for (const p of procs) await p.destroy()
    await client?.end().catch(() => undefined)
    await db?.drop().catch(() => undefined)
    await broker?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
    removePackageCopy()
  })

  it('10 000 QoS 1 messages, the listener SIGKILLed half way and started again: every message stored exactly once', async () => {
    const prefix = `kill-${process.pid}`
    const tag = 'k'
    const N = 10_000
    const l = await listener(env(prefix, `${prefix}-c`))
    const publisher = await Publisher.connect(broker.url, `${prefix}-pub`)
    const publishing = publisher.publishAll(messages(prefix, tag, N), { window: 50, timeoutMs: 240_000 })
    await eventually('half the stream to be stored', async () => (await count(tag)).rows >= N / 2, 120_000, 20)
    l.kill('SIGKILL')
    const exit = await l.waitExit(10_000)
    const atKill = await count(tag)
    await sleep(1000)
    await l.start()
    expect(await publishing).toBe(N)
    await publisher.close()
    await eventually('every message to be stored', async () => (await count(tag)).rows >= N, 180_000, 250)
    await sleep(1500)
    const final = await count(tag)
    const stats = await l.stats()
    // Anti-vacuity: killed by the signal, with part of the stream still to store, which the restart stored.
    expect(exit.signal).toBe('SIGKILL')
    expect(atKill.rows).toBeLessThan(N)
    expect(Number(stats?.['stored']) + Number(stats?.['duplicates'])).toBeGreaterThanOrEqual(N - atKill.rows)
    // The broker resent what the killed process had received but not acked (DUP=1): at-least-once at work.
    expect(Number(stats?.['redelivered'])).toBeGreaterThan(0)
    // Exactly once: every msgId stored, one row each.
    expect(await missing(tag, N)).toEqual([])
    expect(final).toEqual({ rows: N, keys: N })
    expect(l.logProblems()).toEqual([])
    console.log(`[mqtt-kill] killed at ${atKill.rows} stored; after restart: ${JSON.stringify(stats)}`)
  })

  it('two listeners in one --shared-group split a 5 000-message stream: each stores >= 20%, the sum is what was published, 0 duplicates', async () => {
    const prefix = `shared-${process.pid}`
    const tag = 's'
    const N = 5000
    const args = ['--shared-group', `grp-${process.pid}`, '--topics', 'iot']
    const [a, b] = await Promise.all([listener(env(prefix, `${prefix}-a`, { MQTT_CONNECTIONS: '4' }), args), listener(env(prefix, `${prefix}-b`, { MQTT_CONNECTIONS: '4' }), args)])
    if (!a || !b) throw new Error('listeners did not start')
    const publisher = await Publisher.connect(broker.url, `${prefix}-pub`)
    expect(await publisher.publishAll(messages(prefix, tag, N), { window: 50 })).toBe(N)
    await publisher.close()
    await eventually('every message to be stored', async () => (await count(tag)).rows >= N, 120_000, 250)
    await sleep(1000)
    const [sa, sb] = await Promise.all([a.stats(), b.stats()])
    const storedA = Number(sa?.['stored'])
    const storedB = Number(sb?.['stored'])
    console.log(`[mqtt-shared] a stored ${storedA}, b stored ${storedB}`)
    expect(storedA).toBeGreaterThanOrEqual(0.2 * N)
    expect(storedB).toBeGreaterThanOrEqual(0.2 * N)
    expect(storedA + storedB).toBe(N)
    expect(Number(sa?.['duplicates']) + Number(sb?.['duplicates'])).toBe(0)
    expect(await count(tag)).toEqual({ rows: N, keys: N })
    expect([...a.logProblems(), ...b.logProblems()]).toEqual([])
  })
})
