import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { isPgOutage, wrapPgError } from '../../../src/lib/adapters/storage/postgres/pool.js'
import { backoffDelay, retryTransient } from '../../../src/lib/app/resilience/retry.js'
import { classifyStoreError, TransientStoreError, UnavailableError, ValidationError } from '../../../src/lib/errors/index.js'
import { fakeClock, outcome } from './fakes.js'

const transient = () => new TransientStoreError('deadlock detected', { code: 'PG_40P01' })
const outage = () => new UnavailableError('connection refused', { code: 'POSTGRES_UNAVAILABLE' })
const permanent = () => Object.assign(new Error('invalid input syntax for type double precision'), { code: '22P02' })
const isTransient = (err: unknown) => classifyStoreError(err) !== 'permanent'

/** A function failing with the given errors in turn, then answering `done`. */
function failing(errors: Error[]) {
  const attempts: number[] = []
  const fn = (attempt: number) => {
    attempts.push(attempt)
    const err = errors.shift()
    return err === undefined ? Promise.resolve('done') : Promise.reject(err)
  }
  return { fn, attempts }
}

describe('backoffDelay (full jitter)', () => {
  it('is drawn from [0, min(cap, base * 2^(attempt-1))]', () => {
    expect(backoffDelay(1, 50, 2_000, () => 0)).toBe(0)
    expect(backoffDelay(1, 50, 2_000, () => 0.999_999)).toBe(49)
    expect(backoffDelay(2, 50, 2_000, () => 0.5)).toBe(50)
    expect(backoffDelay(3, 50, 2_000, () => 0.999_999)).toBe(199)
    expect(backoffDelay(6, 50, 2_000, () => 0.999_999)).toBe(1_599)
    expect(backoffDelay(7, 50, 2_000, () => 0.999_999)).toBe(1_999) // capped (50 * 64 = 3200)
    expect(backoffDelay(40, 50, 2_000, () => 0.999_999)).toBe(1_999)
  })

  it('property: every delay is an integer within the full-jitter range', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.integer({ min: 1, max: 1_000 }), fc.integer({ min: 1, max: 60_000 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, base, cap, r) => {
        const d = backoffDelay(attempt, base, cap, () => r)
        expect(Number.isInteger(d)).toBe(true)
        expect(d).toBeGreaterThanOrEqual(0)
        expect(d).toBeLessThanOrEqual(Math.min(cap, base * 2 ** (attempt - 1)))
      }),
    )
  })

  it('uses the whole range (not a fixed fraction of it)', () => {
    const ds = [0, 0.25, 0.5, 0.75, 0.99].map((r) => backoffDelay(4, 100, 10_000, () => r))
    expect(ds).toEqual([0, 200, 400, 600, 792])
  })
})

