import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkLedger, quiesce } from '../helpers/fault/checker.js'
import { LoadGenerator } from '../helpers/fault/load.js'
import { HealthMonitor, resilienceHealth } from '../helpers/fault/monitor.js'
import { metric } from '../helpers/fault/service.js'
import { note, secs, sleep } from '../helpers/fault/util.js'
import { FaultWorld } from '../helpers/fault/world.js'

/**
 * R05 (reliability.md §5): PostgreSQL crashes (`pg_ctl stop -m immediate`) for 10 s under HTTP load,
 * then starts again (crash recovery). No ack without commit: every reading that got a 2xx is stored
 * exactly once. With the default CB_OPEN_ACTION=503 clients get 503 + Retry-After and retry; with
 * CB_OPEN_ACTION=dlq they get dead_lettered receipts and the DLQ drains by itself after recovery
 * (default DLQ_CONSUMER_* settings: the replay started by the breaker closing must drain it all).
 */
const FAST_FAILURE = {
  CB_RECOVERY_TIMEOUT: '2',
  DB_CONNECT_TIMEOUT_MS: '1000',
  DB_QUERY_TIMEOUT_MS: '1000',
  INGEST_COMMIT_TIMEOUT_SECONDS: '5',
}
const OUTAGE_MS = 10_000

describe('PostgreSQL crash under load, CB_OPEN_ACTION=503 (R05)', () => {
  let world: FaultWorld

  beforeAll(async () => {
    world = await FaultWorld.create()
  })
  afterAll(async () => {
    await world?.destroy()
  })

  it('every 2xx reading is stored once; clients saw 503 + Retry-After; the breaker opened and closed', async () => {
    const t0 = Date.now()
    const svc = await world.startService(FAST_FAILURE)
    const load = new LoadGenerator({ url: () => svc.url, fleet: world.fleet, workers: 8, rate: 300, requestTimeoutMs: 8000, retry: true })
    const monitor = new HealthMonitor(() => svc)
    load.start()
    monitor.start()
    await sleep(3000)
    const tCrash = Date.now()
    await world.pg.stopImmediate()
    await sleep(OUTAGE_MS)
    await world.pg.start()
    const tUp = Date.now()
    note(`postgres down ${secs(tUp - tCrash)} s`)
    await sleep(6000)
    await load.stop(25_000)
    await monitor.stop()
    const quietMs = await quiesce(svc, { timeoutMs: 30_000 })
    const health = await resilienceHealth(svc).catch((err: Error) => err)
    const m = await svc.metrics()
    const result = await checkLedger(world.pg, load, 'postgres-crash/503')
    note(`postgres-crash/503 took ${secs(Date.now() - t0)} s (quiescence ${secs(quietMs)} s)`)

    // Nothing acked is lost, nothing is stored twice, nothing appears from nowhere.
    expect(result.examples).toEqual({ lost: [], duplicated: [], unexpected: [] })
    expect(result).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, rejectedButStored: 0, keyMismatch: 0 })
    expect(result.rows).toBe(result.distinctKeys)
    expect(result.nullKeys).toBe(0)
    // Anti-vacuity: the outage was seen by clients as 503 with Retry-After, and they retried.
    const during = load.requests.filter((r) => r.t0 >= tCrash && r.t0 < tUp)
    const s503 = during.filter((r) => r.status === 503)
    expect(s503.length, JSON.stringify(result.load.statuses)).toBeGreaterThan(0)
    expect(s503.every((r) => r.retryAfter !== undefined && r.retryAfter >= 1)).toBe(true)
    expect(result.load.retries).toBeGreaterThan(0)
    // An outage is a 503, never a 500.
    expect(result.load.statuses['500'] ?? 0).toBe(0)
    // Liveness: writes succeed after recovery and every retried reading ended with a definite answer.
    expect(load.requests.some((r) => r.t0 > tUp + 3000 && r.status === 200)).toBe(true)
    expect(result.load.fail).toBe(0)
    expect(result.load.unknown).toBe(0)
    // The breaker opened during the outage and is closed again.
    expect(monitor.sawOpen()).toBe(true)
    expect(metric(m, 'ingest_breaker_state')).toBe(0)
    expect(health).not.toBeInstanceOf(Error)
    if (!(health instanceof Error)) {
      expect(health.breaker?.state).toBe('closed')
      expect(health.breaker?.opened ?? 0).toBeGreaterThanOrEqual(1)
    }
    expect(svc.logProblems(world.fleet.secrets)).toEqual([])
  })
})

