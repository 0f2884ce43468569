import { Flags } from '@oclif/core'

import { openDlq, replayDlq } from '../../lib/app/dlq.js'
import { createIngestReplayer } from '../../lib/app/ingest/runtime.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { dlqFilterFlags, dlqFilterFromFlags, rateFlag, renderReplay } from '../../lib/cli/render-dlq.js'

export default class DlqReplay extends BaseCommand<typeof DlqReplay> {
  static override summary = 'Re-run dead-lettered readings through the normal ingest path (idempotent), oldest first'
  static override description = 'Pending entries only, unless --status parked. A reading stored (or found already stored) leaves the queue; a failure adds an attempt and parks the entry after DLQ_MAX_RETRIES. Entries that are not readings (raw MQTT messages) are skipped. --dry-run changes nothing.'
  static override examples = ['<%= config.bin %> dlq replay --dry-run', '<%= config.bin %> dlq replay --since 2h --error-class outage --rate 50/s', '<%= config.bin %> dlq replay --status parked --sensor-id 12 --limit 10 --json']
  static override flags = {
    ...dlqFilterFlags,
    'dry-run': Flags.boolean({ description: 'report what would be replayed; change nothing' }),
    rate: rateFlag(),
  }

  async run() {
    const filter = dlqFilterFromFlags(this.flags)
    const ctx = await this.context()
    const dlq = await openDlq(ctx, { create: false })
    this.release(() => dlq.close())
    const replayer = await createIngestReplayer(ctx)
    this.release(() => replayer.close())
    const result = await replayDlq(ctx, dlq, { filter, dryRun: this.flags['dry-run'], rate: this.flags.rate, maxRetries: ctx.config.dlq.maxRetries, replay: replayer.replay })
    this.print(renderReplay(result))
    return result
  }
}
