import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkLedger, quiesce } from '../helpers/fault/checker.js'
import { LoadGenerator } from '../helpers/fault/load.js'
import { FaultProxy } from '../helpers/fault/proxy.js'
import { note, secs, sleep } from '../helpers/fault/util.js'
import { FaultWorld } from '../helpers/fault/world.js'

/**
 * R07 (reliability.md §5): connections to PostgreSQL cut in the middle of transactions, so some
 * COMMITs have an unknown outcome for the service: (a) `pg_terminate_backend` of the service's
 * busy backends every 20–50 ms, (b) a node:net proxy between the service and PostgreSQL that
 * resets every connection every ~600 ms. Whatever the service answers, a retry of the same reading
 * must never make a second row, and nothing acknowledged may be missing.
 */
describe('ambiguous commits: backends terminated and connections reset mid-transaction (R07)', () => {
  let world: FaultWorld
  let proxy: FaultProxy

  beforeAll(async () => {
    world = await FaultWorld.create()
    proxy = await FaultProxy.create(world.pg.port)
  })
  afterAll(async () => {
    await world?.destroy()
    await proxy?.close()
  })

  it('0 lost, 0 duplicated while transactions are cut; retries are answered duplicate, not stored twice', async () => {
    const t0 = Date.now()
    const svc = await world.startService({
      DATABASE_URL: world.pg.url.replace(`:${world.pg.port}/`, `:${proxy.port}/`),
      DB_CONNECT_TIMEOUT_MS: '1000',
      DB_QUERY_TIMEOUT_MS: '2000',
      CB_RECOVERY_TIMEOUT: '1',
      INGEST_COMMIT_TIMEOUT_SECONDS: '5',
    })
    const load = new LoadGenerator({ url: () => svc.url, fleet: world.fleet, workers: 8, rate: 400, packetSize: [30, 50], requestTimeoutMs: 8000, retry: true })
    load.start()
    await sleep(2000)

    // (a) terminate the service's busy backends (inside a statement, or between the statements of an
    // open transaction) every 20-50 ms for 6 s.
    const admin = await world.pg.client()
    let terminated = 0
    const tA = Date.now()
    try {
      while (Date.now() - tA < 6000) {
        const r = await admin.query<{ n: string }>(
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE application_name = 'ingest' AND state IN ('active', 'idle in transaction')`,
        )
        terminated += Number(r.rows[0]?.n ?? 0)
        await sleep(20 + Math.random() * 30)
      }
    } finally {
      await admin.end().catch(() => undefined)
    }
    // (b) reset every service connection through the proxy every ~600 ms for 6 s.
    const tB = Date.now()
    let resets = 0
    while (Date.now() - tB < 6000) {
      await sleep(400 + Math.random() * 400)
      await proxy.setMode('reset')
      resets++
      await sleep(30)
      await proxy.setMode('pass')
    }
    const tEnd = Date.now()
    // The process must survive cut connections (an 'error' on a pg client must never be unhandled).
    const crash = svc.exits.map((e) => `exit code ${e.code} signal ${e.signal} ${secs(e.at - tA)} s after the faults began`)
    expect(crash, `the service died:\n${svc.stderr.slice(-2500)}`).toEqual([])
    await sleep(3000)
    await load.stop(20_000)
    const quietMs = await quiesce(svc, { timeoutMs: 30_000 })
    const result = await checkLedger(world.pg, load, 'ambiguous-commit')
    const during = load.requests.filter((r) => r.t0 >= tA && r.t0 < tEnd)
    const tally = during.reduce<Record<string, number>>((a, r) => ((a[String(r.status ?? r.error)] = (a[String(r.status ?? r.error)] ?? 0) + 1), a), {})
    const receipts = [...load.readings.values()].reduce<Record<string, number>>((a, r) => ((a[r.receipt ?? r.outcome] = (a[r.receipt ?? r.outcome] ?? 0) + 1), a), {})
    note(`ambiguous-commit took ${secs(Date.now() - t0)} s (quiescence ${secs(quietMs)} s)`, { terminatedBackends: terminated, proxyResets: resets, duringFaults: tally, firstOkReceipts: receipts, recovered: result.recovered })

    // Anti-vacuity: busy backends were really terminated, and connections really reset.
    expect(terminated).toBeGreaterThan(0)
    expect(resets).toBeGreaterThan(0)
    // Nothing acked lost, no second row for a retried reading, nothing unexpected.
    expect(result.examples).toEqual({ lost: [], duplicated: [], unexpected: [] })
    expect(result).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, rejectedButStored: 0, keyMismatch: 0 })
    expect(result.rows).toBe(result.distinctKeys)
    expect(result.nullKeys).toBe(0)
    // A cut connection is an outage (503 + retry), never a 500 or a rejected reading.
    expect(result.load.statuses['500'] ?? 0).toBe(0)
    expect(result.load.fail).toBe(0)
    expect(result.load.unknown).toBe(0)
    expect(svc.logProblems(world.fleet.secrets)).toEqual([])
  })
})
