import { describe, expect, it } from 'vitest'

import { BreakerOpenError, CircuitBreaker, type BreakerOptions, type BreakerState } from '../../../src/lib/app/resilience/circuit-breaker.js'
import { classifyStoreError, UnavailableError } from '../../../src/lib/errors/index.js'
import { deferred, fakeClock, outcome, settle, T0, type FakeClock } from './fakes.js'

const outage = () => new UnavailableError('connection refused', { code: 'POSTGRES_UNAVAILABLE' })
const badRow = () => Object.assign(new Error('new row violates check constraint'), { code: '23514' })

function makeBreaker(overrides: Partial<BreakerOptions> = {}): { breaker: CircuitBreaker; clock: FakeClock; changes: Array<[BreakerState, BreakerState]> } {
  const clock = fakeClock()
  const changes: Array<[BreakerState, BreakerState]> = []
  const breaker = new CircuitBreaker({
    name: 'iot-store',
    failureThreshold: 3,
    recoveryTimeoutMs: 30_000,
    successThreshold: 2,
    clock,
    isOutage: (err) => classifyStoreError(err) === 'outage',
    onStateChange: (from, to) => changes.push([from, to]),
    ...overrides,
  })
  return { breaker, clock, changes }
}

/** A store call that counts how often it really ran. */
function storeCall() {
  const call = {
    runs: 0,
    ok: () => {
      call.runs++
      return Promise.resolve('ok')
    },
    down: () => {
      call.runs++
      return Promise.reject(outage())
    },
    poison: () => {
      call.runs++
      return Promise.reject(badRow())
    },
  }
  return call
}

async function failTimes(breaker: CircuitBreaker, n: number, fn: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < n; i++) await expect(breaker.call(fn)).rejects.toBeDefined()
}

