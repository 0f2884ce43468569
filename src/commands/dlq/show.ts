import { Args } from '@oclif/core'

import { openDlq, showDlq } from '../../lib/app/dlq.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { renderDlqEntry } from '../../lib/cli/render-dlq.js'

export default class DlqShow extends BaseCommand<typeof DlqShow> {
  static override summary = 'Show one dead letter with its full payload'
  static override examples = ['<%= config.bin %> dlq show 01JDZ8K3M4N5P6Q7R8S9T0V1W2', '<%= config.bin %> dlq show 01JDZ8K3M4N5P6Q7R8S9T0V1W2 --json']
  static override args = { id: Args.string({ description: 'the entry id shown by "dlq list"', required: true }) }

  async run() {
    const dlq = await openDlq({ config: this.config_(), logger: this.logger() }, { create: false })
    this.release(() => dlq.close())
    const result = await showDlq(dlq, this.args.id)
    this.print(renderDlqEntry(result))
    return result
  }
}
