import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { BreakerOpenError, CircuitBreaker, type BreakerState } from '../../../src/lib/app/resilience/circuit-breaker.js'
import { classifyStoreError, UnavailableError } from '../../../src/lib/errors/index.js'
import { deferred, fakeClock, outcome, type Deferred, type FakeClock } from './fakes.js'

/**
 * R17: a model of the breaker written from DESIGN §6 (closed -> open after N consecutive outages ->
 * half-open after the recovery timeout with a single probe -> closed after M probe successes, or open
 * again on a failed probe), run against the real one with fast-check `fc.commands` and a fake clock.
 * Calls are either immediate or held open (to model concurrency: probes in flight, late answers).
 */

type Result = 'ok' | 'outage' | 'permanent'

interface Params {
  failureThreshold: number
  successThreshold: number
  recoveryMs: number
}

interface Model {
  p: Params
  now: number
  state: BreakerState
  since: number
  failures: number
  successes: number
  probeOut: boolean
  skipped: number
  opened: number
  transitions: Array<`${BreakerState}>${BreakerState}`>
  /** Held calls (by position, the same as Real.held): was each one the probe? */
  held: boolean[]
}

interface Real {
  breaker: CircuitBreaker
  clock: FakeClock
  transitions: Array<`${BreakerState}>${BreakerState}`>
  runs: number
  held: Array<{ gate: Deferred<string>; done: Promise<{ ok: boolean; value?: unknown; error?: unknown }> }>
}

function moveTo(m: Model, to: BreakerState): void {
  m.transitions.push(`${m.state}>${to}`)
  m.state = to
  m.since = m.now
  if (to === 'open') m.opened++
  m.successes = 0
  if (to === 'closed') m.failures = 0
}

/** Whether a call starting now runs (and whether it is the probe), per the spec. */
function admit(m: Model): { runs: false } | { runs: true; probe: boolean } {
  if (m.state === 'open') {
    if (m.now - m.since < m.p.recoveryMs) {
      m.skipped++
      return { runs: false }
    }
    moveTo(m, 'half_open')
  }
  if (m.state === 'half_open') {
    if (m.probeOut) {
      m.skipped++
      return { runs: false }
    }
    m.probeOut = true
    return { runs: true, probe: true }
  }
  return { runs: true, probe: false }
}

function finish(m: Model, probe: boolean, result: Result): void {
  if (probe) m.probeOut = false
  if (result === 'outage') {
    if (probe) moveTo(m, 'open')
    else if (m.state === 'closed' && ++m.failures >= m.p.failureThreshold) moveTo(m, 'open')
    return
  }
  // A success, or a bad row (which proves the store is up).
  if (probe) {
    if (++m.successes >= m.p.successThreshold) moveTo(m, 'closed')
  } else if (m.state === 'closed') {
    m.failures = 0
  }
}

const errorFor = (r: Result): Error => (r === 'outage' ? new UnavailableError('down', { code: 'POSTGRES_UNAVAILABLE' }) : Object.assign(new Error('bad row'), { code: '22P02' }))

function agree(m: Model, r: Real): void {
  const s = r.breaker.stats()
  expect(r.breaker.current).toBe(m.state)
  expect(s.consecutiveFailures).toBe(m.failures)
  // Probe successes mean something only while half-open (what they show while open is checked in
  // circuit-breaker.test.ts).
  if (m.state !== 'open') expect(s.halfOpenSuccesses).toBe(m.successes)
  expect(s.skippedCalls).toBe(m.skipped)
  expect(s.opened).toBe(m.opened)
  expect(s.since).toBe(new Date(m.since).toISOString())
  expect(r.transitions).toEqual(m.transitions)
}

class CallNow implements fc.AsyncCommand<Model, Real> {
  constructor(readonly result: Result) {}
  check = () => true
  async run(m: Model, r: Real): Promise<void> {
    const before = r.runs
    const admitted = admit(m)
    const out = await outcome(
      r.breaker.call(() => {
        r.runs++
        return this.result === 'ok' ? Promise.resolve('ok') : Promise.reject(errorFor(this.result))
      }),
    )
    if (!admitted.runs) {
      expect(r.runs).toBe(before) // refused without touching the store
      expect(out.ok).toBe(false)
      expect((out as { error: unknown }).error).toBeInstanceOf(BreakerOpenError)
      expect(((out as { error: BreakerOpenError }).error).retryAfterSeconds).toBeGreaterThanOrEqual(1)
    } else {
      expect(r.runs).toBe(before + 1)
      if (this.result === 'ok') expect(out).toEqual({ ok: true, value: 'ok' })
      else expect((out as { error: unknown }).error).not.toBeInstanceOf(BreakerOpenError)
      finish(m, admitted.probe, this.result)
    }
    agree(m, r)
  }
  toString = () => `CallNow(${this.result})`
}