describe('retryTransient', () => {
  it('retries transient errors and outages, then returns the answer', async () => {
    const clock = fakeClock()
    const { fn, attempts } = failing([transient(), outage()])
    const retries: number[] = []
    await expect(retryTransient(fn, { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 2_000, clock, isTransient, random: () => 0.5, onRetry: (a) => retries.push(a) })).resolves.toBe('done')
    expect(attempts).toEqual([1, 2, 3])
    expect(retries).toEqual([1, 2])
    expect(clock.sleeps).toEqual([25, 50])
  })

  it('stops after maxAttempts in all and rethrows the last error', async () => {
    const clock = fakeClock()
    const errors = [transient(), transient(), transient(), transient()]
    const last = errors[2]
    const { fn, attempts } = failing(errors)
    const out = await outcome(retryTransient(fn, { maxAttempts: 3, baseDelayMs: 50, maxDelayMs: 2_000, clock, isTransient, random: () => 0 }))
    expect(out).toEqual({ ok: false, error: last })
    expect(attempts).toEqual([1, 2, 3])
    expect(clock.sleeps).toHaveLength(2)
  })

  it('maxAttempts 1 means no retry', async () => {
    const clock = fakeClock()
    const { fn, attempts } = failing([transient()])
    await expect(retryTransient(fn, { maxAttempts: 1, baseDelayMs: 50, maxDelayMs: 2_000, clock, isTransient })).rejects.toBeInstanceOf(TransientStoreError)
    expect(attempts).toEqual([1])
    expect(clock.sleeps).toEqual([])
  })

  it('never retries a permanent error (it goes to the DLQ at once)', async () => {
    const clock = fakeClock()
    const err = permanent()
    const { fn, attempts } = failing([err])
    await expect(retryTransient(fn, { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 2_000, clock, isTransient })).rejects.toBe(err)
    expect(attempts).toEqual([1])
    expect(clock.sleeps).toEqual([])
  })

  it('a permanent error after transient ones stops the retries there', async () => {
    const clock = fakeClock()
    const err = permanent()
    const { fn, attempts } = failing([transient(), err, transient()])
    await expect(retryTransient(fn, { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 2_000, clock, isTransient })).rejects.toBe(err)
    expect(attempts).toEqual([1, 2])
  })

  it('sleeps for the drawn full-jitter delays, growing with the attempt (injected random)', async () => {
    const clock = fakeClock()
    const { fn } = failing(Array.from({ length: 7 }, transient))
    await retryTransient(fn, { maxAttempts: 8, baseDelayMs: 50, maxDelayMs: 2_000, clock, isTransient, random: () => 0.999_999 })
    expect(clock.sleeps).toEqual([49, 99, 199, 399, 799, 1_599, 1_999])
  })

  it('gives up rather than sleep past the deadline', async () => {
    const clock = fakeClock()
    const start = clock.now()
    const { fn, attempts } = failing(Array.from({ length: 10 }, transient))
    // delays with random 0.999999: 99, 199, 399, 799 ... ; deadline 800 ms away
    const out = await outcome(retryTransient(fn, { maxAttempts: 10, baseDelayMs: 100, maxDelayMs: 10_000, clock, isTransient, random: () => 0.999_999, deadline: start + 800 }))
    expect(out.ok).toBe(false)
    expect((out as { error: unknown }).error).toBeInstanceOf(TransientStoreError)
    // t=0 +99 -> 99, +199 -> 298, +399 -> 697; the 4th delay (799) would end past 800: rethrow instead
    expect(clock.sleeps).toEqual([99, 199, 399])
    expect(attempts).toEqual([1, 2, 3, 4])
    expect(clock.now()).toBe(start + 697)
  })

  it('property (R16): over random error sequences, attempts <= max, permanent never retried, delays within range, deadline kept', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom('transient', 'outage', 'permanent', 'ok'), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 1, max: 5_000 }),
        fc.option(fc.integer({ min: 0, max: 20_000 }), { nil: undefined }),
        fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })),
        async (script, maxAttempts, base, cap, deadlineIn, randoms) => {
          const clock = fakeClock()
          const start = clock.now()
          const deadline = deadlineIn === undefined ? undefined : start + deadlineIn
          const it = randoms[Symbol.iterator]()
          const seen: Array<'transient' | 'outage' | 'permanent' | 'ok'> = []
          const delays: Array<{ attempt: number; delay: number }> = []
          const fn = (attempt: number): Promise<string> => {
            const step = script[attempt - 1] ?? 'ok'
            seen.push(step)
            if (step === 'ok') return Promise.resolve('ok')
            return Promise.reject(step === 'transient' ? transient() : step === 'outage' ? outage() : permanent())
          }
          const out = await outcome(
            retryTransient(fn, { maxAttempts, baseDelayMs: base, maxDelayMs: cap, clock, isTransient, random: () => it.next().value as number, onRetry: (attempt, delay) => delays.push({ attempt, delay }), ...(deadline === undefined ? {} : { deadline }) }),
          )
          expect(seen.length).toBeLessThanOrEqual(maxAttempts)
          // Only the last attempt may be ok or permanent: nothing after them ran.
          seen.slice(0, -1).forEach((s) => expect(['transient', 'outage']).toContain(s))
          const last = seen[seen.length - 1]
          expect(out.ok).toBe(last === 'ok')
          if (last === 'permanent') expect(classifyStoreError((out as { error: unknown }).error)).toBe('permanent')
          // A transient ending means attempts ran out or the deadline stopped it.
          if (last !== 'ok' && last !== 'permanent') {
            const stoppedByDeadline = deadline !== undefined && seen.length < maxAttempts
            expect(seen.length === maxAttempts || stoppedByDeadline).toBe(true)
          }
          expect(delays.length).toBe(seen.length - 1)
          expect(clock.sleeps).toEqual(delays.map((d) => d.delay))
          for (const { attempt, delay } of delays) {
            expect(delay).toBeGreaterThanOrEqual(0)
            expect(delay).toBeLessThanOrEqual(Math.min(cap, base * 2 ** (attempt - 1)))
          }
          if (deadline !== undefined) expect(clock.now()).toBeLessThanOrEqual(Math.max(start, deadline))
        },
      ),
      { numRuns: 300 },
    )
  })
})

describe('classifyStoreError', () => {
  it.each([
    { name: 'UnavailableError', err: new UnavailableError('down'), expected: 'outage' },
    { name: 'UnavailableError POSTGRES_UNAVAILABLE', err: new UnavailableError('down', { code: 'POSTGRES_UNAVAILABLE' }), expected: 'outage' },
    { name: 'TransientStoreError SQLITE_BUSY', err: new TransientStoreError('busy', { code: 'SQLITE_BUSY' }), expected: 'transient' },
    { name: 'TransientStoreError', err: new TransientStoreError('deadlock'), expected: 'transient' },
    { name: 'TransientStoreError PG_40001', err: new TransientStoreError('serialization', { code: 'PG_40001' }), expected: 'transient' },
    { name: 'plain Error', err: new Error('boom'), expected: 'permanent' },
    { name: 'constraint (23505)', err: Object.assign(new Error('duplicate key'), { code: '23505' }), expected: 'permanent' },
    { name: 'ValidationError', err: new ValidationError('bad'), expected: 'permanent' },
    { name: 'a string', err: 'oops', expected: 'permanent' },
    { name: 'undefined', err: undefined, expected: 'permanent' },
  ] as const)('$name -> $expected', ({ err, expected }) => {
    expect(classifyStoreError(err)).toBe(expected)
  })
})

