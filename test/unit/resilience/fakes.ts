import type { Clock } from '../../../src/lib/ports/clock.js'

/** 2023-11-14T22:13:20Z: a round epoch for fake time. */
export const T0 = 1_700_000_000_000

export interface FakeClock extends Clock {
  advance(ms: number): void
  set(ms: number): void
  /** Every `sleep` asked for, in order (sleeping advances fake time at once). */
  readonly sleeps: number[]
}

/** A clock whose time moves only when told (or when something sleeps on it). */
export function fakeClock(start = T0): FakeClock {
  let t = start
  const sleeps: number[] = []
  return {
    sleeps,
    now: () => t,
    sleep: (ms) => {
      sleeps.push(ms)
      t += ms
      return Promise.resolve()
    },
    advance: (ms) => {
      t += ms
    },
    set: (ms) => {
      t = ms
    },
  }
}

export interface Deferred<T> {
  promise: Promise<T>
  resolve(value: T): void
  reject(err: unknown): void
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (err: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** Lets pending promise callbacks (and one macrotask turn) run. */
export async function settle(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve))
}

/** A caught promise result, to assert on rejections without unhandled-rejection noise. */
export async function outcome<T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  try {
    return { ok: true, value: await p }
  } catch (error) {
    return { ok: false, error }
  }
}
