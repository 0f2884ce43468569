import type { Config } from '../config/index.js'
import { MqttReceivers, type ReceiverRuntime } from './receivers.js'
import type { TopicKind } from './topics.js'

export { MqttReceivers } from './receivers.js'
export { MqttStats } from './stats.js'
export { parseTopicKinds, type TopicKind } from './topics.js'

export interface StartReceiversOptions {
  /** `mqtt-listen` or `serve` (the default client id names it). */
  command: string
  topics: readonly TopicKind[]
  /** Flags over MQTT_SHARED_GROUP / MQTT_CONNECTIONS. */
  group?: string | undefined
  connections?: number | undefined
}

/**
 * Starts the MQTT receivers on an ingest runtime with the configured broker (DESIGN §10) and returns
 * them at once: the connections come up in the background and are retried for as long as it runs.
 * The caller stops them (`stop()`) before closing the runtime.
 */
export function startMqttReceivers(rt: ReceiverRuntime, config: Config, options: StartReceiversOptions): MqttReceivers {
  const m = config.mqtt
  const receivers = new MqttReceivers(rt, {
    url: m.url,
    username: m.username,
    password: m.password,
    caFile: m.caFile,
    clientId: m.clientId,
    command: options.command,
    connections: options.connections ?? m.connections,
    group: options.group ?? m.sharedGroup,
    topicPrefix: m.topicPrefix,
    topics: options.topics,
    keepaliveSeconds: m.keepaliveSeconds,
    maxPayloadBytes: config.http.bodyLimitBytes,
    maxJsonDepth: config.http.maxJsonDepth,
    statsLogIntervalMs: m.statsLogIntervalSeconds * 1000,
  })
  receivers.start()
  return receivers
}

/** The topics `serve --mqtt` subscribes to: IoT, plus universal with FF_MQTT_UNIVERSAL / FF_MQTT_MULTI_DOMAIN. */
export function serveTopics(config: Config): TopicKind[] {
  return config.features.mqttUniversal ? ['iot', 'universal'] : ['iot']
}
