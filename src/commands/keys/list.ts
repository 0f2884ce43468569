import { listKeys } from '../../lib/app/keys.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { renderKeyList } from '../../lib/cli/render-keys.js'

export default class KeysList extends BaseCommand<typeof KeysList> {
  static override summary = 'List device and role keys (kid, scope, status, expiry, last use; never a secret)'
  static override examples = ['<%= config.bin %> keys list', '<%= config.bin %> keys list --json']

  async run() {
    const ctx = await this.context()
    const result = await listKeys(ctx)
    this.print(renderKeyList(result))
    return result
  }
}
