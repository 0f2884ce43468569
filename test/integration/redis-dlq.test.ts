import { randomBytes } from 'node:crypto'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openRedisDlq } from '../../src/lib/adapters/dlq/redis.js'
import { createRedisClient, type RedisClient } from '../../src/lib/adapters/redis/client.js'
import { UnavailableError } from '../../src/lib/errors/index.js'
import { type DeadLetterInput, type DeadLetterQueue, DlqFullError } from '../../src/lib/ports/dead-letter-queue.js'
import { redisAvailable, REDIS_URL } from '../helpers/services.js'


const redisUp = await redisAvailable()

const PREFIX = `ingest_t_${process.pid}_${randomBytes(4).toString('hex')}:`
const T0 = Date.parse('2026-11-26T12:00:00.000Z')

function fields(flat: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) out[flat[i] ?? ''] = flat[i + 1] ?? ''
  return out
}

const input = (over: Partial<DeadLetterInput> = {}): DeadLetterInput => ({
  transport: 'mqtt',
  stage: 'store',
  errorClass: 'constraint',
  error: 'value out of range',
  payload: { kind: 'reading', sensorId: 12, value: 1e300, deviceTime: T0, ingestTime: T0, dedupKey: 'k', sequence: null, transport: 'mqtt', backfill: false, alerts: false },
  sensorId: 12,
  msgId: 'msg-1',
  ...over,
})

