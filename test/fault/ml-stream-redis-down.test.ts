import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { ML_STREAMS } from '../../src/lib/ports/ml-stream.js'
import { type Harness, startHarness } from '../helpers/http-harness.js'
import { eventually } from '../helpers/mosquitto.js'
import { PrivateRedis } from '../helpers/fault/redis.js'

const GLOBAL = { 'content-type': 'application/json', 'x-api-key': 'test-global-key' }
const REQUESTS = 40
const PER_REQUEST = 25
const KILL_AFTER = 10

/**
 * DESIGN §6 "after the commit" and §11: the ML stream is best effort and never fails ingestion. A
 * private redis-server (random port) is SIGKILLed while readings are being posted: every posted reading
 * is acknowledged and stored, the stream counts what it lost and health says Redis is unavailable; once
 * Redis is back (and the back-off period over) the stream publishes again.
 */
describe('ML stream: Redis killed mid-run', () => {
  let redis: PrivateRedis
  let h: Harness

  beforeAll(async () => {
    redis = await PrivateRedis.create()
    // Throttle off: every clean reading is offered to the stream, so what it lost is visible in its counts.
    h = await startHarness('sqlite', { REDIS_URL: redis.url, REDIS_KEY_PREFIX: 'mlfault:', ML_PUBLISH_MIN_INTERVAL_SECONDS: '0', ML_STREAM_MAXLEN: '100000' })
    await eventually('the ML stream to be connected', () => h.rt.mlStream.status().available, 10_000, 20)
  })
  afterAll(async () => {
    await h?.close()
    await redis?.destroy()
  })

  it('every posted reading is stored; the lost publishes are counted; the stream recovers after Redis restarts', async () => {
    const sensorId = Number((await h.sql('SELECT id FROM sensors ORDER BY id LIMIT 1'))[0]?.['id'])
    const base = h.clock.now() - 3_600_000
    const body = (request: number) => JSON.stringify({ readings: Array.from({ length: PER_REQUEST }, (_, i) => ({ sensor_id: sensorId, value: 30 + (i % 3) * 0.1, timestamp: new Date(base + (request * PER_REQUEST + i) * 1000).toISOString() })) })
    const post = (request: number) => h.app.inject({ method: 'POST', url: '/ingest/readings/bulk', headers: GLOBAL, payload: body(request) })

    const answers: Array<{ status: number; inserted: number }> = []
    let next = 0
    let done = 0
    let killed: Promise<void> | undefined
    let publishedAtKill = 0
    const worker = async () => {
      while (next < REQUESTS) {
        const r = await post(next++)
        answers.push({ status: r.statusCode, inserted: r.json<{ inserted: number }>().inserted })
        // Mid-run, while other requests are in flight: the stream has published (anti-vacuity), then Redis dies.
        if (++done === KILL_AFTER) {
          await eventually('the first publishes', () => h.rt.mlStream.status().published[ML_STREAMS.validated] > 0, 5000, 10)
          publishedAtKill = h.rt.mlStream.status().published[ML_STREAMS.validated]
          killed = redis.kill('SIGKILL')
          await killed
        }
      }
    }
    await Promise.all([worker(), worker(), worker(), worker()])
    expect(killed).toBeDefined()

    expect(answers).toHaveLength(REQUESTS)
    expect(answers.every((a) => a.status === 200 && a.inserted === PER_REQUEST)).toBe(true)
    const stored = Number((await h.sql('SELECT count(*) AS n FROM sensor_readings'))[0]?.['n'])
    expect(stored).toBe(REQUESTS * PER_REQUEST)

    await eventually('the ML stream to settle', () => h.rt.mlStream.status().queued === 0, 5000, 20)
    const st = h.rt.mlStream.status()
    expect(publishedAtKill).toBeGreaterThan(0)
    // Some readings were committed after the kill: their publishes are lost, counted, never retried into ingestion.
    expect(st.published[ML_STREAMS.validated]).toBeLessThan(REQUESTS * PER_REQUEST)
    expect(st.published[ML_STREAMS.validated] + st.dropped).toBe(REQUESTS * PER_REQUEST)
    expect(st.available).toBe(false)
    expect(st.lastError).not.toBeNull()
    const health = (await h.app.inject({ url: '/ingest/health' })).json<{ ml_stream: { status: string; dropped: number } }>()
    expect(health.ml_stream).toMatchObject({ status: 'unavailable', dropped: st.dropped })
    expect((await h.app.inject({ url: '/metrics', headers: GLOBAL })).body).toMatch(new RegExp(`^ingest_ml_stream_entries_total\\{stream="readings:validated",outcome="dropped"\\} ${st.dropped}$`, 'm'))

    // Redis back (empty: no persistence); the client reconnects by itself, the back-off ends (fake time).
    await redis.start()
    await eventually('the Redis client to reconnect', () => h.rt.redis?.status === 'ready', 20_000, 50)
    h.clock.advance(60_000)
    const before = h.rt.mlStream.status().published[ML_STREAMS.validated]
    let request = REQUESTS
    await eventually(
      'the stream to publish again',
      async () => {
        expect((await post(request++)).json()).toMatchObject({ inserted: PER_REQUEST })
        return h.rt.mlStream.status().published[ML_STREAMS.validated] > before
      },
      10_000,
      100,
    )
    expect(Number(await redis.command(['XLEN', `mlfault:${ML_STREAMS.validated}`]))).toBeGreaterThan(0)
    expect(h.rt.mlStream.status().available).toBe(true)
  })
})
