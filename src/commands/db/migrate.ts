import { Flags } from '@oclif/core'

import { migrateDb } from '../../lib/app/migrate-db.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { renderMigrate } from '../../lib/cli/render.js'

export default class DbMigrate extends BaseCommand<typeof DbMigrate> {
  static override summary = 'Apply pending schema migrations to every configured database'
  static override description = 'Forward-only numbered migrations, applied under a lock (two concurrent runs are safe). Creates the embedded database when none is configured.'
  static override examples = ['<%= config.bin %> db migrate', '<%= config.bin %> db migrate --dry-run --json']
  static override flags = {
    'dry-run': Flags.boolean({ description: 'print the SQL that would run; change nothing' }),
    'alter-legacy': Flags.boolean({ description: 'SQL Server: also create indexes on the legacy dbo tables' }),
  }

  async run() {
    const ctx = await this.context({ createEmbedded: true, requireMigrated: false })
    const result = await migrateDb(ctx, { dryRun: this.flags['dry-run'], alterLegacy: this.flags['alter-legacy'] })
    this.print(renderMigrate(result.databases))
    return result
  }
}
