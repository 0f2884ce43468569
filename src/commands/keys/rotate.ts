import { Args } from '@oclif/core'

import { AUTH_CACHE_TTL_MS } from '../../lib/app/authenticate.js'
import { rotateKey } from '../../lib/app/keys.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { describeCreatedKey, durationFlag, durationFlagWithDefault, KEY_SHOWN_ONCE, renderCreatedKey } from '../../lib/cli/render-keys.js'

export default class KeysRotate extends BaseCommand<typeof KeysRotate> {
  static override summary = 'Replace a key: a new key with the same scope; the old one keeps working for the grace period'
  static override description = `Running services trust a verified key from memory for ${AUTH_CACHE_TTL_MS / 1000} seconds (the auth cache), so with a shorter grace the old key may keep working that long; the summary on stderr (--json: previous.effectiveEverywhereAt) says when it stops everywhere.`
  static override examples = ['<%= config.bin %> keys rotate 3hJ9aXk2LmQp --grace 1h', '<%= config.bin %> keys rotate 3hJ9aXk2LmQp --grace 0s --json']
  static override args = { kid: Args.string({ description: 'the key id shown by "keys list" (or the whole key)', required: true }) }
  static override flags = {
    grace: durationFlagWithDefault({ description: 'how long the old key keeps working', default: '1h' }),
    'expires-in': durationFlag({ description: "lifetime of the new key (default: the old key's lifetime)" }),
  }

  async run() {
    const ctx = await this.context()
    const result = await rotateKey(ctx, this.args.kid, { graceSeconds: this.flags.grace, expiresIn: this.flags['expires-in'] })
    this.print(renderCreatedKey(result))
    this.logToStderr(`${KEY_SHOWN_ONCE}\n  ${describeCreatedKey(result)}`)
    return result
  }
}
