import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'

import mqtt, { type IClientOptions, type IConnackPacket, type IPublishPacket, type MqttClient } from 'mqtt'
import type { Registry } from 'prom-client'

import { MessageHandler, type HandlerRuntime, ReceiverStoppedError } from './handler.js'
import { MqttStats } from './stats.js'
import { isPlainGroup, subscriptionFilters, type TopicKind } from './topics.js'

/** One connection's state as its messages see it: a PUBACK belongs to the connection that delivered the message. */
interface Link {
  /** CONNACKs so far: a new value means a new network connection. */
  generation: number
  up: boolean
}

export interface ReceiverOptions {
  /** Broker URL: mqtt://, mqtts://, ws://, wss://. */
  url: string
  username?: string | undefined
  password?: string | undefined
  /** PEM CA file for mqtts:// brokers with a private CA. */
  caFile?: string | undefined
  /** Client id prefix; connection i is `<prefix>-<i>`. Default `ingest-<host>-<command>`. */
  clientId?: string | undefined
  /** What runs the receivers (`mqtt-listen`, `serve`): part of the default client id. */
  command: string
  connections: number
  /** Shared-subscription group; `none`: plain filters, one connection (the config enforces it). */
  group: string
  topicPrefix: string
  topics: readonly TopicKind[]
  keepaliveSeconds: number
  maxPayloadBytes: number
  maxJsonDepth: number
  /** Period of the one-line stats summary in the log (0 = off). */
  statsLogIntervalMs: number
  reconnectMinMs?: number
  reconnectMaxMs?: number
  retryBaseMs?: number
  retryMaxMs?: number
}

/** The ingest runtime as the receivers use it, plus the registry their metrics join and the store probes. */
export interface ReceiverRuntime extends HandlerRuntime {
  readonly metrics?: { readonly registry: Registry }
  readonly breakers?: { readonly iot: { readonly current: string } }
  readonly redis?: { readonly status: string } | undefined
}

