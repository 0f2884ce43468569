import type { Config } from '../../../src/lib/config/index.js'
import { createLogger, type Logger } from '../../../src/lib/log/index.js'
import type { Clock } from '../../../src/lib/ports/clock.js'
import type { RateLimitDecision, RateLimitKey, RateLimitStore } from '../../../src/lib/ports/rate-limit-store.js'

/** An epoch multiple of 60 s (2023-11-14T22:14:00Z). */
export const T0 = 1_700_000_040_000
export const W = 60_000

export interface FakeClock extends Clock {
  set(ms: number): void
  advance(ms: number): void
}

export function fakeClock(start = T0): FakeClock {
  let t = start
  return {
    now: () => t,
    sleep: (ms) => {
      t += ms
      return Promise.resolve()
    },
    set: (ms) => {
      t = ms
    },
    advance: (ms) => {
      t += ms
    },
  }
}

export function silentLogger(): Logger {
  return createLogger({ level: 'silent' })
}

export function rateLimitConfig(overrides: Partial<Config['rateLimit']> = {}): Pick<Config, 'rateLimit'> {
  return { rateLimit: { enabled: true, sensorPerMin: 60, devicePerMin: 300, globalPerMin: 1000, ...overrides } }
}

/** A store that records its calls and answers with `answer` (a rejection = Redis failing). */
export function spyStore(answer: (keys: readonly RateLimitKey[], nowMs: number) => Promise<RateLimitDecision>): RateLimitStore & { calls: Array<{ keys: string[]; nowMs: number }> } {
  const calls: Array<{ keys: string[]; nowMs: number }> = []
  return {
    calls,
    hit(keys, nowMs) {
      calls.push({ keys: keys.map((k) => k.key), nowMs })
      return answer(keys, nowMs)
    },
  }
}

export const failing = (): Promise<RateLimitDecision> => Promise.reject(new Error('ECONNREFUSED'))
