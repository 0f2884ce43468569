import { describe, expect, it } from 'vitest'

import { loadConfig } from '../../../src/lib/config/load.js'
import { ConfigError } from '../../../src/lib/errors/index.js'

const load = (env: Record<string, string>, overrides = {}) => loadConfig({ env, overrides })

/**
 * MQTT_SHARED_GROUP=none (plain subscriptions, lossless across a broker restart) takes one connection:
 * every connection would receive every message. The default count follows; an explicit one is refused.
 */
describe('MQTT_SHARED_GROUP=none', () => {
  it('uses one connection when MQTT_CONNECTIONS is not set, and normalises the case', () => {
    expect(load({ MQTT_SHARED_GROUP: 'none' }).config.mqtt).toMatchObject({ sharedGroup: 'none', connections: 1 })
    expect(load({ MQTT_SHARED_GROUP: 'None' }).config.mqtt).toMatchObject({ sharedGroup: 'none', connections: 1 })
    expect(load({}, { MQTT_SHARED_GROUP: 'none', MQTT_CONNECTIONS: 1 }).config.mqtt).toMatchObject({ sharedGroup: 'none', connections: 1 })
  })

  it('refuses an explicit count above 1 (flag or environment) with a problem naming both', () => {
    for (const [env, overrides] of [
      [{ MQTT_SHARED_GROUP: 'none', MQTT_CONNECTIONS: '4' }, {}],
      [{}, { MQTT_SHARED_GROUP: 'none', MQTT_CONNECTIONS: 2 }],
      [{ MQTT_CONNECTIONS: '8' }, { MQTT_SHARED_GROUP: 'none' }],
    ] as const) {
      let err: unknown
      try {
        load({ ...env }, overrides)
      } catch (e) {
        err = e
      }
      expect(err).toBeInstanceOf(ConfigError)
      expect((err as ConfigError).problems?.join('\n')).toMatch(/MQTT_SHARED_GROUP: "none".*one connection.*MQTT_CONNECTIONS \(--connections\) is \d/)
    }
  })

  it('leaves a shared group and its connections as configured', () => {
    expect(load({ MQTT_SHARED_GROUP: 'ingest', MQTT_CONNECTIONS: '4' }).config.mqtt).toMatchObject({ sharedGroup: 'ingest', connections: 4 })
  })
})
