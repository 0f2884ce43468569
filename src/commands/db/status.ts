import { dbStatus } from '../../lib/app/migrate-db.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { renderStatus } from '../../lib/cli/render.js'

export default class DbStatus extends BaseCommand<typeof DbStatus> {
  static override summary = 'Show applied and pending migrations per database'
  static override examples = ['<%= config.bin %> db status --json']

  async run() {
    const ctx = await this.context({ requireMigrated: false })
    const result = await dbStatus(ctx)
    this.print(renderStatus(result.databases))
    return result
  }
}
