import { UnavailableError } from '../errors/index.js'

/** What a flush locks per item: a sensor id, or a series id (`domain:source:stream`) for universal points. */
export type LockKey = number | string

export interface GroupCommitOptions<I, O> {
  /** Most items in one flush. */
  maxBatch: number
  /** Most items queued (not yet in a flush); beyond it `submit` refuses with QUEUE_FULL. */
  maxQueued: number
  /** How long a flush may wait for more items after the first arrived (0: next event-loop turn). */
  lingerMs: number
  /** Flushes that may run at once (default 1). */
  concurrency?: number
  /**
   * The lock key of an item (the sensor). With it, flushes that run at once never share a key: a caller
   * whose keys an unfinished flush holds waits for the next one, so flushes do not queue behind each
   * other's row locks in the database (and a reading's later ones are never written before it).
   */
  keyOf?: (item: I) => LockKey
  /** Writes one batch in one transaction and returns one outcome per item, in order. */
  flush(items: I[]): Promise<O[]>
  /** Observes each flush (size, duration, error) for metrics. */
  onFlush?(info: { size: number; ms: number; error?: unknown }): void
  /** Observes, per caller taken into a flush, how long it waited in the queue (ms; its first part only). */
  onQueueWait?: (ms: number) => void
}

/** One caller's items: settled once, when all its items have been flushed (or one flush failed). */
interface Group<I, O> {
  items: readonly I[]
  /** The lock keys of its items (keyOf), when the committer keeps flushes key-disjoint. */
  keys: ReadonlySet<LockKey> | undefined
  /** Items of this group already handed to a flush. */
  taken: number
  /** When the caller submitted (performance.now()), for the queue-wait metric. */
  submittedAt: number
  outcomes: O[]
  pending: number
  settled: boolean
  resolve(o: O[]): void
  reject(e: unknown): void
}

/** Groups one take() looks at, at most (see take). */
const MAX_SCAN = 4096

/** Thrown when the queue is full: HTTP answers 503 + Retry-After, MQTT stops acking. */
export class QueueFullError extends UnavailableError {
  constructor(queued: number) {
    super(`the ingest queue is full (${queued} items waiting for commit)`, { code: 'QUEUE_FULL' })
  }
}

/**
 * Group commit (DESIGN §3): concurrent callers' items are written together, one transaction per flush,
 * and a flush starts as soon as the previous one ended (flush-on-idle: no fixed timer on the hot path).
 * Each caller's promise settles after the flush that holds its items committed.
 */
export class GroupCommitter<I, O> {
  private queue: Array<Group<I, O>> = []
  /** Items queued and not yet handed to a flush. */
  private queuedItems = 0
  private active = 0
  private scheduled = false
  private closed = false
  private idleWaiters: Array<() => void> = []
  private inFlight = 0
  /** Lock keys held by unfinished flushes (keyOf). */
  private readonly busy = new Set<LockKey>()

  constructor(private readonly options: GroupCommitOptions<I, O>) {}

  get queued(): number {
    return this.queuedItems
  }

  get flushingItems(): number {
    return this.inFlight
  }

  /** Queues the items; resolves with their outcomes once committed. */
  submit(items: readonly I[]): Promise<O[]> {
    if (this.closed) return Promise.reject(new UnavailableError('shutting down: no new items are accepted', { code: 'SHUTTING_DOWN' }))
    if (items.length === 0) return Promise.resolve([])
    if (this.queuedItems + items.length > this.options.maxQueued) return Promise.reject(new QueueFullError(this.queuedItems))
    // One promise per caller, not per item: the hot path allocates per batch.
    const promise = new Promise<O[]>((resolve, reject) => {
      const keyOf = this.options.keyOf
      this.queue.push({ items, keys: keyOf ? new Set(items.map(keyOf)) : undefined, taken: 0, submittedAt: this.options.onQueueWait ? performance.now() : 0, outcomes: new Array<O>(items.length), pending: items.length, settled: false, resolve, reject })
    })
    this.queuedItems += items.length
    this.schedule()
    return promise
  }

