import { randomBytes } from 'node:crypto'
import { join } from 'node:path'

import BetterSqlite3 from 'better-sqlite3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { openLocalDlq } from '../../src/lib/adapters/dlq/local.js'
import { openRedisDlq } from '../../src/lib/adapters/dlq/redis.js'
import { createRedisClient } from '../../src/lib/adapters/redis/client.js'
import { systemClock } from '../../src/lib/ports/clock.js'
import type { DeadLetterEntry, DeadLetterInput, DlqStats, ReplayableReading } from '../../src/lib/ports/dead-letter-queue.js'
import { json, ROOT, runCli } from '../helpers/cli.js'
import { createTestDatabase, postgresAvailable, redisAvailable, REDIS_URL, tempDir } from '../helpers/services.js'

const demo = join(ROOT, 'fixtures/demo.yaml')
const SENSOR_UUID = '8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d'

interface ListJson {
  backend: string
  count: number
  entries: DeadLetterEntry[]
}

describe('dlq list, show, stats, purge and replay through the CLI (local DLQ)', () => {
  const dir = tempDir()
  const dataDir = join(dir.path, 'data')
  const env = { INGEST_DATA_DIR: dataDir }
  let sensorId = 0
  afterAll(() => dir.remove())

  /** Seeds entries by opening the DLQ file directly, as the ingest path would. */
  async function seed(entries: DeadLetterInput[]): Promise<string[]> {
    const dlq = await openLocalDlq({ dataDir, maxLen: 10_000, clock: systemClock })
    try {
      return await dlq.add(entries)
    } finally {
      await dlq.close()
    }
  }

  function query<T>(sql: string, ...params: unknown[]): T[] {
    const db = new BetterSqlite3(join(dataDir, 'ingest.db'), { readonly: true })
    try {
      return db.prepare(sql).all(...params) as T[]
    } finally {
      db.close()
    }
  }

  // As the ingest path dead-letters a reading: with the legacy-shaped dedup key it computed.
  const reading = (value: number, deviceTime: number): ReplayableReading => ({ kind: 'reading', sensorId, value, deviceTime, ingestTime: deviceTime + 50, dedupKey: `${sensorId}:${(deviceTime / 1000).toFixed(6)}:${value.toFixed(6)}`, sequence: null, transport: 'mqtt', backfill: false, alerts: false })
  const dead = (over: Partial<DeadLetterInput>): DeadLetterInput => ({ transport: 'http', stage: 'store', errorClass: 'outage', error: 'connection refused', payload: null, sensorId, ...over })

  beforeAll(async () => {
    expect((await runCli(['db', 'migrate'], { env })).code).toBe(0)
    expect((await runCli(['apply', demo], { env })).code).toBe(0)
    sensorId = query<{ id: number }>('SELECT id FROM sensors WHERE sensor_uuid = ?', SENSOR_UUID)[0]?.id ?? 0
    expect(sensorId).toBeGreaterThan(0)
  })

  it('refuses a missing DLQ file with a message naming its path (exit 2)', async () => {
    const r = await runCli(['dlq', 'stats'], { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(join(dataDir, 'dlq.db'))
  })

  it('list --json returns every entry with its full payload, oldest first; filters narrow it', async () => {
    const ids = await seed([
      dead({ payload: reading(21.5, Date.now() - 60_000), msgId: 'm-1' }),
      dead({ transport: 'mqtt', stage: 'parse', errorClass: 'invalid_json', error: '=HYPERLINK("http://evil","x")', payload: { kind: 'bytes', encoding: 'base64', data: 'e30s' }, sensorId: null }),
      dead({ errorClass: 'constraint', error: 'check violated, "value"\nsecond line', payload: { big: 'é'.repeat(5000) } }),
    ])
    const r = await runCli(['dlq', 'list', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const list = json<ListJson>(r)
    expect(list.backend).toBe('local')
    expect(list.entries.map((e) => e.entryId)).toEqual(ids)
    expect(list.entries[0]).toMatchObject({ sensorId, msgId: 'm-1', status: 'pending', attempts: 0, stage: 'store', errorClass: 'outage' })
    expect(list.entries[2]?.payload).toEqual({ big: 'é'.repeat(5000) })
    const parse = json<ListJson>(await runCli(['dlq', 'list', '--stage', 'parse', '--json'], { env }))
    expect(parse.entries.map((e) => e.entryId)).toEqual([ids[1]])
    const limited = json<ListJson>(await runCli(['dlq', 'list', '--since', '1h', '--error-class', 'outage', '--limit', '1', '--json'], { env }))
    expect(limited.entries.map((e) => e.entryId)).toEqual([ids[0]])
    expect(json<ListJson>(await runCli(['dlq', 'list', '--until', '1h', '--json'], { env })).count).toBe(0)
    const bad = await runCli(['dlq', 'list', '--since', 'last tuesday'], { env })
    expect(bad.code).toBe(2)
  })

  it('list --csv prints RFC 4180 CSV with formula cells escaped', async () => {
    const r = await runCli(['dlq', 'list', '--csv'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout.startsWith('entry_id,status,attempts,first_failed_at,last_failed_at,transport,stage,error_class,error,sensor_id,series_id,msg_id,payload\r\n')).toBe(true)
    expect(r.stdout).toContain(`,"'=HYPERLINK(""http://evil"",""x"")",`)
    expect(r.stdout).toContain('"check violated, ""value""\nsecond line"')
    expect(r.stdout.endsWith('\r\n')).toBe(true)
    expect(r.stdout.split('\r\n').filter((l) => l.length > 0)).toHaveLength(4)
    // --json wins over --csv.
    expect(json<ListJson>(await runCli(['dlq', 'list', '--csv', '--json'], { env })).count).toBe(3)
  })

  it('show prints one entry; an unknown id is not found (exit 1)', async () => {
    const [first] = json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).entries
    const r = await runCli(['dlq', 'show', first?.entryId ?? '', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toEqual(first)
    const human = await runCli(['dlq', 'show', first?.entryId ?? ''], { env })
    expect(human.stdout).toContain(`entry       ${first?.entryId}`)
    const missing = await runCli(['dlq', 'show', '01ZZZZZZZZZZZZZZZZZZZZZZZZ', '--json'], { env })
    expect(missing.code).toBe(1)
    expect(json<{ error: { code: string } }>(missing).error.code).toBe('NOT_FOUND')
  })

  it('stats --json', async () => {
    const r = await runCli(['dlq', 'stats', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(json<DlqStats>(r)).toMatchObject({ backend: 'local', depth: 3, pending: 3, parked: 0, capacity: 10000, byStage: { store: 2, parse: 1 }, byErrorClass: { outage: 1, invalid_json: 1, constraint: 1 } })
    const human = await runCli(['dlq', 'stats'], { env })
    expect(human.stdout).toContain('local DLQ: 3 of 10000 (3 pending, 0 parked)')
  })

  it('purge refuses without --yes (exit 2) and deletes nothing', async () => {
    const r = await runCli(['dlq', 'purge', '--error-class', 'constraint'], { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/--yes/)
    expect(json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).count).toBe(3)
  })

  it('purge --yes with a filter deletes only the matched entries, and records a job run and an audit row', async () => {
    const before = json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).entries
    const r = await runCli(['dlq', 'purge', '--error-class', 'constraint', '--yes', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const purged = json<{ purged: number; jobRunId: number; filter: unknown }>(r)
    expect(purged).toMatchObject({ purged: 1, filter: { errorClass: 'constraint' } })
    const after = json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).entries
    expect(after).toEqual(before.filter((e) => e.errorClass !== 'constraint'))
    const runs = query<{ job: string; status: string; counts: string; ended_at: string | null }>('SELECT job, status, counts, ended_at FROM job_runs WHERE id = ?', purged.jobRunId)
    expect(runs).toHaveLength(1)
    expect(runs[0]).toMatchObject({ job: 'dlq purge', status: 'succeeded' })
    expect(JSON.parse(runs[0]?.counts ?? '{}')).toEqual({ purged: 1 })
    expect(runs[0]?.ended_at).not.toBeNull()
    const audit = query<{ event_type: string; outcome: string; actor_type: string; details: string }>("SELECT event_type, outcome, actor_type, details FROM security_audit_log WHERE event_type = 'dlq.purge'")
    expect(audit).toHaveLength(1)
    expect(audit[0]).toMatchObject({ outcome: 'success', actor_type: 'cli' })
    expect(JSON.parse(audit[0]?.details ?? '{}')).toMatchObject({ purged: 1, filter: { errorClass: 'constraint' }, job_run_id: purged.jobRunId })
  })

  it('replay --dry-run changes nothing; replay stores once, skips raw messages, and a second replay finds nothing to do', async () => {
    const t = Date.now() - 120_000
    await seed([dead({ payload: reading(22.25, t) }), dead({ payload: reading(22.25, t) })])
    const before = json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).entries
    const runsBefore = query<{ n: number }>('SELECT COUNT(*) AS n FROM job_runs')[0]?.n
    const dry = await runCli(['dlq', 'replay', '--dry-run', '--json'], { env })
    expect(dry.code, dry.stderr).toBe(0)
    expect(json(dry)).toMatchObject({ dryRun: true, selected: 4, skipped: 1, stored: 0, jobRunId: null })
    expect(json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).entries).toEqual(before)
    expect(query<{ n: number }>('SELECT COUNT(*) AS n FROM job_runs')[0]?.n).toBe(runsBefore)
    expect(query<{ n: number }>('SELECT COUNT(*) AS n FROM sensor_readings')[0]?.n).toBe(0)

    const r = await runCli(['dlq', 'replay', '--rate', '100/s', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toMatchObject({ dryRun: false, selected: 4, stored: 2, duplicates: 1, failed: 0, skipped: 1 })
    expect(query<{ value: number; transport: string; dedup_key: string }>('SELECT value, transport, dedup_key FROM sensor_readings ORDER BY value')).toEqual([
      { value: 21.5, transport: 'mqtt', dedup_key: (before[0]?.payload as ReplayableReading).dedupKey },
      { value: 22.25, transport: 'mqtt', dedup_key: (before[3]?.payload as ReplayableReading).dedupKey },
    ])
    const left = json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).entries
    expect(left.map((e) => e.stage)).toEqual(['parse'])
    const again = await runCli(['dlq', 'replay', '--json'], { env })
    expect(json(again)).toMatchObject({ selected: 1, stored: 0, skipped: 1 })
    expect(query<{ n: number }>('SELECT COUNT(*) AS n FROM sensor_readings')[0]?.n).toBe(2)
    const audit = query<{ n: number }>("SELECT COUNT(*) AS n FROM security_audit_log WHERE event_type = 'dlq.replay'")[0]?.n
    expect(audit).toBe(2)
  })
})

const pgUp = await postgresAvailable()

describe.skipIf(!pgUp)('dlq purge and replay with PostgreSQL as the database (the DLQ stays a local file)', () => {
  const dir = tempDir()
  const dataDir = join(dir.path, 'data')
  let env: Record<string, string> = {}
  let drop = (): Promise<void> => Promise.resolve()
  let pool: pg.Pool | undefined

  beforeAll(async () => {
    const t = await createTestDatabase()
    drop = t.drop
    env = { INGEST_DATA_DIR: dataDir, DATABASE_URL: t.url }
    pool = new pg.Pool({ connectionString: t.url, max: 2 })
    expect((await runCli(['db', 'migrate'], { env })).code).toBe(0)
    expect((await runCli(['apply', demo], { env })).code).toBe(0)
  })

  afterAll(async () => {
    await pool?.end()
    await drop()
    dir.remove()
  })

  it('replay stores through PostgreSQL; purge and replay write job_runs and audit rows there', async () => {
    const { rows } = await (pool as pg.Pool).query<{ id: string }>('SELECT id FROM sensors WHERE sensor_uuid = $1', [SENSOR_UUID])
    const sensorId = Number(rows[0]?.id)
    const t = Date.now() - 60_000
    const r: ReplayableReading = { kind: 'reading', sensorId, value: 30.5, deviceTime: t, ingestTime: t + 10, dedupKey: `${sensorId}:${(t / 1000).toFixed(6)}:30.500000`, sequence: null, transport: 'http', backfill: false, alerts: false }
    const dlq = await openLocalDlq({ dataDir, maxLen: 100, clock: systemClock })
    await dlq.add([
      { transport: 'http', stage: 'store', errorClass: 'outage', error: 'down', payload: r, sensorId },
      { transport: 'http', stage: 'store', errorClass: 'outage', error: 'down', payload: r, sensorId },
      { transport: 'mqtt', stage: 'parse', errorClass: 'invalid_json', error: 'bad', payload: 'x{' },
    ])
    await dlq.close()
    const replay = await runCli(['dlq', 'replay', '--json'], { env })
    expect(replay.code, replay.stderr).toBe(0)
    expect(json(replay)).toMatchObject({ stored: 1, duplicates: 1, skipped: 1 })
    const purge = await runCli(['dlq', 'purge', '--stage', 'parse', '--yes', '--json'], { env })
    expect(purge.code, purge.stderr).toBe(0)
    expect(json(purge)).toMatchObject({ purged: 1 })
    const db = pool as pg.Pool
    expect((await db.query('SELECT value, dedup_key FROM sensor_readings')).rows).toEqual([{ value: 30.5, dedup_key: r.dedupKey }])
    const runs = (await db.query<{ job: string; status: string; counts: Record<string, number> }>('SELECT job, status, counts FROM job_runs ORDER BY id')).rows
    expect(runs).toEqual([
      { job: 'dlq replay', status: 'succeeded', counts: { selected: 3, stored: 1, duplicates: 1, failed: 0, parked: 0, skipped: 1 } },
      { job: 'dlq purge', status: 'succeeded', counts: { purged: 1 } },
    ])
    const audit = (await db.query<{ event_type: string; outcome: string }>("SELECT event_type, outcome FROM security_audit_log WHERE event_type LIKE 'dlq.%' ORDER BY id")).rows
    expect(audit).toEqual([
      { event_type: 'dlq.replay', outcome: 'success' },
      { event_type: 'dlq.purge', outcome: 'success' },
    ])
  })
})


const redisUp = await redisAvailable()

describe.skipIf(!redisUp)('dlq commands with DLQ_BACKEND=redis', () => {
  const dir = tempDir()
  const prefix = `ingest_t_${process.pid}_${randomBytes(4).toString('hex')}:`
  const env = { INGEST_DATA_DIR: join(dir.path, 'data'), DLQ_BACKEND: 'redis', REDIS_URL, REDIS_KEY_PREFIX: prefix }

  afterAll(async () => {
    const admin = createRedisClient(REDIS_URL, { keyPrefix: '', commandTimeoutMs: 5000 })
    await admin.connect()
    const keys = await admin.keys(`${prefix}*`)
    if (keys.length > 0) await admin.del(...keys)
    await admin.quit()
    dir.remove()
  })

  it('list, stats and purge work on the stream named by DLQ_STREAM_NAME (default dlq:ingest)', async () => {
    expect((await runCli(['db', 'migrate'], { env })).code).toBe(0)
    const client = createRedisClient(REDIS_URL, { keyPrefix: prefix })
    const dlq = await openRedisDlq({ client, maxLen: 10_000, ownsClient: true })
    const ids = await dlq.add([
      { transport: 'mqtt', stage: 'parse', errorClass: 'invalid_json', error: '@bad', payload: 'x{' },
      { transport: 'http', stage: 'store', errorClass: 'outage', error: 'down', payload: { a: 1 }, sensorId: 5 },
    ])
    await dlq.close()
    const list = json<ListJson>(await runCli(['dlq', 'list', '--json'], { env }))
    expect(list).toMatchObject({ backend: 'redis', count: 2 })
    expect(list.entries.map((e) => e.entryId)).toEqual(ids)
    expect(json<DlqStats>(await runCli(['dlq', 'stats', '--json'], { env }))).toMatchObject({ backend: 'redis', depth: 2, pending: 2 })
    const csv = await runCli(['dlq', 'list', '--csv'], { env })
    expect(csv.stdout).toContain(",'@bad,")
    const purge = await runCli(['dlq', 'purge', '--sensor-id', '5', '--yes', '--json'], { env })
    expect(purge.code, purge.stderr).toBe(0)
    expect(json(purge)).toMatchObject({ backend: 'redis', purged: 1 })
    expect(json<ListJson>(await runCli(['dlq', 'list', '--json'], { env })).entries.map((e) => e.entryId)).toEqual([ids[0]])
  })
})
