import { describe, expect, it, vi } from 'vitest'

import { GroupCommitter, QueueFullError, type GroupCommitOptions } from '../../../src/lib/app/group-commit.js'
import { UnavailableError } from '../../../src/lib/errors/index.js'
import { deferred, outcome, settle, type Deferred } from '../resilience/fakes.js'

/** A flush whose batches are recorded and answered when the test says so. */
function manualFlush() {
  const batches: Array<{ items: number[]; done: Deferred<string[]> }> = []
  const flush = (items: number[]) => {
    const done = deferred<string[]>()
    batches.push({ items, done })
    return done.promise
  }
  const answer = (i: number) => {
    const b = batches[i]
    if (!b) throw new Error(`no batch ${i}`)
    b.done.resolve(b.items.map((x) => `ok:${x}`))
  }
  return { batches, flush, answer }
}

/** A flush that answers at once, recording sizes. */
function instantFlush() {
  const batches: number[][] = []
  return {
    batches,
    flush: (items: number[]) => {
      batches.push(items)
      return Promise.resolve(items.map((x) => `ok:${x}`))
    },
  }
}

function committer(flush: (items: number[]) => Promise<string[]>, over: Partial<GroupCommitOptions<number, string>> = {}) {
  const flushes: Array<{ size: number; error?: unknown }> = []
  const c = new GroupCommitter<number, string>({
    maxBatch: 100,
    maxQueued: 1_000,
    lingerMs: 0,
    flush,
    onFlush: ({ size, error }) => flushes.push(error === undefined ? { size } : { size, error }),
    ...over,
  })
  return { c, flushes }
}

