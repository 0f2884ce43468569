import { Flags } from '@oclif/core'

import { createKey } from '../../lib/app/keys.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { describeCreatedKey, durationFlag, KEY_SHOWN_ONCE, renderCreatedKey } from '../../lib/cli/render-keys.js'
import { ROLES } from '../../lib/domain/keys.js'

export default class KeysCreate extends BaseCommand<typeof KeysCreate> {
  static override summary = 'Create a device key (--device) or a role key (--role); the key is shown once'
  static override description = 'Device keys (ingd_...) authenticate one device on /ingest/packets. Role keys (ingk_...) are admin, source_writer (one --source-id and its --domain list) or read_only. Only the SHA-256 of the key is stored.'
  static override examples = [
    '<%= config.bin %> keys create --device 3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c --name boiler --expires-in 365d',
    '<%= config.bin %> keys create --role source_writer --source-id ward-3 --domain health --json',
  ]
  static override flags = {
    device: Flags.string({ description: 'device uuid: create a device key' }),
    role: Flags.string({ description: 'create a role key with this role', options: [...ROLES] }),
    'source-id': Flags.string({ description: 'the one source a source_writer key may write' }),
    domain: Flags.string({ description: 'a domain a source_writer key may write (repeatable)', multiple: true }),
    name: Flags.string({ description: 'a label for listings' }),
    'expires-in': durationFlag({ description: 'lifetime, e.g. 90s, 30m, 12h, 30d (default: no expiry)' }),
  }

  async run() {
    const f = this.flags
    const ctx = await this.context({ createEmbedded: true })
    const result = await createKey(ctx, { device: f.device, role: f.role, sourceId: f['source-id'], domains: f.domain, name: f.name, expiresIn: f['expires-in'] })
    this.print(renderCreatedKey(result))
    this.logToStderr(`${KEY_SHOWN_ONCE}\n  ${describeCreatedKey(result)}`)
    return result
  }
}
