import { dlqStats, openDlq } from '../../lib/app/dlq.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { renderDlqStats } from '../../lib/cli/render-dlq.js'

export default class DlqStats extends BaseCommand<typeof DlqStats> {
  static override summary = 'Dead-letter queue depth, capacity, pending and parked entries, oldest failure, counts by stage and error class'
  static override examples = ['<%= config.bin %> dlq stats', '<%= config.bin %> dlq stats --json']

  async run() {
    const dlq = await openDlq({ config: this.config_(), logger: this.logger() }, { create: false })
    this.release(() => dlq.close())
    const result = await dlqStats(dlq)
    this.print(renderDlqStats(result))
    return result
  }
}