describe('PostgreSQL crash under load, CB_OPEN_ACTION=dlq (R05 + DLQ replay)', () => {
  let world: FaultWorld

  beforeAll(async () => {
    world = await FaultWorld.create()
  })
  afterAll(async () => {
    await world?.destroy()
  })

  it('clients get dead_lettered receipts during the outage; after recovery the DLQ drains and every dead-lettered reading is stored exactly once', async () => {
    const t0 = Date.now()
    const svc = await world.startService({ ...FAST_FAILURE, CB_OPEN_ACTION: 'dlq', DLQ_BACKEND: 'local' })
    const load = new LoadGenerator({ url: () => svc.url, fleet: world.fleet, workers: 8, rate: 300, requestTimeoutMs: 8000, retry: true })
    const monitor = new HealthMonitor(() => svc)
    load.start()
    monitor.start()
    await sleep(3000)
    const tCrash = Date.now()
    await world.pg.stopImmediate()
    await sleep(OUTAGE_MS)
    await world.pg.start()
    const tUp = Date.now()
    await sleep(6000)
    await load.stop(25_000)
    // Anti-vacuity first (fails fast when nothing was dead-lettered): during the outage clients got
    // 200 with dead_lettered receipts instead of 503.
    const early = load.summary()
    const outage = load.requests.filter((r) => r.t0 >= tCrash && r.t0 < tUp)
    const outageStatuses = outage.reduce<Record<string, number>>((a, r) => ((a[String(r.status ?? r.error)] = (a[String(r.status ?? r.error)] ?? 0) + 1), a), {})
    note('postgres-crash/dlq during the outage', { requests: outage.length, statuses: outageStatuses, deadLetteredReadings: early.deadLettered })
    expect(early.deadLettered, `no dead_lettered receipts; statuses during the outage: ${JSON.stringify(outageStatuses)}`).toBeGreaterThan(0)
    expect(outage.filter((r) => r.status === 200).length).toBeGreaterThan(0)
    // Drained: dlq.depth 0 and no replay running, for 3 ticks.
    let lastHealth = ''
    const quietMs = await quiesce(svc, {
      timeoutMs: 90_000,
      extra: async () => {
        const h = await resilienceHealth(svc)
        lastHealth = JSON.stringify({ dlq: h.dlq, replay: h.replay, breaker: h.breaker?.state })
        return h.dlq?.depth === 0 && h.replay?.running === false
      },
    }).catch((err: Error) => {
      throw new Error(`${err.message}; last /resilience/health: ${lastHealth}`)
    })
    await monitor.stop()
    const health = await resilienceHealth(svc)
    const result = await checkLedger(world.pg, load, 'postgres-crash/dlq')
    note(`postgres-crash/dlq took ${secs(Date.now() - t0)} s (drain + quiescence ${secs(quietMs)} s); max dlq depth seen ${monitor.maxDlqDepth()}`, { dlq: health.dlq, replay: health.replay })

    // The DLQ saw them all and the automatic replay moved them to the store.
    expect(health.dlq?.total_sent ?? 0).toBeGreaterThanOrEqual(result.deadLettered)
    expect(health.replay?.replayed ?? 0).toBeGreaterThan(0)
    // Every acked reading (dead-lettered ones included) is stored exactly once.
    expect(result.examples).toEqual({ lost: [], duplicated: [], unexpected: [] })
    expect(result).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, rejectedButStored: 0, keyMismatch: 0 })
    expect(result.rows).toBe(result.distinctKeys)
    expect(result.nullKeys).toBe(0)
    expect(health.dlq).toMatchObject({ depth: 0, parked: 0 })
    expect(health.breaker?.state).toBe('closed')
    expect(health.breaker?.opened ?? 0).toBeGreaterThanOrEqual(1)
    expect(result.load.statuses['500'] ?? 0).toBe(0)
    expect(result.load.fail).toBe(0)
    expect(result.load.unknown).toBe(0)
    expect(svc.logProblems(world.fleet.secrets)).toEqual([])
  })
})

describe('PostgreSQL crash with CB_OPEN_ACTION=dlq, and the service SIGKILLed during the outage (R05 + R02)', () => {
  let world: FaultWorld

  beforeAll(async () => {
    world = await FaultWorld.create()
  })
  afterAll(async () => {
    await world?.destroy()
  })

  it('dead-lettered readings survive the crash of the service (local DLQ file) and the restarted service drains them', async () => {
    const t0 = Date.now()
    const svc = await world.startService({ ...FAST_FAILURE, CB_OPEN_ACTION: 'dlq', DLQ_BACKEND: 'local' })
    const load = new LoadGenerator({ url: () => svc.url, fleet: world.fleet, workers: 8, rate: 300, requestTimeoutMs: 8000, retry: true, maxRetryDelayMs: 500 })
    load.start()
    await sleep(2000)
    await world.pg.stopImmediate()
    await sleep(6000)
    // Entries are in the DLQ file only; the process dies with them unreplayed.
    const before = await resilienceHealth(svc)
    const tKill = svc.kill('SIGKILL')
    await svc.waitExit(10_000)
    await world.pg.start()
    await svc.start()
    const tUp = Date.now()
    await sleep(3000)
    await load.stop(20_000)
    let lastHealth = ''
    let drained = ''
    const quietMs = await quiesce(svc, {
      timeoutMs: 75_000,
      extra: async () => {
        const h = await resilienceHealth(svc)
        lastHealth = JSON.stringify({ dlq: h.dlq, replay: h.replay, breaker: h.breaker?.state })
        return h.dlq?.depth === 0 && h.replay?.running === false
      },
    }).catch((err: Error) => {
      drained = `${err.message}; last /resilience/health: ${lastHealth}`
      return Number.NaN
    })
    const result = await checkLedger(world.pg, load, 'postgres-crash/dlq+kill')
    note(`postgres-crash/dlq+kill took ${secs(Date.now() - t0)} s; DLQ depth at the kill ${before.dlq?.depth}; drained ${Number.isNaN(quietMs) ? 'NO' : `${secs(quietMs)} s after the load stopped (${secs(Date.now() - tUp)} s after restart)`}`, { killAtS: secs(tKill - t0) })

    // Anti-vacuity: entries were waiting in the DLQ when the process died.
    expect(before.dlq?.depth ?? 0).toBeGreaterThan(0)
    expect(result.deadLettered).toBeGreaterThan(0)
    // The restarted service drains them (automatic replay) within the deadline.
    expect(drained).toBe('')
    // Every acked reading (dead-lettered ones included) is stored exactly once.
    expect(result.examples).toEqual({ lost: [], duplicated: [], unexpected: [] })
    expect(result).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, rejectedButStored: 0, keyMismatch: 0 })
    expect(result.rows).toBe(result.distinctKeys)
    expect(result.load.unknown).toBe(0)
    expect(svc.logProblems(world.fleet.secrets)).toEqual([])
  })
})
