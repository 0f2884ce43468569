import { Args, Flags } from '@oclif/core'

import { applyRegistry } from '../lib/app/apply-registry.js'
import { BaseCommand } from '../lib/cli/base-command.js'
import { renderApply } from '../lib/cli/render.js'

export default class Apply extends BaseCommand<typeof Apply> {
  static override summary = 'Register devices, sensors, thresholds and streams from a YAML or JSON file (idempotent)'
  static override description = 'Re-applying the same file changes nothing; a changed threshold is updated in place (same id). An invalid file writes nothing and lists every problem with its path.'
  static override examples = ['<%= config.bin %> apply fixtures/demo.yaml', '<%= config.bin %> apply site.yaml --prune --json']
  static override args = { file: Args.string({ description: 'YAML or JSON file', required: true }) }
  static override flags = {
    prune: Flags.boolean({ description: 'remove thresholds and delta rules of the listed sensors that the file no longer has' }),
    'dry-run': Flags.boolean({ description: 'report what would change; write nothing' }),
  }

  async run() {
    const ctx = await this.context({ createEmbedded: true })
    const result = await applyRegistry(ctx, { file: this.args.file, prune: this.flags.prune, dryRun: this.flags['dry-run'] })
    this.print(renderApply(result))
    return result
  }
}
