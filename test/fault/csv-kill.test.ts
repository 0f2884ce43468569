import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

import Database from 'better-sqlite3'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { BIN, json, ROOT, runCli } from '../helpers/cli.js'
import { tempDir } from '../helpers/services.js'

/**
 * `ingest csv FILE` SIGKILLed half way (after its first checkpoint is visible in csv_import_jobs) and
 * run again: the table ends with exactly the file's good rows, each once (the resumed run skips what
 * the checkpoint covers; rows committed after it come back as duplicates the database refuses).
 */
describe('ingest csv killed with SIGKILL and re-run (embedded SQLite)', () => {
  const dir = tempDir()
  const dataDir = join(dir.path, 'data')
  const env = { INGEST_DATA_DIR: dataDir }
  const dbPath = join(dataDir, 'ingest.db')
  const ROWS = 400_000
  const BAD_EVERY = 997
  let sensorId: number

  const query = <T>(sql: string): T => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true })
    try {
      db.pragma('busy_timeout = 5000')
      return db.prepare(sql).get() as T
    } finally {
      db.close()
    }
  }

  beforeAll(async () => {
    expect((await runCli(['db', 'migrate'], { env })).code).toBe(0)
    const applied = await runCli(['apply', join(ROOT, 'fixtures/demo.yaml'), '--json'], { env })
    expect(applied.code, applied.stderr).toBe(0)
    sensorId = json<{ devices: Array<{ sensors: Array<{ id: number }> }> }>(applied).devices[0]?.sensors[0]?.id as number
  })
  afterAll(() => dir.remove())

  it('ends with exactly the good rows of the file (count and distinct keys)', async () => {
    const t0 = Date.now() - 60 * 86_400_000
    const lines = ['sensor_id,timestamp,value']
    let good = 0
    for (let i = 0; i < ROWS; i++) {
      const bad = i % BAD_EVERY === 3
      if (!bad) good++
      lines.push(`${sensorId},${new Date(t0 + i * 1000).toISOString()},${bad ? 'n/a' : 30 + (i % 29)}`)
    }
    const file = join(dir.path, 'history.csv')
    writeFileSync(file, `${lines.join('\n')}\n`)

    const child = spawn('node', [BIN, 'csv', file, '--json', '--allow-rejects'], { env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', LOG_LEVEL: 'warn', ...env }, cwd: ROOT, stdio: 'ignore' })
    const exited = new Promise<string | number | null>((resolve) => child.on('exit', (code, signal) => resolve(signal ?? code)))
    let checkpoint = 0
    for (let i = 0; checkpoint === 0; i++) {
      if (child.exitCode !== null) throw new Error(`ingest csv exited ${child.exitCode} before its first checkpoint`)
      expect(i, 'no checkpoint within 120 s').toBeLessThan(2400)
      await new Promise((r) => setTimeout(r, 50))
      checkpoint = query<{ n: number | null } | undefined>("SELECT max(processed_rows) AS n FROM csv_import_jobs WHERE status = 'processing'")?.n ?? 0
    }
    child.kill('SIGKILL')
    expect(await exited).toBe('SIGKILL')
    const atKill = query<{ n: number }>('SELECT count(*) AS n FROM sensor_readings').n
    // Killed half way: some rows stored, not all of them.
    expect(atKill).toBeGreaterThan(0)
    expect(atKill).toBeLessThan(good)
    const job = query<{ status: string; processed_rows: number }>('SELECT status, processed_rows FROM csv_import_jobs')
    expect(job.status).toBe('processing')
    expect(job.processed_rows).toBeGreaterThan(0)

    const again = await runCli(['csv', file, '--json', '--allow-rejects'], { env, timeoutMs: 240_000 })
    expect(again.code, again.stderr).toBe(0)
    const summary = json<{ resumedFrom: number; stored: number; duplicates: number; rejected: number; rows: number }>(again)
    expect(summary.resumedFrom).toBe(job.processed_rows)
    expect(summary.rows).toBe(ROWS)
    expect(summary.rejected).toBe(ROWS - good)
    const after = query<{ n: number; d: number; v: number }>('SELECT count(*) AS n, count(DISTINCT sensor_id || \':\' || dedup_key) AS d, count(DISTINCT device_timestamp) AS v FROM sensor_readings')
    expect(after).toEqual({ n: good, d: good, v: good })
    expect(query<{ status: string; processed_rows: number; total_rows: number }>('SELECT status, processed_rows, total_rows FROM csv_import_jobs')).toEqual({ status: 'completed', processed_rows: ROWS, total_rows: ROWS })
  }, 300_000)
})
