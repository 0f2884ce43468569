import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { json, runCli } from '../helpers/cli.js'
import { createTestDatabase, postgresAvailable, type TestDatabase } from '../helpers/services.js'

/**
 * `ingest batch predict` and `ingest explain anomalies` as cron runs them (the built CLI, PostgreSQL):
 * two overlapping `--once` runs over 1 000 sensors write 1 000 predictions, usage errors exit 2, a run
 * whose explainer is down exits 0 reporting the rows skipped.
 */

const up = await postgresAvailable()
const SENSORS = 1000

interface PredictJson {
  sensors: number
  predictions: number
  events: number
  skipped: number
  failed: number
  jobRunId: number
}

describe.skipIf(!up)('batch predict and explain anomalies through the CLI (PostgreSQL)', () => {
  let t: TestDatabase
  let c: pg.Client
  let env: Record<string, string>
  let explainer: Server
  let explainerUrl = ''

  beforeAll(async () => {
    t = await createTestDatabase({ migrated: true })
    env = { DATABASE_URL: t.url }
    c = new pg.Client({ connectionString: t.url })
    await c.connect()
    await c.query(`INSERT INTO devices (device_uuid, name) VALUES (gen_random_uuid(), 'cron')`)
    await c.query(`INSERT INTO sensors (device_id, sensor_uuid, sensor_type, name) SELECT d.id, gen_random_uuid(), 'temperature', 's' || g FROM devices d, generate_series(1, ${SENSORS}) g`)
    // Flat, then a spike on every 100th sensor (an anomaly with score 1).
    await c.query(
      `INSERT INTO sensor_readings (sensor_id, value, "timestamp") SELECT s.id, CASE WHEN g = 1 AND s.id % 100 = 0 THEN 90 ELSE 20 END, now() - g * interval '1 minute' FROM sensors s, generate_series(1, 12) g`,
    )
    explainer = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ explanation: 'a spike', severity: 'HIGH' })))
    await new Promise<void>((resolve) => explainer.listen(0, '127.0.0.1', resolve))
    explainerUrl = `http://127.0.0.1:${(explainer.address() as AddressInfo).port}`
  }, 120_000)
  afterAll(async () => {
    await new Promise<void>((resolve) => explainer.close(() => resolve()))
    await c.end()
    await t.drop()
  })

  it('refuses a malformed --shard with exit 2', async () => {
    const r = await runCli(['batch', 'predict', '--once', '--shard', '2/2'], { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('--shard must be i/n')
  })

  it('two overlapping --once runs (cron) leave exactly one prediction per sensor', async () => {
    const [a, b] = await Promise.all([runCli(['batch', 'predict', '--once', '--json', '--concurrency', '2'], { env }), runCli(['batch', 'predict', '--once', '--json', '--concurrency', '2'], { env })])
    expect(a.code, a.stderr).toBe(0)
    expect(b.code, b.stderr).toBe(0)
    const ra = json<PredictJson>(a)
    const rb = json<PredictJson>(b)
    expect(ra.predictions + rb.predictions).toBe(SENSORS)
    expect(ra.failed + rb.failed).toBe(0)
    const { rows } = await c.query<{ n: string; d: string }>('SELECT COUNT(*) AS n, COUNT(DISTINCT sensor_id) AS d FROM predictions')
    expect(rows[0]).toEqual({ n: String(SENSORS), d: String(SENSORS) })
    const runs = await c.query<{ status: string }>(`SELECT status FROM job_runs WHERE job = 'batch predict'`)
    expect(runs.rows.map((r) => r.status)).toEqual(['succeeded', 'succeeded'])
  }, 120_000)

  it('a rerun with nothing new writes nothing; the human summary names the counts', async () => {
    const r = await runCli(['batch', 'predict', '--once'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toMatch(/predictions 0, events 0, skipped 1,000, failed 0/)
  })

  it('explain anomalies: --dry-run prints the requests; with the explainer down exit 0 and every row skipped; then explained', async () => {
    const dry = await runCli(['explain', 'anomalies', '--dry-run'], { env: { ...env, AI_EXPLAINER_URL: explainerUrl } })
    expect(dry.code, dry.stderr).toBe(0)
    expect(dry.stdout).toMatch(/dry run: 10 prediction\(s\)/)
    expect(dry.stdout).toContain('"metric":"temperature"')
    const down = await runCli(['explain', 'anomalies', '--json', '--timeout', '1s'], { env: { ...env, AI_EXPLAINER_URL: 'http://127.0.0.1:9' } })
    expect(down.code, down.stderr).toBe(0)
    expect(json(down)).toMatchObject({ selected: 10, explained: 0, skipped: 10, failed: 0 })
    const ok = await runCli(['explain', 'anomalies', '--json'], { env: { ...env, AI_EXPLAINER_URL: explainerUrl } })
    expect(ok.code, ok.stderr).toBe(0)
    expect(json(ok)).toMatchObject({ selected: 10, explained: 10, skipped: 0 })
    const { rows } = await c.query<{ n: string }>(`SELECT COUNT(*) AS n FROM predictions WHERE explanation IS NOT NULL`)
    expect(rows[0]?.n).toBe('10')
  }, 60_000)
})
