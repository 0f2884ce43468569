import type { DeadLetterQueue } from '../../ports/dead-letter-queue.js'
import type { AppContext } from '../context.js'
import { replayDlq, type ReplayFn } from '../dlq.js'

/** A lease so that one replica at a time replays a shared (Redis) DLQ. */
export interface ReplayLease {
  acquire(): Promise<boolean>
  release(): Promise<void>
}

export interface AutoReplayStats {
  running: boolean
  runs: number
  replayed: number
  duplicates: number
  failed: number
  parked: number
  last_run_at: string | null
  last_error: string | null
}

/**
 * Replays outage-class DLQ entries automatically (DESIGN §6): when the store's breaker closes, and
 * every DLQ_CONSUMER_INTERVAL_SEC while the store is healthy. Runs never overlap; with a shared DLQ a
 * lease lets one replica at a time do it. Entries that keep failing are parked after DLQ_MAX_RETRIES.
 */
export class AutoReplayer {
  private running: Promise<void> | undefined
  private again = false
  private timer: NodeJS.Timeout | undefined
  private closed = false
  readonly stats: AutoReplayStats = { running: false, runs: 0, replayed: 0, duplicates: 0, failed: 0, parked: 0, last_run_at: null, last_error: null }

  constructor(
    private readonly ctx: AppContext,
    private readonly dlq: DeadLetterQueue,
    private readonly replay: ReplayFn,
    private readonly options: { healthy: () => boolean; lease?: ReplayLease; intervalMs: number; batchSize: number },
  ) {}

  start(): void {
    if (this.options.intervalMs <= 0) return
    this.timer = setInterval(() => {
      if (this.options.healthy()) this.trigger()
    }, this.options.intervalMs)
    this.timer.unref()
  }

  /** Starts a run now (or right after the current one). */
  trigger(): void {
    if (this.closed) return
    if (this.running) {
      this.again = true
      return
    }
    this.running = this.loop().finally(() => {
      this.running = undefined
    })
  }

  private async loop(): Promise<void> {
    do {
      this.again = false
      await this.runOnce()
    } while (this.again && !this.closed)
  }

  private async runOnce(): Promise<void> {
    const { ctx, dlq } = this
    if (!this.options.healthy()) return
    const pending = await dlq.list({ errorClass: 'outage', status: 'pending', limit: 1 }).catch(() => [])
    if (pending.length === 0) return
    if (this.options.lease && !(await this.options.lease.acquire().catch(() => false))) return
    this.stats.running = true
    try {
      // Batches until the queue's outage entries are gone or a whole pass stored nothing.
      for (let pass = 0; pass < 1000 && !this.closed && this.options.healthy(); pass++) {
        const r = await replayDlq(ctx, dlq, { filter: { errorClass: 'outage', status: 'pending' }, dryRun: false, limit: this.options.batchSize, maxRetries: ctx.config.dlq.maxRetries, replay: this.replay, actor: { type: 'system' } })
        this.stats.runs++
        this.stats.replayed += r.stored
        this.stats.duplicates += r.duplicates
        this.stats.failed += r.failed
        this.stats.parked += r.parked
        this.stats.last_run_at = new Date(ctx.clock.now()).toISOString()
        if (r.selected === 0 || r.stored + r.duplicates === 0) break
      }
      this.stats.last_error = null
    } catch (err) {
      this.stats.last_error = err instanceof Error ? err.message : String(err)
      ctx.logger.warn({ err: this.stats.last_error }, 'automatic DLQ replay stopped')
    } finally {
      this.stats.running = false
      await this.options.lease?.release().catch(() => undefined)
    }
  }

  async close(): Promise<void> {
    this.closed = true
    if (this.timer) clearInterval(this.timer)
    await this.running
  }
}
