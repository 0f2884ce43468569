import { Flags } from '@oclif/core'

import { createHttpAuth } from '../../lib/app/http-auth.js'
import { createServeRuntime } from '../../lib/app/serve.js'
import { BaseCommand } from '../../lib/cli/base-command.js'
import { untilSignal } from '../../lib/cli/signals.js'
import { startProbeServer } from '../../lib/http/probe-server.js'
import { startMqttReceivers, type TopicKind } from '../../lib/mqtt/index.js'

export default class MqttListen extends BaseCommand<typeof MqttListen> {
  static override summary = 'Run the MQTT receivers: QoS 1 readings stored through the ingest path, each PUBACK after its commit'
  static override description = 'Connects MQTT_CONNECTIONS clients in one shared-subscription group with persistent sessions, retries the broker for as long as it runs, and on SIGINT/SIGTERM acks what is committed, leaves the rest for redelivery and exits 0.\n\nShared group or none: a shared group scales (connections, replicas), but Mosquitto 2.0.x restores sessions after a broker restart without their $share subscriptions, so what is published between the restart and the receivers\' reconnect is lost. --shared-group none subscribes with plain filters on one connection (one replica): the broker keeps them across its restart and nothing is lost, at the throughput of one connection.'
  static override examples = ['<%= config.bin %> mqtt listen', '<%= config.bin %> mqtt listen --topics iot --shared-group ingest --connections 16 --port 9101', '<%= config.bin %> mqtt listen --shared-group none']
  static override flags = {
    topics: Flags.string({ description: 'topic families to subscribe to', options: ['iot', 'universal'], multiple: true, delimiter: ',', default: ['iot', 'universal'] }),
    'shared-group': Flags.string({ description: 'shared-subscription group (env MQTT_SHARED_GROUP, default ingest); none: plain subscriptions, one connection, nothing lost across a broker restart' }),
    connections: Flags.integer({ description: 'MQTT connections (env MQTT_CONNECTIONS, default 64)', min: 1, max: 256 }),
    port: Flags.integer({ description: 'serve /health, /ready, /mqtt/health, /mqtt/stats and /metrics on this port', min: 0, max: 65535 }),
    host: Flags.string({ description: 'bind address of --port (env HOST, default 127.0.0.1)' }),
  }

  protected override configOverrides() {
    return { MQTT_SHARED_GROUP: this.flags['shared-group'], MQTT_CONNECTIONS: this.flags.connections, HOST: this.flags.host }
  }

  async run() {
    const ctx = await this.context()
    const runtime = await createServeRuntime(ctx, { auth: createHttpAuth })
    this.release(() => runtime.close())
    const receivers = startMqttReceivers(runtime, ctx.config, { command: 'mqtt-listen', topics: this.flags.topics as TopicKind[] })
    this.release(() => receivers.stop().then(() => undefined))
    const probe = this.flags.port === undefined ? undefined : await startProbeServer({ ...runtime, mqtt: receivers.stats }, { host: ctx.config.http.host, port: this.flags.port })
    this.release(() => probe?.close())
    const signal = await untilSignal()
    const { unacked } = await receivers.stop(Math.max(1000, ctx.config.http.shutdownTimeoutSeconds * 1000 - 3000))
    const result = { signal, unacked, ...receivers.stats.summary() }
    this.print([`stopped on ${signal}: ${result.stored} stored, ${result.duplicates} duplicates, ${result.dead_lettered} dead-lettered, ${unacked} left unacked for redelivery`])
    return result
  }
}
