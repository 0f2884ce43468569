import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkLedger, quiesce } from '../helpers/fault/checker.js'
import { LoadGenerator } from '../helpers/fault/load.js'
import { HealthMonitor, resilienceHealth } from '../helpers/fault/monitor.js'
import { FaultProxy } from '../helpers/fault/proxy.js'
import { PrivateRedis } from '../helpers/fault/redis.js'
import { note, secs, sleep, waitFor } from '../helpers/fault/util.js'
import { FaultWorld } from '../helpers/fault/world.js'

/**
 * R08 (reliability.md §5, DESIGN §6 "Redis"): Redis SIGKILLed for 12 s under load, behind a node:net
 * fault proxy that counts connection attempts. Rate limits are on (high limits, so every request
 * calls Redis) and the Redis dedup pre-filter is on. While Redis is gone: no request is slower than
 * 1 s, nothing is refused, the database unique key still decides duplicates (0 duplicate rows), and
 * the service does not hammer Redis: at most one connection attempt per back-off period. After
 * Redis is back the service keeps working and uses Redis again. While Redis is still down the service
 * is also restarted (SIGTERM + start: it must start without Redis, and with its in-process dedup
 * layer empty only the database key can answer the resent readings as duplicates).
 *
 * The bound on connection attempts. Only the ioredis client opens connections: the rate limiter
 * (back-off 5 s doubling to 60 s) and the dedup gate (1 s doubling to 30 s) only issue commands,
 * which fail at once while the client is not connected (`enableOfflineQueue: false`), so their
 * back-off periods decide how often *commands* are tried, not connections. ioredis reconnects after
 * 1 s, 2 s, 4 s, 8 s... (doubling, capped at 60 s), counted from the loss of the connection. In an
 * outage of D ms it can therefore try at most n(D) times, n(D) = the number of partial sums
 * 1 s, 3 s, 7 s, 15 s, ... that are <= D (+1 s of timing slack). For D = 12 s that is 3 (at 1, 3, 7 s).
 * The allowed count is that per Redis client of the service (= the connections the proxy accepted
 * before the fault, checked to be small: one client per concern, not per request).
 */
const OUTAGE_MS = 12_000
const SLOW_MS = 1000

/** Attempts a back-off schedule (initial, doubling, capped) makes within `windowMs` after a failure. */
function attemptsWithin(windowMs: number, initialMs: number, maxMs: number): number {
  let t = 0
  let n = 0
  let d = initialMs
  while (t + d <= windowMs) {
    t += d
    n++
    d = Math.min(maxMs, d * 2)
  }
  return n
}

