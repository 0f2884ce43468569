import { Counter, Gauge, type Registry } from 'prom-client'

/** What happened to one message (each one ends in exactly one of these, or is left unacked by a shutdown). */
export type MessageOutcome = 'stored' | 'duplicate' | 'dead_lettered'

/**
 * The receivers' counters (reference §1.7 fields plus duplicates, dead_lettered, in_flight and
 * connections), read by `/mqtt/health`, `/mqtt/stats`, `/metrics` and the periodic log line.
 */
export class MqttStats {
  received = 0
  stored = 0
  duplicates = 0
  deadLettered = 0
  /** Retries of a message after an outage-class error (the message waits, unacked). */
  retries = 0
  /** Redeliveries seen (DUP flag): messages the broker sent again after a lost PUBACK. */
  redelivered = 0
  inFlight = 0
  /** Messages made durable after their connection was lost: not acked there (the broker resends them). */
  staleAcks = 0
  connected = 0
  connections = 0
  running = false
  /** Epoch ms of the last message, 0 before the first. */
  lastMessageAt = 0
  readonly startedAt: number
  private readonly byOutcome: Counter<'outcome'> | undefined
  /** Dead letters by reason (`invalid_json`, `validation_error`, `ownership_denied`, a guard code, ...). */
  readonly deadLetteredBy = new Map<string, number>()

  constructor(
    readonly broker: string,
    now: number,
    registry?: Registry,
  ) {
    this.startedAt = now
    if (registry) {
      // One set of receivers per process reports; a later one (tests restart them in process) takes the names over.
      for (const name of ['ingest_mqtt_messages_total', 'ingest_mqtt_in_flight', 'ingest_mqtt_connections', 'ingest_mqtt_received', 'ingest_mqtt_retries']) registry.removeSingleMetric(name)
      this.byOutcome = new Counter({ name: 'ingest_mqtt_messages_total', help: 'MQTT messages acked, by outcome (stored, duplicate, dead_lettered)', labelNames: ['outcome'], registers: [registry] })
      const gauge = (name: string, help: string, read: () => number): void => {
        const g: Gauge = new Gauge({ name, help, registers: [registry], collect: () => g.set(read()) })
      }
      gauge('ingest_mqtt_in_flight', 'MQTT messages received and not yet acked', () => this.inFlight)
      gauge('ingest_mqtt_connections', 'MQTT connections open to the broker', () => this.connected)
      gauge('ingest_mqtt_received', 'MQTT messages received since start (redeliveries included)', () => this.received)
      gauge('ingest_mqtt_retries', 'MQTT message retries after an outage-class error since start', () => this.retries)
    }
  }

  /** Whether the stores answer (the IoT breaker is not open) and Redis is up (null: not configured). */
  probes: { db(): boolean; redis(): boolean | null } = { db: () => true, redis: () => null }

  settle(outcome: MessageOutcome, reason?: string): void {
    if (outcome === 'stored') this.stored++
    else if (outcome === 'duplicate') this.duplicates++
    else {
      this.deadLettered++
      if (reason !== undefined) this.deadLetteredBy.set(reason, (this.deadLetteredBy.get(reason) ?? 0) + 1)
    }
    this.byOutcome?.inc({ outcome })
  }

  /** Acked messages: stored, duplicates and dead letters. */
  get processed(): number {
    return this.stored + this.duplicates + this.deadLettered
  }

  /** `/mqtt/health` (reference §1.7): healthy = running and every connection up. */
  health(): Record<string, unknown> {
    const connected = this.allConnected()
    return {
      enabled: true,
      type: 'shared_receiver',
      health: { healthy: connected && this.probes.db(), running: this.running, connected, db: this.probes.db(), redis: this.probes.redis(), processed: this.processed, failed: this.deadLettered, async: false, in_flight: this.inFlight, connections: { open: this.connected, configured: this.connections } },
    }
  }

  /** `/mqtt/stats` (reference §1.7 fields plus duplicates, dead_lettered, in_flight, connections). */
  snapshot(): Record<string, unknown> {
    return {
      enabled: true,
      type: 'shared_receiver',
      stats: {
        running: this.running,
        connected: this.allConnected(),
        broker: this.broker,
        received: this.received,
        processed: this.processed,
        failed: this.deadLettered,
        stored: this.stored,
        duplicates: this.duplicates,
        dead_lettered: this.deadLettered,
        dead_lettered_by_reason: Object.fromEntries(this.deadLetteredBy),
        retries: this.retries,
        redelivered: this.redelivered,
        stale_acks: this.staleAcks,
        in_flight: this.inFlight,
        connections: this.connected,
        connections_configured: this.connections,
        last_message_at: this.lastMessageAt / 1000,
        db: this.probes.db(),
        redis: this.probes.redis(),
        async: false,
      },
    }
  }

  private allConnected(): boolean {
    return this.running && this.connections > 0 && this.connected === this.connections
  }

  /** The periodic one-line summary's fields. */
  summary(): { received: number; stored: number; duplicates: number; dead_lettered: number; retries: number; in_flight: number; connections: number } {
    return { received: this.received, stored: this.stored, duplicates: this.duplicates, dead_lettered: this.deadLettered, retries: this.retries, in_flight: this.inFlight, connections: this.connected }
  }
}