  /**
   * Takes up to maxBatch items from the head of the queue (a large group may span flushes), skipping the
   * groups whose keys an unfinished flush holds; the keys taken are held until this batch is flushed.
   */
  private take(): { items: I[]; parts: Array<{ group: Group<I, O>; from: number; count: number }>; keys: Set<LockKey> } {
    const items: I[] = []
    const parts: Array<{ group: Group<I, O>; from: number; count: number }> = []
    const keys = new Set<LockKey>()
    const rest: Array<Group<I, O>> = []
    // Keys of groups left waiting in this pass: a later group sharing one waits too (per-key order).
    const waiting = new Set<LockKey>()
    // At most MAX_SCAN groups are looked at per pass: many callers waiting on one busy sensor must not
    // make every flush walk all of them (the rest wait for the next pass, in order).
    let scanned = 0
    for (const group of this.queue) {
      if (++scanned > MAX_SCAN) {
        rest.push(group)
        continue
      }
      if (group.settled) {
        // Its caller already got an error: the rest of its items are not written.
        this.queuedItems -= group.items.length - group.taken
        continue
      }
      if (items.length >= this.options.maxBatch) {
        rest.push(group)
        continue
      }
      // A caller is split across flushes only when its items alone exceed maxBatch: a caller whose
      // second part failed would get an error for a first part already committed (and send it again).
      const left = group.items.length - group.taken
      if (items.length > 0 && left > this.options.maxBatch - items.length && left <= this.options.maxBatch) {
        if (group.keys !== undefined) for (const k of group.keys) waiting.add(k)
        rest.push(group)
        continue
      }
      if (group.keys !== undefined && this.mustWait(group.keys, keys, waiting)) {
        for (const k of group.keys) waiting.add(k)
        rest.push(group)
        continue
      }
      const count = Math.min(group.items.length - group.taken, this.options.maxBatch - items.length)
      const from = group.taken
      if (from === 0 && this.options.onQueueWait) this.options.onQueueWait(performance.now() - group.submittedAt)
      for (let i = 0; i < count; i++) items.push(group.items[from + i] as I)
      parts.push({ group, from, count })
      group.taken += count
      if (group.taken < group.items.length) rest.push(group)
      if (group.keys !== undefined)
        for (const k of group.keys) {
          keys.add(k)
          this.busy.add(k)
        }
    }
    this.queue = rest
    this.queuedItems -= items.length
    return { items, parts, keys }
  }

  /** Whether a group must wait: another unfinished flush holds one of its keys, or an earlier group waits for one. */
  private mustWait(groupKeys: ReadonlySet<LockKey>, mine: ReadonlySet<LockKey>, waiting: ReadonlySet<LockKey>): boolean {
    for (const k of groupKeys) if (waiting.has(k) || (this.busy.has(k) && !mine.has(k))) return true
    return false
  }

  private get flushing(): boolean {
    return this.active > 0
  }

  private schedule(): void {
    if (this.active >= (this.options.concurrency ?? 1) || this.scheduled || this.queue.length === 0) return
    this.scheduled = true
    const run = () => {
      this.scheduled = false
      void this.run()
    }
    // setImmediate lets every request parsed in this event-loop turn join the same flush.
    if (this.options.lingerMs > 0) setTimeout(run, this.options.lingerMs)
    else setImmediate(run)
  }

  private notifyIfIdle(): void {
    if (this.active === 0 && !this.scheduled && this.queue.length === 0) for (const w of this.idleWaiters.splice(0)) w()
  }

  private async run(): Promise<void> {
    if (this.active >= (this.options.concurrency ?? 1) || this.queue.length === 0) {
      this.notifyIfIdle()
      return
    }
    this.active++
    while (this.queue.length > 0) {
      const batch = this.take()
      // Everything left waits for keys other flushes hold: they take it when they finish.
      if (batch.items.length === 0) break
      this.inFlight += batch.items.length
      // While this flush runs, another may start on what arrives next (up to the concurrency).
      this.schedule()
      const t0 = performance.now()
      try {
        const outcomes = await this.options.flush(batch.items)
        let offset = 0
        for (const { group, from, count } of batch.parts) {
          for (let i = 0; i < count; i++) group.outcomes[from + i] = outcomes[offset + i] as O
          offset += count
          group.pending -= count
          if (group.pending === 0 && !group.settled) {
            group.settled = true
            group.resolve(group.outcomes)
          }
        }
        this.observe({ size: batch.items.length, ms: performance.now() - t0 })
      } catch (error) {
        for (const { group } of batch.parts) {
          if (group.settled) continue
          group.settled = true
          group.reject(error)
        }
        this.observe({ size: batch.items.length, ms: performance.now() - t0, error })
      }
      this.inFlight -= batch.items.length
      for (const k of batch.keys) this.busy.delete(k)
    }
    this.active--
    this.notifyIfIdle()
  }

  /** Metrics must never fail a committed batch or stop the loop. */
  private observe(info: { size: number; ms: number; error?: unknown }): void {
    try {
      this.options.onFlush?.(info)
    } catch {
      // ignored
    }
  }

  /** Resolves when everything queued so far has been flushed. */
  async drain(): Promise<void> {
    if (!this.flushing && this.queue.length === 0 && !this.scheduled) return
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve))
  }

  /** Refuses new items, then flushes what is queued. */
  async close(): Promise<void> {
    this.closed = true
    await this.drain()
  }
}

/**
 * Submits items and waits for their commit at most `timeoutMs` (INGEST_COMMIT_TIMEOUT_SECONDS), then
 * fails with 503 COMMIT_TIMEOUT: the items may still commit, the caller retries (their keys decide).
 */
export async function submitWithin<I, O>(committer: GroupCommitter<I, O>, items: readonly I[], timeoutMs: number): Promise<O[]> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UnavailableError(`the commit did not finish within ${timeoutMs} ms`, { code: 'COMMIT_TIMEOUT' })), timeoutMs)
  })
  try {
    return await Promise.race([committer.submit(items), timeout])
  } finally {
    clearTimeout(timer)
  }
}

