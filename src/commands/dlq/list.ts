import { Flags } from '@oclif/core'

import { listDlq, openDlq } from '../../lib/app/dlq.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { dlqFilterFlags, dlqFilterFromFlags, renderDlqCsv, renderDlqList } from '../../lib/cli/render-dlq.js'

export default class DlqList extends BaseCommand<typeof DlqList> {
  static override summary = 'List dead letters (oldest first failure first), with filters; --csv for a spreadsheet-safe export'
  static override description = 'Works while the database is down (the local DLQ is its own file). --json and --csv carry the full payloads; CSV cells that a spreadsheet would evaluate as formulas are prefixed with a quote.'
  static override examples = [
    '<%= config.bin %> dlq list --since 1h --stage store',
    '<%= config.bin %> dlq list --sensor-id 12 --status parked --json',
    '<%= config.bin %> dlq list --csv > dead-letters.csv',
  ]
  static override flags = {
    ...dlqFilterFlags,
    csv: Flags.boolean({ description: 'print CSV (RFC 4180, formula-escaped) instead of a table (--json wins)' }),
  }

  async run() {
    const filter = dlqFilterFromFlags(this.flags)
    const dlq = await openDlq({ config: this.config_(), logger: this.logger() }, { create: false })
    this.release(() => dlq.close())
    const result = await listDlq(dlq, filter)
    this.print(this.flags.csv ? renderDlqCsv(result.entries) : renderDlqList(result))
    return result
  }
}