describe('GroupCommitter', () => {
  it('concurrent submits in one event-loop turn share one flush, each caller getting its own outcomes in order', async () => {
    const f = instantFlush()
    const { c, flushes } = committer(f.flush)
    const [a, b, d] = await Promise.all([c.submit([1, 2]), c.submit([3]), c.submit([4, 5, 6])])
    expect(f.batches).toEqual([[1, 2, 3, 4, 5, 6]])
    expect(a).toEqual(['ok:1', 'ok:2'])
    expect(b).toEqual(['ok:3'])
    expect(d).toEqual(['ok:4', 'ok:5', 'ok:6'])
    expect(flushes).toEqual([{ size: 6 }])
  })

  it('an empty submit resolves at once without a flush', async () => {
    const f = instantFlush()
    const { c } = committer(f.flush)
    await expect(c.submit([])).resolves.toEqual([])
    await settle()
    expect(f.batches).toEqual([])
  })

  it('one flush at a time; items arriving during a flush go in the next one, which starts as soon as it ended', async () => {
    const f = manualFlush()
    const { c } = committer(f.flush)
    const first = c.submit([1])
    await settle()
    expect(f.batches.map((b) => b.items)).toEqual([[1]])
    const second = c.submit([2])
    const third = c.submit([3])
    await settle()
    expect(f.batches).toHaveLength(1) // no overlap
    expect(c.queued).toBe(2)
    expect(c.flushingItems).toBe(1)
    f.answer(0)
    await expect(first).resolves.toEqual(['ok:1'])
    // the next flush started with no timer in between
    await Promise.resolve()
    await Promise.resolve()
    expect(f.batches.map((b) => b.items)).toEqual([[1], [2, 3]])
    f.answer(1)
    await expect(Promise.all([second, third])).resolves.toEqual([['ok:2'], ['ok:3']])
  })

  describe('with lock keys (keyOf: item -> key, here the tens digit) and concurrent flushes', () => {
    const byTens = { concurrency: 3, keyOf: (x: number) => Math.floor(x / 10) }

    it('a flush never runs beside another that holds one of its keys; other keys go at once', async () => {
      const f = manualFlush()
      const { c } = committer(f.flush, byTens)
      const first = c.submit([11, 12])
      await settle()
      const sameKey = c.submit([13])
      const otherKey = c.submit([21])
      await settle()
      // 13 waits for the flush holding key 1; 21 did not wait.
      expect(f.batches.map((b) => b.items)).toEqual([[11, 12], [21]])
      expect(c.queued).toBe(1)
      f.answer(1)
      await expect(otherKey).resolves.toEqual(['ok:21'])
      await settle()
      expect(f.batches).toHaveLength(2)
      f.answer(0)
      await expect(first).resolves.toEqual(['ok:11', 'ok:12'])
      await settle()
      expect(f.batches.map((b) => b.items)).toEqual([[11, 12], [21], [13]])
      f.answer(2)
      await expect(sameKey).resolves.toEqual(['ok:13'])
    })

    it('string keys (universal points lock by series id) keep flushes disjoint the same way', async () => {
      const f = manualFlush()
      // Series ids as keys: 11 and 13 share "health:ward-1:bpm"; 21 is another series.
      const series = (x: number) => `health:ward-${Math.floor(x / 10)}:bpm`
      const { c } = committer(f.flush, { concurrency: 3, keyOf: series })
      const first = c.submit([11])
      await settle()
      const sameSeries = c.submit([13])
      const other = c.submit([21])
      await settle()
      expect(f.batches.map((b) => b.items)).toEqual([[11], [21]])
      f.answer(0)
      f.answer(1)
      await Promise.all([first, other])
      await settle()
      expect(f.batches.map((b) => b.items)).toEqual([[11], [21], [13]])
      f.answer(2)
      await expect(sameSeries).resolves.toEqual(['ok:13'])
    })

    it('a caller waiting for a key also holds back later callers that share a key with it (per-key order)', async () => {
      const f = manualFlush()
      const { c } = committer(f.flush, byTens)
      const first = c.submit([11])
      await settle()
      const a = c.submit([12, 31]) // waits: key 1 is held
      const b = c.submit([32]) // shares key 3 with a waiting caller: must not overtake it
      const d = c.submit([41]) // free
      await settle()
      expect(f.batches.map((x) => x.items)).toEqual([[11], [41]])
      f.answer(0)
      f.answer(1)
      await Promise.all([first, d])
      await settle()
      expect(f.batches.map((x) => x.items)).toEqual([[11], [41], [12, 31, 32]])
      f.answer(2)
      await expect(Promise.all([a, b])).resolves.toEqual([['ok:12', 'ok:31'], ['ok:32']])
    })

    it('callers sharing a key in one pass go in the same flush', async () => {
      const f = instantFlush()
      const { c } = committer(f.flush, byTens)
      await Promise.all([c.submit([11]), c.submit([12]), c.submit([13, 21])])
      expect(f.batches).toEqual([[11, 12, 13, 21]])
    })

    it('a caller split by maxBatch: its rest waits for its own first part (the keys are held)', async () => {
      const f = manualFlush()
      const { c } = committer(f.flush, { ...byTens, maxBatch: 2 })
      const big = c.submit([11, 12, 13])
      await settle()
      expect(f.batches.map((x) => x.items)).toEqual([[11, 12]])
      f.answer(0)
      await settle()
      expect(f.batches.map((x) => x.items)).toEqual([[11, 12], [13]])
      f.answer(1)
      await expect(big).resolves.toEqual(['ok:11', 'ok:12', 'ok:13'])
    })
  })

  it('maxBatch splits a large queue into consecutive flushes; a caller is split only when it alone exceeds maxBatch', async () => {
    const f = instantFlush()
    const { c, flushes } = committer(f.flush, { maxBatch: 4 })
    const items = Array.from({ length: 10 }, (_, i) => i)
    const [a, b] = await Promise.all([c.submit(items.slice(0, 7)), c.submit(items.slice(7))])
    // 7 items cannot fit one flush: split. The 3 of the second caller do not fit beside the first's
    // last 3, so they wait for the next flush whole instead of being split 1 + 2.
    expect(f.batches).toEqual([
      [0, 1, 2, 3],
      [4, 5, 6],
      [7, 8, 9],
    ])
    expect(flushes.map((x) => x.size)).toEqual([4, 3, 3])
    expect([...(a ?? []), ...(b ?? [])]).toEqual(items.map((x) => `ok:${x}`))
  })

  it('a caller that does not fit beside the others waits whole; a smaller one behind it still joins', async () => {
    const f = instantFlush()
    const { c } = committer(f.flush, { maxBatch: 4 })
    await Promise.all([c.submit([1, 2, 3]), c.submit([4, 5]), c.submit([6])])
    expect(f.batches).toEqual([
      [1, 2, 3, 6],
      [4, 5],
    ])
  })

  it('with lock keys, a caller waiting for room also holds back later callers that share a key with it', async () => {
    const f = instantFlush()
    const { c } = committer(f.flush, { maxBatch: 4, concurrency: 2, keyOf: (x: number) => Math.floor(x / 10) })
    await Promise.all([c.submit([11, 12, 13]), c.submit([21, 22]), c.submit([23])])
    // [21, 22] does not fit beside [11, 12, 13]; [23] shares key 2 with it, so it must not go first.
    expect(f.batches).toEqual([
      [11, 12, 13],
      [21, 22, 23],
    ])
  })

  it('QueueFullError beyond maxQueued; nothing of the refused call is queued', async () => {
    const f = manualFlush()
    const { c } = committer(f.flush, { maxQueued: 5, maxBatch: 2 })
    const inFlight = c.submit([1, 2]) // goes into the first flush, leaves the queue
    await settle()
    expect(c.queued).toBe(0)
    const queued = c.submit([3, 4, 5, 6]) // 4 waiting
    const refused = await outcome(c.submit([7, 8]))
    expect(refused.ok).toBe(false)
    const err = (refused as { error: unknown }).error
    expect(err).toBeInstanceOf(QueueFullError)
    expect(err).toBeInstanceOf(UnavailableError)
    expect((err as QueueFullError).code).toBe('QUEUE_FULL')
    expect((err as QueueFullError).httpStatus).toBe(503)
    expect(c.queued).toBe(4)
    // exactly at the limit is fine
    const last = c.submit([9])
    expect(c.queued).toBe(5)
    f.answer(0)
    await inFlight
    await settle()
    f.answer(1)
    await settle()
    f.answer(2)
    await settle()
    f.answer(3)
    await expect(queued).resolves.toEqual(['ok:3', 'ok:4', 'ok:5', 'ok:6'])
    await expect(last).resolves.toEqual(['ok:9'])
    const flushed = f.batches.flatMap((b) => b.items)
    expect(flushed).toEqual([1, 2, 3, 4, 5, 6, 9])
    expect(flushed).not.toContain(7)
    expect(flushed).not.toContain(8)
  })

  it('a failed flush rejects only the callers of that flush', async () => {
    const f = manualFlush()
    const { c, flushes } = committer(f.flush, { maxBatch: 2 })
    const a = outcome(c.submit([1, 2]))
    const b = outcome(c.submit([3, 4]))
    await settle()
    const boom = new Error('connection lost')
    f.batches[0]?.done.reject(boom)
    await settle()
    f.answer(1)
    expect(await a).toEqual({ ok: false, error: boom })
    expect(await b).toEqual({ ok: true, value: ['ok:3', 'ok:4'] })
    expect(flushes).toEqual([{ size: 2, error: boom }, { size: 2 }])
    // and the committer goes on working
    const later = c.submit([5])
    await settle()
    f.answer(2)
    await expect(later).resolves.toEqual(['ok:5'])
  })

  it('drain waits for everything queued so far, including flushes that start after it was called', async () => {
    const f = manualFlush()
    const { c } = committer(f.flush, { maxBatch: 1 })
    const subs = [c.submit([1]), c.submit([2]), c.submit([3])]
    let drained = false
    const d = c.drain().then(() => {
      drained = true
    })
    for (let i = 0; i < 3; i++) {
      await settle()
      expect(drained).toBe(false)
      f.answer(i)
    }
    await d
    expect(drained).toBe(true)
    await expect(Promise.all(subs)).resolves.toEqual([['ok:1'], ['ok:2'], ['ok:3']])
  })

  it('drain on an idle committer resolves at once', async () => {
    const f = instantFlush()
    const { c } = committer(f.flush)
    await expect(c.drain()).resolves.toBeUndefined()
  })

  it('close refuses new items (SHUTTING_DOWN) and flushes the queued ones before resolving', async () => {
    const f = manualFlush()
    const { c } = committer(f.flush)
    const queued = c.submit([1, 2])
    let closed = false
    const closing = c.close().then(() => {
      closed = true
    })
    const refused = await outcome(c.submit([3]))
    expect(refused.ok).toBe(false)
    expect((refused as { error: UnavailableError }).error).toBeInstanceOf(UnavailableError)
    expect((refused as { error: UnavailableError }).error.code).toBe('SHUTTING_DOWN')
    await settle()
    expect(closed).toBe(false)
    expect(f.batches.map((b) => b.items)).toEqual([[1, 2]])
    f.answer(0)
    await closing
    expect(closed).toBe(true)
    await expect(queued).resolves.toEqual(['ok:1', 'ok:2'])
    expect(f.batches.flatMap((b) => b.items)).not.toContain(3)
  })

  it('lingerMs > 0 waits that long for more items before the first flush (fake timers)', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    try {
      const f = instantFlush()
      const { c } = committer(f.flush, { lingerMs: 20 })
      const a = c.submit([1])
      await settle()
      vi.advanceTimersByTime(19)
      await settle()
      expect(f.batches).toEqual([])
      const b = c.submit([2])
      vi.advanceTimersByTime(1)
      await Promise.all([a, b])
      expect(f.batches).toEqual([[1, 2]])
    } finally {
      vi.useRealTimers()
    }
  })
})