/** The broker address without credentials, for stats and logs. */
export function brokerLabel(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || (u.protocol === 'mqtts:' ? '8883' : '1883')}`
  } catch {
    return 'unknown'
  }
}

/** `ingest-<host>-<command>` (host names may hold characters some brokers refuse in client ids). */
export function defaultClientId(command: string): string {
  return `ingest-${hostname().replace(/[^A-Za-z0-9_.-]/g, '_')}-${command}`
}

/**
 * The MQTT receivers (DESIGN §10): `connections` mqtt.js clients with stable ids in one shared
 * subscription group (or one client with plain filters, group `none`), persistent sessions (MQTT 3.1.1, clean: false), QoS 1, the PUBACK of each
 * message sent only after its reading is committed or dead-lettered. mqtt.js hands a connection's
 * QoS 1 messages to `handleMessage` one at a time and sends the PUBACK when its callback is called;
 * the callback is called only once the message is durable, so in-flight work is bounded by the
 * connection count, and the ingest runtime group-commits across connections.
 */
export class MqttReceivers {
  readonly stats: MqttStats
  private readonly handler: MessageHandler
  private readonly clients: MqttClient[] = []
  private readonly inFlight = new Set<Promise<unknown>>()
  private stopping = false
  private summaryTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly rt: ReceiverRuntime,
    private readonly options: ReceiverOptions,
  ) {
    // Plain filters are delivered in full to every connection: several would each handle every message.
    if (isPlainGroup(options.group) && options.connections !== 1) throw new Error(`the group "${options.group}" (plain subscriptions) takes one connection, not ${options.connections}`)
    this.stats = new MqttStats(brokerLabel(options.url), rt.clock.now(), rt.metrics?.registry)
    this.stats.connections = options.connections
    const breaker = rt.breakers?.iot
    const redis = rt.redis
    this.stats.probes = { db: () => breaker?.current !== 'open', redis: () => (redis ? redis.status === 'ready' : null) }
    this.handler = new MessageHandler(rt, this.stats, {
      topicPrefix: options.topicPrefix,
      maxPayloadBytes: options.maxPayloadBytes,
      maxJsonDepth: options.maxJsonDepth,
      ...(options.retryBaseMs === undefined ? {} : { retryBaseMs: options.retryBaseMs }),
      ...(options.retryMaxMs === undefined ? {} : { retryMaxMs: options.retryMaxMs }),
    })
  }

  get filters(): string[] {
    return subscriptionFilters(this.options.topics, { prefix: this.options.topicPrefix, group: this.options.group })
  }

  /**
   * Opens every connection and returns at once: a broker that is down is retried with backoff for as
   * long as the process runs (never an exit); `/mqtt/health` says disconnected meanwhile.
   */
  start(): void {
    this.stats.running = true
    const prefix = this.options.clientId ?? defaultClientId(this.options.command)
    const ca = this.options.caFile === undefined ? undefined : readFileSync(this.options.caFile)
    for (let i = 0; i < this.options.connections; i++) this.clients.push(this.open(`${prefix}-${i}`, ca))
    const every = this.options.statsLogIntervalMs
    if (every > 0) {
      this.summaryTimer = setInterval(() => this.rt.logger.info({ mqtt: this.stats.summary() }, 'mqtt stats'), every)
      this.summaryTimer.unref()
    }
    this.rt.logger.info({ broker: this.stats.broker, clientIdPrefix: prefix, connections: this.options.connections, shared: !isPlainGroup(this.options.group), filters: this.filters }, 'mqtt receivers starting')
  }

  private open(clientId: string, ca: Buffer | undefined): MqttClient {
    const minDelay = this.options.reconnectMinMs ?? 500
    // A short cap: a broker back after an outage is reached within seconds (the first message stored soon after).
    const maxDelay = this.options.reconnectMaxMs ?? 4000
    const options: IClientOptions = {
      clientId,
      protocolVersion: 4,
      clean: false,
      keepalive: this.options.keepaliveSeconds,
      reconnectPeriod: minDelay,
      connectTimeout: 10_000,
      // Subscriptions are made by us on every CONNACK (below), not replayed by mqtt.js.
      resubscribe: false,
      // The handler must be in place before CONNECT, or messages queued in the session are acked unread.
      manualConnect: true,
      ...(this.options.username !== undefined && this.options.password !== undefined ? { username: this.options.username, password: this.options.password } : {}),
      ...(ca ? { ca, rejectUnauthorized: true } : {}),
    }
    const client = mqtt.connect(this.options.url, options)
    let connected = false
    const link: Link = { generation: 0, up: false }
    client.handleMessage = (packet: IPublishPacket, done: (err?: Error) => void) => this.onMessage(packet, done, link)
    client.on('connect', (connack: IConnackPacket) => {
      connected = true
      failing = false
      link.generation++
      link.up = true
      this.stats.connected++
      client.options.reconnectPeriod = minDelay
      this.rt.logger.info({ clientId, sessionPresent: connack.sessionPresent }, 'mqtt connected')
      // Subscribed on every CONNACK, not only when the session is gone (sessionPresent false): Mosquitto
      // 2.0.11 restores a persistent session after a restart without its $share subscriptions, so
      // sessionPresent true does not mean the subscriptions exist (its plain ones it keeps: group `none`).
      // Subscribing again is idempotent.
      this.subscribe(client, clientId)
    })
    client.on('close', () => {
      link.up = false
      if (connected) {
        connected = false
        this.stats.connected--
        if (!this.stopping) this.rt.logger.warn({ clientId }, 'mqtt connection lost; reconnecting')
      }
      // Exponential backoff between attempts (mqtt.js reads the period each time it schedules one).
      client.options.reconnectPeriod = Math.min(maxDelay, Math.max(minDelay, (client.options.reconnectPeriod ?? minDelay) * 2))
    })
    // One warning per outage, not one per reconnect attempt of every connection.
    let failing = false
    client.on('error', (err) => {
      if (this.stopping) return
      if (failing) this.rt.logger.debug({ clientId, err: err.message }, 'mqtt client error')
      else this.rt.logger.warn({ clientId, err: err.message }, 'mqtt client error; retrying with backoff')
      failing = true
    })
    client.connect()
    return client
  }

  private subscribe(client: MqttClient, clientId: string): void {
    client.subscribe(this.filters, { qos: 1 }, (err, granted) => {
      if (err) {
        // Usually a connection lost mid-SUBSCRIBE: the next CONNACK without a session subscribes again.
        this.rt.logger.warn({ clientId, err: err.message }, 'mqtt subscribe failed')
        return
      }
      const refused = (granted ?? []).filter((g) => g.qos === 128)
      if (refused.length > 0) this.rt.logger.error({ clientId, refused: refused.map((g) => g.topic) }, 'mqtt subscription refused by the broker (ACL?)')
      else this.rt.logger.debug({ clientId, filters: this.filters }, 'mqtt subscribed')
    })
  }

  private onMessage(packet: IPublishPacket, done: (err?: Error) => void, link: Link): void {
    if (this.stopping) {
      // Shutting down: not taken, not acked (the broker keeps it in the session and redelivers it).
      return
    }
    this.stats.received++
    this.stats.inFlight++
    if (packet.dup) this.stats.redelivered++
    this.stats.lastMessageAt = this.rt.clock.now()
    const payload = typeof packet.payload === 'string' ? Buffer.from(packet.payload) : packet.payload
    const generation = link.generation
    const work = this.handler.handle(packet.topic, payload).then(
      () => {
        // Durable (committed or dead-lettered): now the PUBACK, but only on the connection that delivered
        // it. After a reconnect the broker resends the message itself (same packet id, DUP) and a late
        // PUBACK could ack another message that reuses the id; the resent copy is found a duplicate and acked.
        if (link.up && link.generation === generation) done()
        else this.stats.staleAcks++
      },
      (err: unknown) => {
        // Stopped while waiting for a retry: no PUBACK, the broker redelivers after the restart.
        if (!(err instanceof ReceiverStoppedError)) this.rt.logger.error({ err, topic: packet.topic }, 'mqtt message handling failed; left unacked')
      },
    )
    const tracked = work.finally(() => {
      this.stats.inFlight--
      this.inFlight.delete(tracked)
    })
    this.inFlight.add(tracked)
  }

  /**
   * Graceful stop (SIGTERM): no new message is taken, messages under commit finish and are acked,
   * messages waiting on an outage are left unacked (redelivered later); then every connection sends
   * DISCONNECT. Resolves within `timeoutMs` whatever happens.
   */
  async stop(timeoutMs = 20_000): Promise<{ unacked: number }> {
    if (this.stopping) return { unacked: this.stats.inFlight }
    this.stopping = true
    clearInterval(this.summaryTimer)
    const deadline = new Promise<void>((resolve) => setTimeout(resolve, timeoutMs).unref())
    // Commits under way get the time they need; retries of an outage give up at once.
    const drained = Promise.allSettled([...this.inFlight])
    this.handler.stop()
    await Promise.race([drained, deadline])
    const unacked = this.stats.inFlight
    await Promise.race([Promise.allSettled(this.clients.map((c) => c.endAsync(false))), deadline])
    for (const c of this.clients) if (!c.disconnected) c.end(true)
    this.stats.running = false
    this.rt.logger.info({ mqtt: this.stats.summary(), unacked }, 'mqtt receivers stopped')
    return { unacked }
  }
}
