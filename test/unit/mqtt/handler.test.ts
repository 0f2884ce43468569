import { describe, expect, it } from 'vitest'

import type { BatchReceipt } from '../../../src/lib/app/ingest/ingest-service.js'
import type { IdReading } from '../../../src/lib/domain/ingest/readings.js'
import { UnavailableError } from '../../../src/lib/errors/index.js'
import { createLogger } from '../../../src/lib/log/index.js'
import { MessageHandler, ReceiverStoppedError } from '../../../src/lib/mqtt/handler.js'
import { MqttStats } from '../../../src/lib/mqtt/stats.js'
import type { Clock } from '../../../src/lib/ports/clock.js'
import { type DeadLetterInput, type DeadLetterQueue, DlqFullError } from '../../../src/lib/ports/dead-letter-queue.js'

const NOW = Date.parse('2026-12-04T12:00:00Z')
const payload = (o: unknown): Uint8Array => Buffer.from(JSON.stringify(o))
const good = payload({ sensorId: 7, value: 21.5, timestamp: '2026-12-04T11:59:00Z', msgId: 'a' })

/** A clock whose sleeps only count (backoff without waiting). */
class CountingClock implements Clock {
  sleeps: number[] = []
  now(): number {
    return NOW
  }
  sleep(ms: number): Promise<void> {
    this.sleeps.push(ms)
    return new Promise((resolve) => setImmediate(resolve))
  }
}

function receipt(status: 'stored' | 'duplicate' | 'rejected' | 'dead_lettered', code?: string): BatchReceipt {
  return { inserted: status === 'stored' ? 1 : 0, duplicates: 0, rejected: 0, dead_lettered: 0, receipts: [{ index: 0, status, ...(code ? { code } : {}) }] }
}

function setup(ingest: (r: readonly IdReading[]) => Promise<BatchReceipt>, dlqAdd: (e: readonly DeadLetterInput[]) => Promise<string[]> = (e) => Promise.resolve(e.map((_, i) => `id${i}`))) {
  const clock = new CountingClock()
  const entries: DeadLetterInput[] = []
  const dlq = {
    backend: 'local',
    add: async (e: readonly DeadLetterInput[]) => {
      const ids = await dlqAdd(e)
      entries.push(...e)
      return ids
    },
  } as unknown as DeadLetterQueue
  const stats = new MqttStats('b:1883', NOW)
  // Universal points: refused as outside the physical range (a poison the handler dead-letters replayable).
  const points = { ingestPoints: () => Promise.resolve({ inserted: 0, rejected: 1, duplicates: 0, dead_lettered: 0, results: [{ stream_id: 'b', status: 'rejected' as const, reason: 'Value 1 below physical minimum 30' }], receipts: [{ index: 0, status: 'rejected' as const, code: 'VALUE_OUTSIDE_PHYSICAL_LIMITS' }] }) }
  const handler = new MessageHandler({ ingest: { ingestById: (r) => ingest(r) }, points, dlq, clock, logger: createLogger({ level: 'silent' }) }, stats, { topicPrefix: 'p', maxPayloadBytes: 10_000, maxJsonDepth: 16 })
  return { handler, stats, entries, clock }
}

describe('MessageHandler: a message settles only when durable', () => {
  it('hands a reading to ingestById with its device time, msgId and receive time, and settles on stored', async () => {
    const seen: IdReading[] = []
    const { handler, stats } = setup((r) => {
      seen.push(...r)
      return Promise.resolve(receipt('stored'))
    })
    await expect(handler.handle('p/iot/sensors/7/readings', good)).resolves.toBe('stored')
    expect(seen).toEqual([{ sensorId: 7, value: 21.5, timestamp: Date.parse('2026-12-04T11:59:00Z'), deviceTsSeconds: Date.parse('2026-12-04T11:59:00Z') / 1000, sequence: null, msgId: 'a', ingestTime: NOW }])
    expect(stats.stored).toBe(1)
  })

  it('waits through outage errors (queue full, breaker open) with backoff and settles only once committed; never a dead letter', async () => {
    let calls = 0
    const { handler, stats, entries, clock } = setup(() => {
      calls++
      if (calls === 1) return Promise.reject(new UnavailableError('queue full', { code: 'QUEUE_FULL' }))
      if (calls === 2) return Promise.reject(new UnavailableError('breaker open', { code: 'BREAKER_OPEN' }))
      return Promise.resolve(receipt('duplicate'))
    })
    await expect(handler.handle('p/iot/sensors/7/readings', good)).resolves.toBe('duplicate')
    expect(calls).toBe(3)
    expect(clock.sleeps).toHaveLength(2)
    expect(stats.retries).toBe(2)
    expect(entries).toEqual([])
  })

  it('a stop while waiting leaves the message unsettled (no ack): it rejects with ReceiverStoppedError', async () => {
    const { handler } = setup(() => Promise.reject(new UnavailableError('store down')))
    const pending = handler.handle('p/iot/sensors/7/readings', good)
    await new Promise((r) => setTimeout(r, 20))
    handler.stop()
    await expect(pending).rejects.toBeInstanceOf(ReceiverStoppedError)
  })

  it('poison is dead-lettered once with its reason, then settles; a full DLQ is waited for, not skipped', async () => {
    let dlqCalls = 0
    const { handler, stats, entries } = setup(
      () => Promise.resolve(receipt('rejected', 'TIMESTAMP_TOO_OLD')),
      (e) => (++dlqCalls === 1 ? Promise.reject(new DlqFullError(10)) : Promise.resolve(e.map(() => 'x'))),
    )
    await expect(handler.handle('p/iot/sensors/7/readings', Buffer.from('nope'))).resolves.toBe('dead_lettered')
    await expect(handler.handle('p/iot/sensors/8/readings', good)).resolves.toBe('dead_lettered')
    await expect(handler.handle('p/iot/sensors/7/readings', payload({ sensorId: 7 }))).resolves.toBe('dead_lettered')
    await expect(handler.handle('p/iot/sensors/7/readings', good)).resolves.toBe('dead_lettered')
    await expect(handler.handle('p/IoT/a/b/data', payload({ value: 1 }))).resolves.toBe('dead_lettered')
    await expect(handler.handle('p/health/a/b/data', payload({ value: 1 }))).resolves.toBe('dead_lettered')
    expect(dlqCalls).toBe(7)
    expect(entries.map((e) => [e.stage, e.errorClass])).toEqual([
      ['parse', 'invalid_json'],
      ['ownership', 'ownership_denied'],
      ['validation', 'validation_error'],
      ['validation', 'TIMESTAMP_TOO_OLD'],
      ['validation', 'invalid_domain'],
      ['validation', 'VALUE_OUTSIDE_PHYSICAL_LIMITS'],
    ])
    expect(entries[5]?.payload).toMatchObject({ kind: 'point', domain: 'health', sourceId: 'a', streamId: 'b', value: 1, transport: 'mqtt' })
    expect(entries[5]?.seriesId).toBe('health:a:b')
    // The guard-rejected reading is kept replayable, with its dedup key.
    expect(entries[3]?.payload).toMatchObject({ kind: 'reading', sensorId: 7, value: 21.5, dedupKey: 'a', ingestTime: NOW, transport: 'mqtt' })
    expect(entries[0]?.payload).toEqual({ topic: 'p/iot/sensors/7/readings', text: 'nope' })
    expect(stats.deadLettered).toBe(6)
  })
})
