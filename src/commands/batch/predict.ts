import { Flags } from '@oclif/core'

import { parseShard, runBatchPredict, runBatchPredictLoop } from '../../lib/app/jobs/batch-predict.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { durationMs, jobFlags, predictProgressLine, renderBatchPredict, withJobProgress } from '../../lib/cli/render-jobs.js'
import { untilSignal } from '../../lib/cli/signals.js'

export default class BatchPredict extends BaseCommand<typeof BatchPredict> {
  static override summary = 'Predict the next value of every active sensor with new readings (baseline moving average or Taylor)'
  static override description = 'One prediction per sensor with readings newer than its watermark, every predictions column filled; a PRED_THRESHOLD_BREACH event with its notification when the forecast violates a threshold (once per --dedupe-minutes). Watermarks move by compare-and-set in the same transaction: overlapping runs (cron) and shards never write a prediction twice. --once for cron; otherwise a cycle every --interval until SIGINT/SIGTERM. Exit 1 if any sensor failed (the others are still processed).'
  static override examples = ['<%= config.bin %> batch predict --once', '<%= config.bin %> batch predict --once --engine taylor --shard 0/2 --concurrency 4 --json', '<%= config.bin %> batch predict --interval 60s']
  static override flags = {
    once: Flags.boolean({ description: 'run one cycle and exit (cron)' }),
    interval: Flags.string({ description: 'time between cycles without --once', default: '60s', aliases: ['sleep-seconds'] }),
    window: Flags.integer({ description: 'readings per sensor (the newest by time)', default: 60, min: 2 }),
    'horizon-minutes': Flags.integer({ description: 'target_timestamp = now + this', default: 10, min: 1 }),
    'dedupe-minutes': Flags.integer({ description: 'no second PRED_THRESHOLD_BREACH event for a sensor within this', default: 10, min: 0 }),
    engine: Flags.string({ description: 'baseline or taylor (default: ML_DEFAULT_ENGINE / ML_USE_TAYLOR_PREDICTOR, taylor for ML_TAYLOR_SENSOR_WHITELIST)', options: ['baseline', 'taylor'] }),
    shard: Flags.string({ description: 'i/n: only the sensors whose id mod n is i' }),
    concurrency: jobFlags.concurrency('transactions in flight (default ML_BATCH_PARALLEL_WORKERS)'),
  }

  async run() {
    const f = this.flags
    const shard = parseShard(f.shard)
    const intervalMs = durationMs('interval', f.interval)
    const ctx = await this.context()
    const options = { engine: f.engine as 'baseline' | 'taylor' | undefined, window: f.window, horizonMinutes: f['horizon-minutes'], dedupeMinutes: f['dedupe-minutes'], shard, concurrency: f.concurrency ?? ctx.config.ml.parallelWorkers }
    const progress = { json: this.jsonEnabled(), tty: process.stdout.isTTY === true }
    if (f.once) {
      const result = await withJobProgress('ingest batch predict', progress, predictProgressLine, (onProgress) => runBatchPredict(ctx, { ...options, onProgress }))
      this.print(renderBatchPredict(result))
      if (result.failed > 0) {
        if (this.jsonEnabled()) this.logJson(result)
        this.exit(1)
      }
      return result
    }
    const stop = new AbortController()
    void untilSignal().then(() => stop.abort())
    return runBatchPredictLoop(ctx, { ...options, intervalMs, signal: stop.signal, onCycle: (r) => this.print(renderBatchPredict(r)) })
  }
}