class StartHeld implements fc.AsyncCommand<Model, Real> {
  check = () => true
  async run(m: Model, r: Real): Promise<void> {
    const before = r.runs
    const admitted = admit(m)
    const gate = deferred<string>()
    const done = outcome(
      r.breaker.call(() => {
        r.runs++
        return gate.promise
      }),
    )
    if (!admitted.runs) {
      const out = await done
      expect(r.runs).toBe(before)
      expect((out as { error: unknown }).error).toBeInstanceOf(BreakerOpenError)
    } else {
      expect(r.runs).toBe(before + 1)
      m.held.push(admitted.probe)
      r.held.push({ gate, done })
    }
    agree(m, r)
  }
  toString = () => 'StartHeld'
}

class FinishHeld implements fc.AsyncCommand<Model, Real> {
  constructor(
    readonly pick: number,
    readonly result: Result,
  ) {}
  check = (m: Readonly<Model>) => m.held.length > 0
  async run(m: Model, r: Real): Promise<void> {
    const i = this.pick % m.held.length
    const probe = m.held.splice(i, 1)[0] as boolean
    const [call] = r.held.splice(i, 1)
    if (!call) throw new Error('model and real disagree on held calls')
    if (this.result === 'ok') call.gate.resolve('late')
    else call.gate.reject(errorFor(this.result))
    const out = await call.done
    expect(out.ok).toBe(this.result === 'ok')
    finish(m, probe, this.result)
    agree(m, r)
  }
  toString = () => `FinishHeld(${this.pick}, ${this.result})`
}

class Advance implements fc.AsyncCommand<Model, Real> {
  constructor(readonly ms: number) {}
  check = () => true
  run(m: Model, r: Real): Promise<void> {
    m.now += this.ms
    r.clock.advance(this.ms)
    agree(m, r)
    return Promise.resolve()
  }
  toString = () => `Advance(${this.ms})`
}

const RECOVERY_MS = 1_000
const result = fc.constantFrom<Result>('ok', 'outage', 'outage', 'permanent')
const commands = fc.commands(
  [
    result.map((x) => new CallNow(x)),
    fc.constant(new StartHeld()),
    fc.tuple(fc.nat(10), result).map(([i, x]) => new FinishHeld(i, x)),
    fc.constantFrom(1, 250, RECOVERY_MS - 1, RECOVERY_MS, 5 * RECOVERY_MS).map((ms) => new Advance(ms)),
  ],
  { maxCommands: 60 },
)

describe('CircuitBreaker model test (R17)', () => {
  it('model and real agree on every sequence of calls, late answers and clock moves', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }), commands, async (failureThreshold, successThreshold, cmds) => {
        const clock = fakeClock()
        const transitions: Real['transitions'] = []
        const p: Params = { failureThreshold, successThreshold, recoveryMs: RECOVERY_MS }
        const breaker = new CircuitBreaker({
          name: 'model',
          failureThreshold,
          successThreshold,
          recoveryTimeoutMs: RECOVERY_MS,
          clock,
          isOutage: (err) => classifyStoreError(err) === 'outage',
          onStateChange: (from, to) => transitions.push(`${from}>${to}`),
        })
        const real: Real = { breaker, clock, transitions, runs: 0, held: [] }
        const model: Model = { p, now: clock.now(), state: 'closed', since: clock.now(), failures: 0, successes: 0, probeOut: false, skipped: 0, opened: 0, transitions: [], held: [] }
        await fc.asyncModelRun(() => ({ model, real }), cmds)
        // Never more than one probe in flight.
        expect(model.held.filter((probe) => probe).length).toBeLessThanOrEqual(1)
        for (const h of real.held) h.gate.resolve('cleanup')
        await Promise.all(real.held.map((h) => h.done))
      }),
      { numRuns: 1_000 },
    )
  })
})
