import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { admits, retryAfterSeconds, rollWindow, windowStartOf, type WindowCounts } from '../../../src/lib/ports/rate-limit-store.js'
import { T0, W } from './fixtures.js'

describe('window arithmetic (the contract of every rate-limit store)', () => {
  it('aligns windows to epoch multiples of 60 s', () => {
    expect(windowStartOf(T0)).toBe(T0)
    expect(windowStartOf(T0 + W - 1)).toBe(T0)
    expect(windowStartOf(T0 + W)).toBe(T0 + W)
  })

  it('rolls the current count into prev for the next window only', () => {
    const stored: WindowCounts = { prev: 7, curr: 4, windowStart: T0 }
    expect(rollWindow(stored, T0 + 59_999)).toEqual(stored)
    expect(rollWindow(stored, T0 + W)).toEqual({ prev: 4, curr: 0, windowStart: T0 + W })
    expect(rollWindow(stored, T0 + 2 * W)).toEqual({ prev: 0, curr: 0, windowStart: T0 + 2 * W })
    expect(rollWindow(undefined, T0 + 5)).toEqual({ prev: 0, curr: 0, windowStart: T0 })
  })

  it('weights the previous window by the part of it still inside the sliding minute', () => {
    // prev 10 at half the window weighs floor(10 × 0.5) = 5: with curr 4 the next unit makes 10 ≤ 10.
    expect(admits({ prev: 10, curr: 4, windowStart: T0 }, T0 + 30_000, 10)).toBe(true)
    expect(admits({ prev: 10, curr: 5, windowStart: T0 }, T0 + 30_000, 10)).toBe(false)
    // 1 ms later the weight is floor(4.9998) = 4.
    expect(admits({ prev: 10, curr: 5, windowStart: T0 }, T0 + 30_001, 10)).toBe(true)
    // At the window start the previous window counts whole.
    expect(admits({ prev: 10, curr: 0, windowStart: T0 }, T0, 10)).toBe(false)
  })

  it('computes the real wait rather than the legacy 60 s', () => {
    // Full current window, nothing before: admitted 1 ms into the next window (prev 2 weighs 1 there).
    expect(retryAfterSeconds({ prev: 0, curr: 2, windowStart: T0 }, T0 + 10_000, 2)).toBe(51)
    // Inside the window: prev 10, curr 1, limit 10 -> weight must fall to 8, i.e. elapsed > 6 s.
    expect(retryAfterSeconds({ prev: 10, curr: 1, windowStart: T0 }, T0 + 1_000, 10)).toBe(6)
    // Never below 1 s, never above 60 s.
    expect(retryAfterSeconds({ prev: 10, curr: 5, windowStart: T0 }, T0 + 30_000, 10)).toBe(1)
    expect(retryAfterSeconds({ prev: 0, curr: 5, windowStart: T0 }, T0, 5)).toBe(60)
  })

  it('answers a wait after which the request is admitted and before which it is not', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 500 }), fc.integer({ min: 0, max: W - 1 }), fc.nat(), fc.nat(), (limit, elapsed, prevSeed, currSeed) => {
        const counts: WindowCounts = { prev: prevSeed % (limit + 1), curr: currSeed % (limit + 1), windowStart: T0 }
        const now = T0 + elapsed
        fc.pre(!admits(counts, now, limit))
        const seconds = retryAfterSeconds(counts, now, limit)
        expect(seconds).toBeGreaterThanOrEqual(1)
        expect(seconds).toBeLessThanOrEqual(60)
        const at = (t: number) => admits(rollWindow(counts, t), t, limit)
        if (seconds < 60) expect(at(now + seconds * 1000)).toBe(true)
        if (seconds > 1) expect(at(now + (seconds - 1) * 1000)).toBe(false)
      }),
      { numRuns: 2000 },
    )
  })
})