describe('wrapPgError / isPgOutage (SQLSTATE classes)', () => {
  const pgError = (code: string, message = `pg error ${code}`) => Object.assign(new Error(message), { code })

  it.each([
    ['08006', 'connection_failure', 'outage'],
    ['08001', 'sqlclient_unable_to_establish_sqlconnection', 'outage'],
    ['08P01', 'protocol_violation', 'outage'],
    ['57P01', 'admin_shutdown', 'outage'],
    ['57P03', 'cannot_connect_now', 'outage'],
    ['57014', 'query_canceled (statement_timeout)', 'outage'],
    ['53300', 'too_many_connections', 'outage'],
    ['53100', 'disk_full', 'outage'],
    ['40001', 'serialization_failure', 'transient'],
    ['40P01', 'deadlock_detected', 'transient'],
    ['22P02', 'invalid_text_representation', 'permanent'],
    ['22003', 'numeric_value_out_of_range', 'permanent'],
    ['23505', 'unique_violation', 'permanent'],
    ['23514', 'check_violation', 'permanent'],
    ['23503', 'foreign_key_violation', 'permanent'],
    ['42P01', 'undefined_table', 'permanent'],
    ['42703', 'undefined_column', 'permanent'],
    ['ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:5432', 'outage'],
    ['ECONNRESET', 'read ECONNRESET', 'outage'],
    ['ETIMEDOUT', 'connect ETIMEDOUT', 'outage'],
    ['EPIPE', 'write EPIPE', 'outage'],
    ['ENOTFOUND', 'getaddrinfo ENOTFOUND db', 'outage'],
    ['EHOSTUNREACH', 'connect EHOSTUNREACH', 'outage'],
  ] as const)('%s (%s) -> %s', (code, name, expected) => {
    const raw = pgError(code, name)
    const wrapped = wrapPgError(raw)
    expect(classifyStoreError(wrapped)).toBe(expected)
    expect(isPgOutage(raw)).toBe(expected === 'outage')
    if (expected === 'permanent') {
      expect(wrapped).toBe(raw) // kept as it is, with its SQLSTATE for the DLQ
    } else {
      expect((wrapped as Error).cause).toBe(raw)
      expect((wrapped as Error).message).toContain(name)
    }
    if (expected === 'outage') expect(wrapped).toMatchObject({ code: 'POSTGRES_UNAVAILABLE', httpStatus: 503 })
    if (expected === 'transient') expect(wrapped).toMatchObject({ code: `PG_${code}` })
  })

  it.each([
    ['Connection terminated unexpectedly'],
    ['Query read timeout'],
    ['timeout exceeded when trying to connect'],
    ['Client has encountered a connection error and is not queryable'],
  ])('driver messages without a SQLSTATE are outages: %s', (message) => {
    const raw = new Error(message)
    expect(isPgOutage(raw)).toBe(true)
    expect(classifyStoreError(wrapPgError(raw))).toBe('outage')
  })

  it.each([
    ['22P02', 'invalid input syntax for type double precision: "timeout"'],
    ['23514', 'new row for relation "sensor_readings" violates check constraint "timeout_positive"'],
    ['23505', 'duplicate key value violates unique constraint "terminated_sessions_pkey"'],
  ])('a SQLSTATE decides over words in the message: %s %s is permanent', (code, message) => {
    const raw = pgError(code, message)
    expect(isPgOutage(raw)).toBe(false)
    expect(classifyStoreError(wrapPgError(raw))).toBe('permanent')
  })

  it('already wrapped errors pass through unchanged', () => {
    const u = new UnavailableError('down')
    const t = new TransientStoreError('busy')
    expect(wrapPgError(u)).toBe(u)
    expect(wrapPgError(t)).toBe(t)
  })

  it('non-Error values are permanent and untouched', () => {
    expect(wrapPgError('boom')).toBe('boom')
    expect(wrapPgError(42)).toBe(42)
  })

  it('a thrown null/undefined is passed on, not replaced by a TypeError from reading .code', () => {
    expect(() => isPgOutage(undefined)).not.toThrow()
    expect(isPgOutage(undefined)).toBe(false)
    expect(() => wrapPgError(null)).not.toThrow()
    expect(wrapPgError(null)).toBe(null)
  })
})
