import { Flags } from '@oclif/core'

import { explainAnomalies } from '../../lib/app/jobs/explain-anomalies.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { durationMs, explainProgressLine, jobFlags, renderExplainAnomalies, withJobProgress } from '../../lib/cli/render-jobs.js'

export default class ExplainAnomalies extends BaseCommand<typeof ExplainAnomalies> {
  static override summary = 'Ask the AI explainer (AI_EXPLAINER_URL) to explain anomalous predictions and store its answers'
  static override description = 'Predictions with is_anomaly, anomaly_score >= --anomaly-threshold and no explanation, newest first, at most --batch-size. Each answer is validated and stored as JSON, committed on its own (on SQL Server shortened to valid JSON within nvarchar(1000)). An unreachable, slow or failing explainer skips the row and the run goes on (exit 0); exit 1 only if an answer could not be stored.'
  static override examples = ['<%= config.bin %> explain anomalies', '<%= config.bin %> explain anomalies --anomaly-threshold 0.9 --batch-size 200 --concurrency 8 --timeout 5s --json', '<%= config.bin %> explain anomalies --dry-run']
  static override flags = {
    'anomaly-threshold': Flags.string({ description: 'lowest anomaly_score explained (0-1)', default: '0.8', aliases: ['threshold'] }),
    'batch-size': Flags.integer({ description: 'most predictions per run', default: 50, min: 1, aliases: ['limit'] }),
    concurrency: jobFlags.concurrency('explainer calls in flight', 4),
    timeout: Flags.string({ description: 'deadline of one explainer call', default: '10s' }),
    'dry-run': Flags.boolean({ description: 'print the requests; call nothing, write nothing' }),
  }

  async run() {
    const f = this.flags
    const threshold = Number(f['anomaly-threshold'])
    const timeoutMs = durationMs('timeout', f.timeout)
    const ctx = await this.context()
    const options = { threshold, limit: f['batch-size'], concurrency: f.concurrency ?? 4, timeoutMs, dryRun: f['dry-run'] }
    const result = await withJobProgress('ingest explain anomalies', { json: this.jsonEnabled() || f['dry-run'], tty: process.stdout.isTTY === true }, explainProgressLine, (onProgress) => explainAnomalies(ctx, { ...options, onProgress }))
    this.print(renderExplainAnomalies(result))
    if (result.failed > 0) {
      if (this.jsonEnabled()) this.logJson(result)
      this.exit(1)
    }
    return result
  }
}
