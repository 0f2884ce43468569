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

interface Pending<I, O> {
  item: I
  resolve(o: O): void
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
  private queue: Array<Pending<I, O>> = []
  private active = 0
  private scheduled = false
  private closed = false
  private idleWaiters: Array<() => void> = []
  private inFlight = 0

  constructor(private readonly options: GroupCommitOptions<I, O>) {}

  get queued(): number {
    return this.queue.length
  }

  get flushingItems(): number {
    return this.inFlight
  }

  /** Queues the items; resolves with their outcomes once committed. */
  submit(items: readonly I[]): Promise<O[]> {
    if (this.closed) return Promise.reject(new UnavailableError('shutting down: no new items are accepted', { code: 'SHUTTING_DOWN' }))
    if (items.length === 0) return Promise.resolve([])
    if (this.queue.length + items.length > this.options.maxQueued) return Promise.reject(new QueueFullError(this.queue.length))
    const promises = items.map(
      (item) =>
        new Promise<O>((resolve, reject) => {
          this.queue.push({ item, resolve, reject })
        }),
    )
    this.schedule()
    return Promise.all(promises)
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
      const batch = this.queue.splice(0, this.options.maxBatch)
      this.inFlight += batch.length
      // While this flush runs, another may start on what arrives next (up to the concurrency).
      this.schedule()
      const t0 = performance.now()
      try {
        const outcomes = await this.options.flush(batch.map((p) => p.item))
        batch.forEach((p, i) => p.resolve(outcomes[i] as O))
        this.observe({ size: batch.length, ms: performance.now() - t0 })
      } catch (error) {
        for (const p of batch) p.reject(error)
        this.observe({ size: batch.length, ms: performance.now() - t0, error })
      }
      this.inFlight -= batch.length
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
