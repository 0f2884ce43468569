import { Flags } from '@oclif/core'

import { BaseCommand } from '../lib/cli/base-command.js'
import { untilSignal } from '../lib/cli/signals.js'
import { createServeRuntime } from '../lib/app/serve.js'
import { createHttpAuth } from '../lib/app/http-auth.js'
import type { MqttAwareRuntime } from '../lib/http/routes/mqtt.js'
import { startHttpServer } from '../lib/http/server.js'
import { serveTopics, startMqttReceivers } from '../lib/mqtt/index.js'

export default class Serve extends BaseCommand<typeof Serve> {
  static override summary = 'Run the HTTP ingest API (IoT packets, legacy readings, status, metrics)'
  static override description = 'Serves until SIGINT/SIGTERM, then stops accepting, answers everything in flight and exits 0 within SHUTDOWN_TIMEOUT_SECONDS. Creates and migrates the embedded database when no database is configured.'
  static override examples = ['<%= config.bin %> serve', 'PORT=8080 HOST=0.0.0.0 <%= config.bin %> serve']
  static override flags = {
    port: Flags.integer({ description: 'HTTP port (env PORT, default 8001)', min: 0, max: 65535 }),
    host: Flags.string({ description: 'bind address (env HOST, default 127.0.0.1)' }),
    mqtt: Flags.boolean({ description: 'also run the MQTT receivers (env FF_MQTT_INGEST_ENABLED); universal topics with FF_MQTT_UNIVERSAL', allowNo: true }),
  }

  protected override configOverrides() {
    return { PORT: this.flags.port, HOST: this.flags.host, FF_MQTT_INGEST_ENABLED: this.flags.mqtt }
  }

  async run() {
    const ctx = await this.context({ createEmbedded: true })
    const runtime = await createServeRuntime(ctx, { auth: createHttpAuth })
    const receivers = ctx.config.features.mqttIngest ? startMqttReceivers(runtime, ctx.config, { command: 'serve', topics: serveTopics(ctx.config) }) : undefined
    const served: MqttAwareRuntime = { ...runtime, mqtt: receivers?.stats }
    const server = await startHttpServer(served, { host: ctx.config.http.host, port: ctx.config.http.port })
    ctx.logger.info({ url: server.url, iot: `${ctx.iot.engine} ${ctx.iot.target}`, universal: `${ctx.universal.engine} ${ctx.universal.target}`, mqtt: receivers !== undefined }, 'listening')
    const signal = await untilSignal()
    ctx.logger.info({ signal }, 'shutting down')
    // The receivers first: they stop taking messages and ack what commits before the runtime closes.
    await receivers?.stop(Math.max(1000, ctx.config.http.shutdownTimeoutSeconds * 500))
    const { graceful } = await server.close()
    if (!graceful) {
      // The drain missed SHUTDOWN_TIMEOUT_SECONDS: release what can be released quickly, then exit 1.
      this.releaseTimeoutMs = 500
      this.exit(1)
    }
    return { url: server.url, signal, graceful }
  }
}
