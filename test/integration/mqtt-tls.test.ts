import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { MqttReceivers, type ReceiverOptions } from '../../src/lib/mqtt/receivers.js'
import { FakeClock, type Harness, startHarness } from '../helpers/http-harness.js'
import { eventually, PrivateBroker, Publisher, readingMessage } from '../helpers/mosquitto.js'

class WallClock extends FakeClock {
  override now(): number {
    return Date.now()
  }
  override sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms))
  }
}

const PREFIX = `mqtt-tls-${process.pid}`

/** mqtts:// with MQTT_CA_FILE: the receivers trust a private CA only when told to. */
describe('MQTT receivers over TLS (private Mosquitto with a private CA)', () => {
  let h: Harness
  let broker: PrivateBroker
  const running: MqttReceivers[] = []

  const options = (clientId: string, caFile: string | undefined): ReceiverOptions => ({ url: broker.url, caFile, clientId, command: 'test', connections: 1, group: 'g', topicPrefix: PREFIX, topics: ['iot'], keepaliveSeconds: 30, maxPayloadBytes: 100_000, maxJsonDepth: 32, statsLogIntervalMs: 0, reconnectMinMs: 100 })

  beforeAll(async () => {
    broker = await PrivateBroker.create({ tls: true })
    h = await startHarness('sqlite', {}, new WallClock())
  })
  afterAll(async () => {
    for (const r of running) await r.stop(2000)
    await h?.close()
    await broker?.destroy()
  })

  it('connects to an mqtts:// broker with the CA file and stores its readings; without the CA the certificate is refused', async () => {
    expect(broker.url.startsWith('mqtts://')).toBe(true)
    const untrusted = new MqttReceivers(h.rt, options(`${PREFIX}-x`, undefined))
    running.push(untrusted)
    untrusted.start()
    const trusted = new MqttReceivers(h.rt, options(`${PREFIX}-c`, broker.caFile))
    running.push(trusted)
    trusted.start()
    await eventually('the trusted receiver to connect', () => trusted.stats.connected === 1, 10_000)
    await new Promise((r) => setTimeout(r, 300))
    const [row] = await h.sql('SELECT id FROM sensors ORDER BY id LIMIT 1')
    const publisher = await Publisher.connect(broker.url, `${PREFIX}-pub`, broker.caFile)
    await publisher.publishAll([readingMessage(PREFIX, Number(row?.['id']), 1, Date.now(), 'tls')])
    await publisher.close()
    await eventually('the reading to be stored', () => trusted.stats.stored === 1, 10_000)
    expect(untrusted.stats.connected).toBe(0)
    expect(untrusted.stats.health()).toMatchObject({ health: { connected: false } })
  })
})