describe('CircuitBreaker', () => {
  it('opens after exactly failureThreshold consecutive outage errors', async () => {
    const { breaker } = makeBreaker({ failureThreshold: 3 })
    const store = storeCall()
    await failTimes(breaker, 2, store.down)
    expect(breaker.current).toBe('closed')
    expect(breaker.stats().consecutiveFailures).toBe(2)
    await expect(breaker.call(store.down)).rejects.toBeInstanceOf(UnavailableError)
    expect(breaker.current).toBe('open')
    expect(store.runs).toBe(3)
  })

  it('rethrows the original error of the call that opened it (not a BreakerOpenError)', async () => {
    const { breaker } = makeBreaker({ failureThreshold: 1 })
    const err = outage()
    await expect(breaker.call(() => Promise.reject(err))).rejects.toBe(err)
    expect(breaker.current).toBe('open')
  })

  it('never opens on permanent (bad row) errors, however many', async () => {
    const { breaker } = makeBreaker({ failureThreshold: 3 })
    const store = storeCall()
    await failTimes(breaker, 20, store.poison)
    expect(breaker.current).toBe('closed')
    expect(breaker.stats().consecutiveFailures).toBe(0)
    expect(store.runs).toBe(20)
  })

  it('a permanent error resets the consecutive outage count (it proves the store is up)', async () => {
    const { breaker } = makeBreaker({ failureThreshold: 3 })
    const store = storeCall()
    await failTimes(breaker, 2, store.down)
    await failTimes(breaker, 1, store.poison)
    expect(breaker.stats().consecutiveFailures).toBe(0)
    await failTimes(breaker, 2, store.down)
    expect(breaker.current).toBe('closed')
    await failTimes(breaker, 1, store.down)
    expect(breaker.current).toBe('open')
  })

  it('a success resets the consecutive outage count', async () => {
    const { breaker } = makeBreaker({ failureThreshold: 3 })
    const store = storeCall()
    await failTimes(breaker, 2, store.down)
    await expect(breaker.call(store.ok)).resolves.toBe('ok')
    await failTimes(breaker, 2, store.down)
    expect(breaker.current).toBe('closed')
    expect(breaker.stats().consecutiveFailures).toBe(2)
  })

  it('while open refuses calls without running them, counts them, and says when to retry', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1, recoveryTimeoutMs: 30_000 })
    const store = storeCall()
    await failTimes(breaker, 1, store.down)
    expect(store.runs).toBe(1)

    const first = await outcome(breaker.call(store.ok))
    expect(first.ok).toBe(false)
    const err = (first as { error: unknown }).error
    expect(err).toBeInstanceOf(BreakerOpenError)
    expect(err).toBeInstanceOf(UnavailableError)
    expect((err as BreakerOpenError).code).toBe('BREAKER_OPEN')
    expect((err as BreakerOpenError).httpStatus).toBe(503)
    expect((err as BreakerOpenError).retryAfterSeconds).toBe(30)

    clock.advance(12_300)
    const later = await outcome(breaker.call(store.ok))
    expect((later as { error: BreakerOpenError }).error.retryAfterSeconds).toBe(18) // ceil(17.7)

    clock.advance(17_600) // 100 ms left: never 0
    const last = await outcome(breaker.call(store.ok))
    expect((last as { error: BreakerOpenError }).error.retryAfterSeconds).toBe(1)

    expect(store.runs).toBe(1)
    expect(breaker.stats().skippedCalls).toBe(3)
    expect(breaker.current).toBe('open')
  })

  it('lets a probe through only once the recovery timeout has fully elapsed', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1, recoveryTimeoutMs: 30_000, successThreshold: 1 })
    const store = storeCall()
    await failTimes(breaker, 1, store.down)
    clock.advance(29_999)
    await expect(breaker.call(store.ok)).rejects.toBeInstanceOf(BreakerOpenError)
    expect(store.runs).toBe(1)
    clock.advance(1)
    await expect(breaker.call(store.ok)).resolves.toBe('ok')
    expect(store.runs).toBe(2)
    expect(breaker.current).toBe('closed')
  })

  it('half-open lets EXACTLY ONE probe run while many calls arrive during it', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1, successThreshold: 1 })
    await failTimes(breaker, 1, () => Promise.reject(outage()))
    clock.advance(30_000)

    const gate = deferred<string>()
    let runs = 0
    const slowProbe = () => {
      runs++
      return gate.promise
    }
    const probe = breaker.call(slowProbe)
    expect(breaker.current).toBe('half_open')
    const others = Array.from({ length: 50 }, () => outcome(breaker.call(slowProbe)))
    const refused = await Promise.all(others)
    expect(runs).toBe(1)
    for (const r of refused) {
      expect(r.ok).toBe(false)
      expect((r as { error: unknown }).error).toBeInstanceOf(BreakerOpenError)
      expect(((r as { error: BreakerOpenError }).error).retryAfterSeconds).toBeGreaterThanOrEqual(1)
    }
    expect(breaker.stats().skippedCalls).toBe(50)

    gate.resolve('done')
    await expect(probe).resolves.toBe('done')
    expect(breaker.current).toBe('closed')
    // closed again: everything runs
    await Promise.all(Array.from({ length: 5 }, () => breaker.call(() => Promise.resolve(runs++))))
    expect(runs).toBe(6)
  })

  it('needs successThreshold successful probes to close, one at a time', async () => {
    const { breaker, clock, changes } = makeBreaker({ failureThreshold: 1, successThreshold: 3 })
    const store = storeCall()
    await failTimes(breaker, 1, store.down)
    clock.advance(30_000)
    await breaker.call(store.ok)
    expect(breaker.current).toBe('half_open')
    expect(breaker.stats().halfOpenSuccesses).toBe(1)
    await breaker.call(store.ok)
    expect(breaker.current).toBe('half_open')
    expect(breaker.stats().halfOpenSuccesses).toBe(2)
    await breaker.call(store.ok)
    expect(breaker.current).toBe('closed')
    expect(breaker.stats().halfOpenSuccesses).toBe(0)
    expect(breaker.stats().consecutiveFailures).toBe(0)
    expect(changes).toEqual([
      ['closed', 'open'],
      ['open', 'half_open'],
      ['half_open', 'closed'],
    ])
  })

  it('a failed probe reopens it for a whole new recovery timeout', async () => {
    const { breaker, clock, changes } = makeBreaker({ failureThreshold: 2, successThreshold: 2 })
    const store = storeCall()
    await failTimes(breaker, 2, store.down)
    clock.advance(30_000)
    await breaker.call(store.ok) // 1 of 2 successes
    expect(breaker.current).toBe('half_open')
    await expect(breaker.call(store.down)).rejects.toBeInstanceOf(UnavailableError)
    expect(breaker.current).toBe('open')
    expect(breaker.stats().opened).toBe(2)

    clock.advance(29_000)
    await expect(breaker.call(store.ok)).rejects.toBeInstanceOf(BreakerOpenError)
    expect(store.runs).toBe(4)
    clock.advance(1_000)
    await breaker.call(store.ok)
    expect(breaker.stats().halfOpenSuccesses).toBe(1) // the count restarted after reopening
    await breaker.call(store.ok)
    expect(breaker.current).toBe('closed')
    expect(changes).toEqual([
      ['closed', 'open'],
      ['open', 'half_open'],
      ['half_open', 'open'],
      ['open', 'half_open'],
      ['half_open', 'closed'],
    ])
  })

  it('stats while open after a failed probe: no half-open successes are left over', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1, successThreshold: 2 })
    const store = storeCall()
    await failTimes(breaker, 1, store.down)
    clock.advance(30_000)
    await breaker.call(store.ok)
    expect(breaker.stats().halfOpenSuccesses).toBe(1)
    await failTimes(breaker, 1, store.down)
    expect(breaker.stats()).toMatchObject({ state: 'open', halfOpenSuccesses: 0 })
  })

  it('a probe failing with a bad-row error is not an outage: it counts as a success', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1, successThreshold: 1 })
    const store = storeCall()
    await failTimes(breaker, 1, store.down)
    clock.advance(30_000)
    await expect(breaker.call(store.poison)).rejects.toMatchObject({ code: '23514' })
    expect(breaker.current).toBe('closed')
  })

  it('after a refused probe window, the next call after the probe settles is the next probe', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1, successThreshold: 2 })
    await failTimes(breaker, 1, () => Promise.reject(outage()))
    clock.advance(30_000)
    const gate = deferred<void>()
    const p1 = breaker.call(() => gate.promise)
    await expect(breaker.call(() => Promise.resolve())).rejects.toBeInstanceOf(BreakerOpenError)
    gate.resolve()
    await p1
    let ran = false
    await breaker.call(() => {
      ran = true
      return Promise.resolve()
    })
    expect(ran).toBe(true)
    expect(breaker.current).toBe('closed')
  })

  it('calls that started while closed and end during half-open neither close nor reopen it', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 1, successThreshold: 1 })
    const slowOk = deferred<string>()
    const slowBad = deferred<string>()
    const a = breaker.call(() => slowOk.promise)
    const b = outcome(breaker.call(() => slowBad.promise))
    await failTimes(breaker, 1, () => Promise.reject(outage()))
    expect(breaker.current).toBe('open')
    clock.advance(30_000)
    const probeGate = deferred<string>()
    const probe = breaker.call(() => probeGate.promise)
    expect(breaker.current).toBe('half_open')
    slowOk.resolve('late')
    await a
    expect(breaker.current).toBe('half_open')
    slowBad.reject(outage())
    await b
    expect(breaker.current).toBe('half_open')
    // and the probe is still the only one in flight
    await expect(breaker.call(() => Promise.resolve('x'))).rejects.toBeInstanceOf(BreakerOpenError)
    probeGate.resolve('probe')
    await probe
    expect(breaker.current).toBe('closed')
  })

  it('a synchronous throw from fn is handled like a rejection', async () => {
    const { breaker } = makeBreaker({ failureThreshold: 1 })
    await expect(
      breaker.call(() => {
        throw outage()
      }),
    ).rejects.toBeInstanceOf(UnavailableError)
    expect(breaker.current).toBe('open')
  })

  it('disabled: passes everything through, never opens, never counts', async () => {
    const { breaker, changes } = makeBreaker({ failureThreshold: 1, enabled: false })
    const store = storeCall()
    await failTimes(breaker, 10, store.down)
    await expect(breaker.call(store.ok)).resolves.toBe('ok')
    expect(store.runs).toBe(11)
    expect(breaker.current).toBe('closed')
    expect(breaker.stats()).toMatchObject({ consecutiveFailures: 0, skippedCalls: 0, opened: 0 })
    expect(changes).toEqual([])
  })

  it('stats: every field', async () => {
    const { breaker, clock } = makeBreaker({ failureThreshold: 2, recoveryTimeoutMs: 45_000, successThreshold: 3 })
    expect(breaker.stats()).toEqual({
      name: 'iot-store',
      state: 'closed',
      since: new Date(T0).toISOString(),
      secondsInState: 0,
      consecutiveFailures: 0,
      halfOpenSuccesses: 0,
      skippedCalls: 0,
      opened: 0,
      config: { failure_threshold: 2, recovery_timeout_seconds: 45, success_threshold: 3 },
    })
    clock.advance(1_000)
    await failTimes(breaker, 2, () => Promise.reject(outage()))
    clock.advance(2_345)
    await expect(breaker.call(() => Promise.resolve())).rejects.toBeInstanceOf(BreakerOpenError)
    expect(breaker.stats()).toEqual({
      name: 'iot-store',
      state: 'open',
      since: new Date(T0 + 1_000).toISOString(),
      secondsInState: 2.35,
      consecutiveFailures: 2,
      halfOpenSuccesses: 0,
      skippedCalls: 1,
      opened: 1,
      config: { failure_threshold: 2, recovery_timeout_seconds: 45, success_threshold: 3 },
    })
  })

  it('onStateChange fires once per transition, after the state changed', async () => {
    const seen: Array<{ from: BreakerState; to: BreakerState; current: BreakerState }> = []
    const clock = fakeClock()
    const breaker: CircuitBreaker = new CircuitBreaker({
      name: 's',
      failureThreshold: 1,
      recoveryTimeoutMs: 1_000,
      successThreshold: 1,
      clock,
      isOutage: () => true,
      onStateChange: (from, to) => seen.push({ from, to, current: breaker.current }),
    })
    await failTimes(breaker, 1, () => Promise.reject(new Error('x')))
    await expect(breaker.call(() => Promise.resolve())).rejects.toBeInstanceOf(BreakerOpenError)
    clock.advance(1_000)
    await breaker.call(() => Promise.resolve())
    await settle()
    expect(seen).toEqual([
      { from: 'closed', to: 'open', current: 'open' },
      { from: 'open', to: 'half_open', current: 'half_open' },
      { from: 'half_open', to: 'closed', current: 'closed' },
    ])
  })
})
