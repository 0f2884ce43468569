import { Flags } from '@oclif/core'

import { openDlq, purgeDlq } from '../../lib/app/dlq.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { dlqFilterFlags, dlqFilterFromFlags, renderPurge } from '../../lib/cli/render-dlq.js'

export default class DlqPurge extends BaseCommand<typeof DlqPurge> {
  static override summary = 'Delete the dead letters the filters match (for good; needs --yes; audited)'
  static override description = 'Only matching entries are deleted; without filters every entry is. Each purge writes a job_runs row and a dlq.purge security audit row. Run "dlq list" with the same filters first to see what goes.'
  static override examples = ['<%= config.bin %> dlq purge --error-class constraint --until 7d --yes', '<%= config.bin %> dlq purge --sensor-id 12 --status parked --yes --json']
  static override flags = {
    ...dlqFilterFlags,
    yes: Flags.boolean({ description: 'confirm the deletion' }),
  }

  async run() {
    const filter = dlqFilterFromFlags(this.flags)
    const ctx = await this.context()
    const dlq = await openDlq(ctx, { create: false })
    this.release(() => dlq.close())
    const result = await purgeDlq(ctx, dlq, { filter, yes: this.flags.yes })
    this.print(renderPurge(result))
    return result
  }
}
