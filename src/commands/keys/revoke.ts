import { Args } from '@oclif/core'

import { AUTH_CACHE_TTL_MS } from '../../lib/app/authenticate.js'
import { revokeKey } from '../../lib/app/keys.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { renderRevoked } from '../../lib/cli/render-keys.js'

export default class KeysRevoke extends BaseCommand<typeof KeysRevoke> {
  static override summary = `Revoke a key by its kid (or the whole key); refused everywhere within ${AUTH_CACHE_TTL_MS / 1000} s`
  static override description = `Running services trust a verified key from memory for ${AUTH_CACHE_TTL_MS / 1000} seconds (the auth cache), so a revoked key may keep working that long; the output says when the revocation takes effect everywhere (--json: effectiveEverywhereAt). Revoking twice is not an error.`
  static override examples = ['<%= config.bin %> keys revoke 3hJ9aXk2LmQp']
  static override args = { kid: Args.string({ description: 'the key id shown by "keys list" (or the whole key)', required: true }) }

  async run() {
    const ctx = await this.context()
    const result = await revokeKey(ctx, this.args.kid)
    this.print(renderRevoked(result))
    return result
  }
}