describe('Redis killed under load, behind a counting fault proxy (R08)', () => {
  let world: FaultWorld
  let redis: PrivateRedis
  let proxy: FaultProxy

  beforeAll(async () => {
    world = await FaultWorld.create()
    redis = await PrivateRedis.create()
    proxy = await FaultProxy.create(redis.port)
  })
  afterAll(async () => {
    await world?.destroy()
    await proxy?.close()
    await redis?.destroy()
  })

  it('no request slower than 1 s, at most one connection attempt per back-off period, 0 duplicate rows (also after a service restart without Redis); after Redis restarts it is used again', async () => {
    const t0 = Date.now()
    const svc = await world.startService({
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      RATE_LIMIT_ENABLED: '1',
      RATE_LIMIT_DEVICE_PER_MIN: '1000000',
      RATE_LIMIT_GLOBAL_PER_MIN: '1000000',
      RATE_LIMIT_SENSOR_PER_MIN: '1000000',
      DEDUP_ENABLED: '1',
    })
    const load = new LoadGenerator({ url: () => svc.url, fleet: world.fleet, workers: 8, rate: 300, requestTimeoutMs: 5000, retry: true })
    const monitor = new HealthMonitor(() => svc, 500)
    load.start()
    monitor.start()
    await sleep(4000)

    // Anti-vacuity: Redis is really in use, by both the rate limiter and the dedup pre-filter.
    const keysOf = async (pattern: string) => ((await redis.command(['KEYS', pattern])) as string[]).length
    const keysBefore = Number(await redis.command(['DBSIZE']))
    expect(await keysOf('ratelimit:*')).toBeGreaterThan(0)
    expect(await keysOf('dedup:msg:*')).toBeGreaterThan(0)
    const beforeResend = await load.resendAcked(100)
    const clients = proxy.accepted
    note(`redis-down: ${keysBefore} keys in Redis, ${clients} connection(s) through the proxy before the fault`)
    expect(clients).toBeGreaterThanOrEqual(1)
    expect(clients).toBeLessThanOrEqual(3)

    const tKill = Date.now()
    await redis.kill('SIGKILL')
    await sleep(3000)
    // Retries of stored readings while Redis is gone: the database unique key answers `duplicate`.
    const duringResend = await load.resendAcked(200)
    await sleep(Math.max(0, tKill + OUTAGE_MS - Date.now()))
    const tCount = Date.now()
    const attemptsDuring = proxy.acceptedBetween(tKill, tCount)
    const timeline = proxy.accepts.filter((t) => t >= tKill && t < tCount).map((t) => secs(t - tKill))

    // Still without Redis: restart the service (SIGTERM, start). Its in-process dedup layer is empty
    // and Redis is gone, so only the database unique key can tell the resent readings are duplicates;
    // and a service must start while Redis is down.
    const tSvcStop = svc.kill('SIGTERM')
    const svcExit = await svc.waitExit(15_000)
    await svc.start(15_000)
    const tSvcUp = Date.now()
    const afterRestartResend = await load.resendAcked(200)
    const tRestart = Date.now()
    await redis.start()

    // The service keeps working and, after its back-off, uses the (empty) restarted Redis again.
    let tBack = 0
    let backError = ''
    try {
      await waitFor(
        'the service to use Redis again (rate-limit counters and dedup markers in the restarted Redis)',
        async () => {
          const rl = await keysOf('ratelimit:*')
          const dd = await keysOf('dedup:msg:*')
          const h = await resilienceHealth(svc).catch(() => undefined)
          return rl > 0 && dd > 0 && h?.redis_connected === true
        },
        { timeoutMs: 75_000, everyMs: 500 },
      )
      tBack = Date.now()
    } catch (err) {
      backError = (err as Error).message
    }
    await sleep(1000)
    await load.stop(10_000)
    await monitor.stop()
    const quietMs = await quiesce(svc, { timeoutMs: 30_000 })
    const result = await checkLedger(world.pg, load, 'redis-down')

    const ioredisBound = attemptsWithin(tCount - tKill + 1000, 1000, 60_000)
    const allowed = clients * ioredisBound
    const inRestart = (r: { t0: number; t1: number }) => r.t1 >= tSvcStop && r.t0 <= tSvcUp
    const slow = load.requests.filter((r) => r.latencyMs > SLOW_MS).map((r) => ({ t: secs(r.t0 - tKill), ms: r.latencyMs, status: r.status, error: r.error }))
    const resendSlow = [...beforeResend.latenciesMs, ...duringResend.latenciesMs, ...afterRestartResend.latenciesMs].filter((ms) => ms > SLOW_MS)
    const tally = (xs: string[]) => xs.reduce<Record<string, number>>((a, x) => ((a[x] = (a[x] ?? 0) + 1), a), {})
    const outageSamples = monitor.samples.filter((s) => s.t > tKill + 1500 && s.t < tRestart && (s.t < tSvcStop || s.t > tSvcUp))
    note(`redis-down took ${secs(Date.now() - t0)} s (quiescence ${secs(quietMs)} s)`, {
      outageS: secs(tRestart - tKill),
      serviceRestartWithoutRedis: { exit: svcExit, stopS: secs(svcExit.at - tSvcStop), upS: secs(tSvcUp - tSvcStop) },
      resendAfterServiceRestart: tally(afterRestartResend.receipts),
      connectionAttemptsDuringOutage: attemptsDuring,
      atSecondsAfterKill: timeline,
      allowed: `${clients} client(s) x ${ioredisBound} = ${allowed}`,
      redisUsedAgainAfterRestartS: tBack ? secs(tBack - tRestart) : backError,
      resendBefore: tally(beforeResend.receipts),
      resendDuring: tally(duringResend.receipts),
      healthDuringOutage: outageSamples.at(-1)?.health ? { redis_connected: outageSamples.at(-1)?.health?.redis_connected, deduplicator: outageSamples.at(-1)?.health?.deduplicator } : 'unavailable',
    })

    // No request waited for Redis.
    expect(slow, `requests slower than ${SLOW_MS} ms`).toEqual([])
    expect(resendSlow).toEqual([])
    // Nothing refused (fail-open rate limits with high limits), nothing failed (outside the service restart).
    const notOk = load.requests.filter((r) => r.status !== 200 && !inRestart(r)).map((r) => ({ t: secs(r.t0 - tKill), status: r.status, error: r.error }))
    expect(notOk).toEqual([])
    expect(result.load.statuses['429'] ?? 0).toBe(0)
    // The restart without Redis: a clean exit, and up again quickly.
    expect(svcExit).toMatchObject({ code: 0, signal: null })
    expect(tSvcUp - tSvcStop).toBeLessThan(15_000)
    // At most one connection attempt per back-off period.
    expect(attemptsDuring).toBeLessThanOrEqual(allowed)
    // Anti-vacuity: the service noticed (it tried to reconnect, and reported Redis as not connected).
    expect(attemptsDuring).toBeGreaterThanOrEqual(1)
    expect(outageSamples.length).toBeGreaterThan(0)
    expect(outageSamples.every((s) => s.health?.redis_connected === false)).toBe(true)
    // Duplicates are answered as duplicates with or without Redis; 0 duplicate rows.
    expect(tally(beforeResend.receipts)).toEqual({ duplicate: beforeResend.receipts.length })
    expect(tally(duringResend.receipts)).toEqual({ duplicate: duringResend.receipts.length })
    expect(duringResend.receipts.length).toBeGreaterThan(0)
    expect(tally(afterRestartResend.receipts)).toEqual({ duplicate: afterRestartResend.receipts.length })
    expect(afterRestartResend.receipts.length).toBeGreaterThan(0)
    expect(result.examples).toEqual({ lost: [], duplicated: [], unexpected: [] })
    expect(result).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, rejectedButStored: 0, keyMismatch: 0 })
    expect(result.rows).toBe(result.distinctKeys)
    expect(result.load.unknown).toBe(0)
    // After the restart: still serving, and Redis is used again.
    expect(load.requests.filter((r) => r.t0 > tRestart).every((r) => r.status === 200)).toBe(true)
    expect(backError).toBe('')
    expect(svc.logProblems(world.fleet.secrets)).toEqual([])
  })
})
