import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { checkLedger, quiesce } from '../helpers/fault/checker.js'
import { LoadGenerator } from '../helpers/fault/load.js'
import { note, secs, sleep } from '../helpers/fault/util.js'
import { FaultWorld } from '../helpers/fault/world.js'

/**
 * R02 (reliability.md §5): `serve` SIGKILLed under HTTP load at 2 random points and restarted on the
 * same database and data folder; clients retry what got no answer with the same body. An ack means
 * committed, so nothing acked is lost; a retry of something that did commit is a `duplicate`, never a
 * second row.
 */
describe('serve SIGKILLed under load and restarted (R02)', () => {
  let world: FaultWorld

  beforeAll(async () => {
    world = await FaultWorld.create()
  })
  afterAll(async () => {
    await world?.destroy()
  })

  it('0 lost and 0 duplicated across 2 kills at random points, clients retrying unanswered requests', async () => {
    const t0 = Date.now()
    const svc = await world.startService()
    const load = new LoadGenerator({ url: () => svc.url, fleet: world.fleet, workers: 8, rate: 400, requestTimeoutMs: 5000, retry: true, maxRetryDelayMs: 500 })
    load.start()
    const kills: Array<{ at: number; afterMs: number; downMs: number; inFlight: number }> = []
    for (let round = 0; round < 2; round++) {
      const wait = 2000 + Math.floor(Math.random() * 3000)
      await sleep(wait)
      // Kill mid-request: at the first moment after the random point with requests in flight.
      const until = Date.now() + 2000
      while (load.inFlight === 0 && Date.now() < until) await new Promise((r) => setImmediate(r))
      const inFlightBefore = load.inFlight
      const at = svc.kill('SIGKILL')
      const exit = await svc.waitExit(10_000)
      expect(exit.signal).toBe('SIGKILL')
      await svc.start()
      kills.push({ at: at - t0, afterMs: wait, downMs: Date.now() - at, inFlight: inFlightBefore })
    }
    await sleep(4000)
    await load.stop(20_000)
    const quietMs = await quiesce(svc, { timeoutMs: 30_000 })
    const result = await checkLedger(world.pg, load, 'service-kill')
    const unanswered = load.requests.filter((r) => r.status === null)
    note('service-kill kills', kills.map((k) => ({ atS: secs(k.at), downS: secs(k.downMs), inFlight: k.inFlight })))
    note(`service-kill took ${secs(Date.now() - t0)} s (quiescence ${secs(quietMs)} s)`, { unanswered: unanswered.length, recovered: result.recovered })

    // Anti-vacuity: the kills cut requests in flight (no answer: reset), and the clients retried them.
    expect(kills.every((k) => k.inFlight > 0)).toBe(true)
    expect(unanswered.filter((r) => r.error !== 'ECONNREFUSED').length).toBeGreaterThan(0)
    expect(result.load.retries).toBeGreaterThan(0)
    // Nothing acked lost, nothing duplicated, nothing unexpected; every reading ended with an answer.
    expect(result.examples).toEqual({ lost: [], duplicated: [], unexpected: [] })
    expect(result).toMatchObject({ lost: 0, duplicated: 0, unexpected: 0, rejectedButStored: 0, keyMismatch: 0 })
    expect(result.rows).toBe(result.distinctKeys)
    expect(result.load.fail).toBe(0)
    expect(result.load.unknown).toBe(0)
    expect(result.load.statuses['500'] ?? 0).toBe(0)
    expect(svc.logProblems(world.fleet.secrets)).toEqual([])
  })
})