describe.skipIf(!redisUp)('the redis DLQ on a real server', () => {
  let admin: RedisClient
  const opened: DeadLetterQueue[] = []
  let n = 0
  const clock = { t: T0, now: () => clock.t, sleep: (ms: number) => ((clock.t += ms), Promise.resolve()) }

  /** A DLQ on its own stream; `admin` sees it at PREFIX + stream. */
  async function open(maxLen = 1000, stream = `dlq:ingest:${n++}`): Promise<{ dlq: DeadLetterQueue; stream: string }> {
    const client = createRedisClient(REDIS_URL, { keyPrefix: PREFIX, commandTimeoutMs: 5000 })
    const dlq = await openRedisDlq({ client, streamName: stream, maxLen, clock, ownsClient: true })
    opened.push(dlq)
    return { dlq, stream: PREFIX + stream }
  }

  beforeAll(async () => {
    admin = createRedisClient(REDIS_URL, { keyPrefix: '', commandTimeoutMs: 5000 })
    await admin.connect()
  })

  afterAll(async () => {
    for (const d of opened) await d.close()
    let cursor = '0'
    do {
      const [next, keys] = await admin.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000)
      if (keys.length > 0) await admin.del(...keys)
      cursor = next
    } while (cursor !== '0')
    await admin.quit()
  })

  it('writes the legacy stream fields (reference §10.3) plus entry_id, stage, attempts, status, failure times and series', async () => {
    const { dlq, stream } = await open()
    const [id] = await dlq.add([input({ seriesId: 'health:ward-3:bpm' })])
    const raw = await admin.xrange(stream, '-', '+')
    expect(raw).toHaveLength(1)
    const f = fields(raw[0]?.[1] ?? [])
    expect(f).toEqual({
      payload: JSON.stringify(input().payload),
      error: 'value out of range',
      error_type: 'constraint',
      source: 'mqtt',
      timestamp: String(T0 / 1000),
      created_at: new Date(T0).toISOString(),
      sensor_id: '12',
      msg_id: 'msg-1',
      entry_id: id,
      stage: 'store',
      attempts: '0',
      status: 'pending',
      first_failed_at: new Date(T0).toISOString(),
      last_failed_at: new Date(T0).toISOString(),
      series_id: 'health:ward-3:bpm',
    })
    // Optional legacy fields are omitted, not written empty.
    await dlq.add([input({ sensorId: null, msgId: null })])
    const second = fields((await admin.xrange(stream, '-', '+'))[1]?.[1] ?? [])
    expect(second).not.toHaveProperty('sensor_id')
    expect(second).not.toHaveProperty('msg_id')
    expect(second).not.toHaveProperty('series_id')
  })

  it('never trims: exactly maxLen entries are kept and the next is refused', async () => {
    const { dlq, stream } = await open(20)
    for (let i = 0; i < 4; i++) await dlq.add(Array.from({ length: 5 }, (_, j) => input({ msgId: `m${i * 5 + j}` })))
    await expect(dlq.add([input({ msgId: 'late' })])).rejects.toBeInstanceOf(DlqFullError)
    expect(await admin.xlen(stream)).toBe(20)
    const msgIds = (await dlq.list()).map((e) => e.msgId)
    expect(msgIds).toEqual(Array.from({ length: 20 }, (_, i) => `m${i}`))
  })

  it('the capacity check is atomic across replicas: concurrent adds never pass maxLen', async () => {
    const a = await open(50, 'dlq:shared')
    const b = await open(50, 'dlq:shared')
    const attempts = Array.from({ length: 100 }, (_, i) =>
      (i % 2 === 0 ? a.dlq : b.dlq).add([input({ msgId: `r${i}` })]).then(
        () => 'ok' as const,
        (err: unknown) => {
          if (err instanceof DlqFullError) return 'full' as const
          throw err
        },
      ),
    )
    const results = await Promise.all(attempts)
    expect(results.filter((r) => r === 'ok')).toHaveLength(50)
    expect(results.filter((r) => r === 'full')).toHaveLength(50)
    expect(await admin.xlen(a.stream)).toBe(50)
    expect((await b.dlq.stats()).depth).toBe(50)
  })

  it('a failed replay rewrites the entry: same entry_id, created_at, timestamp and first failure; the index follows', async () => {
    const { dlq, stream } = await open()
    const [id] = await dlq.add([input()])
    const entryId = id ?? ''
    const before = (await admin.xrange(stream, '-', '+'))[0]
    clock.t += 7_000
    await dlq.recordFailure(entryId, 'rejected: VALUE_OUTSIDE_PHYSICAL_LIMITS', clock.now(), 3)
    const after = await admin.xrange(stream, '-', '+')
    expect(after).toHaveLength(1)
    const [newStreamId, flat] = after[0] ?? ['', []]
    expect(newStreamId).not.toBe(before?.[0])
    const f = fields(flat)
    const b = fields(before?.[1] ?? [])
    expect(f).toMatchObject({ entry_id: entryId, created_at: b['created_at'], timestamp: b['timestamp'], first_failed_at: b['first_failed_at'], payload: b['payload'], attempts: '1', status: 'pending', error: 'rejected: VALUE_OUTSIDE_PHYSICAL_LIMITS', last_failed_at: new Date(clock.t).toISOString() })
    expect(await admin.hget(`${stream}:index`, entryId)).toBe(newStreamId)
    await dlq.remove([entryId])
    expect(await admin.xlen(stream)).toBe(0)
    expect(await admin.hlen(`${stream}:index`)).toBe(0)
  })

  it('entries written by the legacy service (no entry_id) are listed and can be shown, failed and removed', async () => {
    const { dlq, stream } = await open()
    const legacyId = await admin.xadd(stream, '*', 'payload', '{"sensorId": 12, "value": "oops"', 'error', 'sp failed', 'error_type', 'sp_error', 'source', 'mqtt_processor', 'timestamp', '1764158400.25', 'created_at', '2025-11-26T12:00:00.250000', 'sensor_id', '12', 'msg_id', 'abc')
    const [ours] = await dlq.add([input()])
    const list = await dlq.list()
    expect(list.map((e) => e.entryId)).toEqual([`legacy-${legacyId}`, ours])
    expect(list[0]).toEqual({
      entryId: `legacy-${legacyId}`,
      transport: 'mqtt_processor',
      stage: 'processing',
      errorClass: 'sp_error',
      error: 'sp failed',
      payload: '{"sensorId": 12, "value": "oops"',
      sensorId: 12,
      seriesId: null,
      msgId: 'abc',
      status: 'pending',
      attempts: 0,
      firstFailedAt: '2025-11-26T12:00:00.250Z',
      lastFailedAt: '2025-11-26T12:00:00.250Z',
    })
    expect(await dlq.get(`legacy-${legacyId}`)).toEqual(list[0])
    const failed = await dlq.recordFailure(`legacy-${legacyId}`, 'not a reading', clock.now(), 1)
    expect(failed).toMatchObject({ entryId: `legacy-${legacyId}`, attempts: 1, status: 'parked', firstFailedAt: '2025-11-26T12:00:00.250Z' })
    expect(await dlq.get(`legacy-${legacyId}`)).toEqual(failed)
    expect(await dlq.purge({ errorClass: 'sp_error' })).toBe(1)
    expect((await dlq.list()).map((e) => e.entryId)).toEqual([ours])
    expect(await admin.xlen(stream)).toBe(1)
  })

  it('an unreachable Redis fails fast with UnavailableError (REDIS_UNAVAILABLE)', async () => {
    const client = createRedisClient('redis://127.0.0.1:1', { keyPrefix: PREFIX, connectTimeoutMs: 500 })
    const started = Date.now()
    const err = await openRedisDlq({ client, maxLen: 10 }).catch((e: unknown) => e)
    client.disconnect()
    expect(err).toBeInstanceOf(UnavailableError)
    expect((err as UnavailableError).code).toBe('REDIS_UNAVAILABLE')
    expect(Date.now() - started).toBeLessThan(3000)
  })
})
