import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkLedger, quiesce } from '../helpers/fault/checker.js'
import { LoadGenerator } from '../helpers/fault/load.js'
import { HealthMonitor } from '../helpers/fault/monitor.js'
import { note, secs, sleep } from '../helpers/fault/util.js'
import { FaultWorld } from '../helpers/fault/world.js'

/**
 * R06 (reliability.md §5): every PostgreSQL process SIGSTOPped for 15 s under load (a hung database:
 * TCP connects succeed, nothing answers). The request budget is INGEST_COMMIT_TIMEOUT_SECONDS=3:
 * no request may take longer than that (+1 s slack) thanks to the connect, query and commit
 * timeouts; after SIGCONT nothing acknowledged is lost.
 */
const COMMIT_TIMEOUT_S = 3
const HANG_MS = 15_000

describe('PostgreSQL hang (SIGSTOP) under load (R06)', () => {
  let world: FaultWorld

  beforeAll(async () => {
    world = await FaultWorld.create()
  })
  afterAll(async () => {
    await world?.destroy()
  })

  it(`no request exceeds ${COMMIT_TIMEOUT_S} s + 1 s while PostgreSQL hangs; after SIGCONT nothing acked is lost`, async () => {
    const t0 = Date.now()
    const svc = await world.startService({
      INGEST_COMMIT_TIMEOUT_SECONDS: String(COMMIT_TIMEOUT_S),
      DB_QUERY_TIMEOUT_MS: '1500',
      DB_CONNECT_TIMEOUT_MS: '1000',
      CB_RECOVERY_TIMEOUT: '2',
    })
    // The client waits far longer than the budget, so a hung request shows as a long latency.
    const load = new LoadGenerator({ url: () => svc.url, fleet: world.fleet, workers: 8, rate: 300, requestTimeoutMs: 12_000, retry: true })
    const monitor = new HealthMonitor(() => svc, 500)
    load.start()
    monitor.start()
    await sleep(3000)
    const tStop = Date.now()
    const pids = world.pg.pause()
    note(`SIGSTOP sent to ${pids.length} PostgreSQL processes`)
    let tCont = 0
    try {
      await sleep(HANG_MS)
    } finally {
      world.pg.resume()
      tCont = Date.now()
    }
    await sleep(6000)
    await load.stop(25_000)
    await monitor.stop()
    const quietMs = await quiesce(svc, { timeoutMs: 30_000 })
    const result = await checkLedger(world.pg, load, 'postgres-hang')
    note(`postgres-hang took ${secs(Date.now() - t0)} s (quiescence ${secs(quietMs)} s)`)

    const budgetMs = COMMIT_TIMEOUT_S * 1000 + 1000
    const slow = load.requests.filter((r) => r.latencyMs > budgetMs).map((r) => ({ t: secs(r.t0 - tStop), ms: r.latencyMs, status: r.status, error: r.error }))
    const during = load.requests.filter((r) => r.t0 >= tStop && r.t0 < tCont)
    note('postgres-hang during the hang', {
      requests: during.length,
      statuses: during.reduce<Record<string, number>>((a, r) => ((a[String(r.status ?? r.error)] = (a[String(r.status ?? r.error)] ?? 0) + 1), a), {}),
      maxLatencyMs: Math.max(0, ...during.map((r) => r.latencyMs)),
    })
    const breakerLog = svc.logLines(/circuit breaker/).map((l) => ({ t: secs(Number(l['time']) - tStop), from: l['from'], to: l['to'] }))
    const flushFailed = svc.logLines(/flush failed/).map((l) => secs(Number(l['time']) - tStop))
    note('postgres-hang breaker', { transitions: breakerLog, flushFailuresAt: flushFailed, maxConsecutiveFailures: Math.max(0, ...monitor.samples.map((s) => s.health?.breaker?.consecutiveFailures ?? 0)) })
    // The budget holds for every request, during the hang and after it.
    expect(slow, `requests slower than ${budgetMs} ms`).toEqual([])
    // Anti-vacuity: the hang was felt (503 + Retry-After while PostgreSQL was stopped), and the breaker opened.
    expect(during.filter((r) => r.status === 503).length).toBeGreaterThan(0)
    expect(monitor.sawOpen(), `breaker never opened during a ${HANG_MS / 1000} s hang (flush failures at ${flushFailed.join(', ')} s after SIGSTOP; CB_FAILURE_THRESHOLD default 5)`).toBe(true)
    expect(result.load.statuses['500'] ?? 0).toBe(0)
    // Nothing acked lost, nothing duplicated; every reading got a definite answer in the end.
    expect(result.examples).toEqual({ lost: [], duplicated: [], unexpected: [] })
    expect(result).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, rejectedButStored: 0, keyMismatch: 0 })
    expect(result.rows).toBe(result.distinctKeys)
    expect(result.load.fail).toBe(0)
    expect(result.load.unknown).toBe(0)
    expect(load.requests.some((r) => r.t0 > tCont + 3000 && r.status === 200)).toBe(true)
    expect(svc.logProblems(world.fleet.secrets)).toEqual([])
  })
})
