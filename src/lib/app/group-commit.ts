import { UnavailableError } from '../errors/index.js'

export interface GroupCommitOptions<I, O> {
  /** Most items in one flush. */
  maxBatch: number
  /** Most items queued (not yet in a flush); beyond it `submit` refuses with QUEUE_FULL. */
  maxQueued: number
  /** How long a flush may wait for more items after the first arrived (0: next event-loop turn). */
  lingerMs: number
  /** Flushes that may run at once (default 1). */
  concurrency?: number
  /** Writes one batch in one transaction and returns one outcome per item, in order. */
  flush(items: I[]): Promise<O[]>
  /** Observes each flush (size, duration, error) for metrics. */
  onFlush?(info: { size: number; ms: number; error?: unknown }): void
}

/** One caller's items: settled once, when all its items have been flushed (or one flush failed). */
interface Group<I, O> {
  items: readonly I[]
  /** Items of this group already handed to a flush. */
  taken: number
  outcomes: O[]
  pending: number
  settled: boolean
  resolve(o: O[]): void
  reject(e: unknown): void
}

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
      this.queue.push({ items, taken: 0, outcomes: new Array<O>(items.length), pending: items.length, settled: false, resolve, reject })
    })
    this.queuedItems += items.length
    this.schedule()
    return promise
  }

  /** Takes up to maxBatch items from the head of the queue (a large group may span flushes). */
  private take(): { items: I[]; parts: Array<{ group: Group<I, O>; from: number; count: number }> } {
    const items: I[] = []
    const parts: Array<{ group: Group<I, O>; from: number; count: number }> = []
    while (this.queue.length > 0 && items.length < this.options.maxBatch) {
      const group = this.queue[0] as Group<I, O>
      if (group.settled) {
        // Its caller already got an error: the rest of its items are not written.
        this.queue.shift()
        this.queuedItems -= group.items.length - group.taken
        continue
      }
      const count = Math.min(group.items.length - group.taken, this.options.maxBatch - items.length)
      const from = group.taken
      for (let i = 0; i < count; i++) items.push(group.items[from + i] as I)
      parts.push({ group, from, count })
      group.taken += count
      if (group.taken === group.items.length) this.queue.shift()
    }
    this.queuedItems -= items.length
    return { items, parts }
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
