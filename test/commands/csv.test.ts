import { spawn } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { CsvImportResult } from '../../src/lib/app/csv/import-csv.js'
import { BIN, type CliResult, json, ROOT, runCli } from '../helpers/cli.js'
import { createTestDatabase, postgresAvailable, tempDir } from '../helpers/services.js'

const demo = join(ROOT, 'fixtures/demo.yaml')

/** The --json summary: the import's result. */
type Summary = CsvImportResult

const iso = (ms: number): string => new Date(ms).toISOString()

/** The CLI with `input` on stdin (runCli has none). */
function runWithStdin(args: readonly string[], input: string, env: Record<string, string>): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('node', [BIN, ...args], { env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', LOG_LEVEL: 'warn', ...env }, cwd: ROOT })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }))
    child.stdin.end(input)
  })
}

describe('ingest csv through the CLI (embedded SQLite)', () => {
  const dir = tempDir()
  const dataDir = join(dir.path, 'data')
  const env = { INGEST_DATA_DIR: dataDir }
  let sensorId: number
  const t0 = Date.now() - 86_400_000
  const count = (): number => {
    const db = new Database(join(dataDir, 'ingest.db'), { readonly: true })
    try {
      return Number(db.prepare('SELECT count(*) FROM sensor_readings').pluck().get())
    } finally {
      db.close()
    }
  }
  const file = (name: string, lines: string[]): string => {
    const p = join(dir.path, name)
    writeFileSync(p, `${lines.join('\n')}\n`)
    return p
  }

  beforeAll(async () => {
    expect((await runCli(['db', 'migrate'], { env })).code).toBe(0)
    const applied = await runCli(['apply', demo, '--json'], { env })
    expect(applied.code, applied.stderr).toBe(0)
    sensorId = json<{ devices: Array<{ sensors: Array<{ id: number }> }> }>(applied).devices[0]?.sensors[0]?.id as number
    expect(sensorId).toBeGreaterThan(0)
  })
  afterAll(() => dir.remove())

  it('--json summary; exit 1 when a line was rejected; the rejects file next to the input; a re-run stores nothing new', async () => {
    const input = file('mixed.csv', ['sensor_id,timestamp,value', `${sensorId},${iso(t0)},41`, `${sensorId},${iso(t0 + 1000)},oops`, `${sensorId},${iso(t0 + 2000)},42`, `${sensorId},never,43`])
    const r = await runCli(['csv', input, '--json'], { env })
    expect(r.code, r.stderr).toBe(1)
    const s = json<Summary>(r)
    expect(s).toMatchObject({ file: input, layout: 'iot-by-id', dryRun: false, status: 'completed', resumedFrom: 0, rows: 4, points: 2, stored: 2, duplicates: 0, rejected: 2, rejectsFile: join(dir.path, 'mixed.rejects.csv') })
    expect(s.jobId).toMatch(/^[0-9a-f-]{36}$/)
    expect(s.rejects.map((x) => [x.line, x.column, x.code])).toEqual([
      [3, 'value', 'VALUE_NOT_NUMERIC'],
      [5, 'timestamp', 'TIMESTAMP_INVALID'],
    ])
    const rejects = readFileSync(join(dir.path, 'mixed.rejects.csv'), 'utf8').trim().split('\r\n')
    expect(rejects[0]).toBe('line,column,code,reason')
    expect(rejects.slice(1).map((l) => l.split(',')[0])).toEqual(['3', '5'])
    expect(count()).toBe(2)

    const again = await runCli(['csv', input, '--json', '--allow-rejects'], { env })
    expect(again.code, again.stderr).toBe(0)
    expect(json<Summary>(again)).toMatchObject({ jobId: s.jobId, stored: 0, duplicates: 2, rejected: 2 })
    expect(count()).toBe(2)
  })

  it('human output: the summary lists the bad lines; exit 0 with --allow-rejects and none on stdout but the summary', async () => {
    const input = file('human.csv', ['sensor_id,timestamp,value', `${sensorId},${iso(t0 + 10_000)},44`, `${sensorId},${iso(t0 + 11_000)}`])
    const r = await runCli(['csv', input, '--allow-rejects'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('rejected 1')
    expect(r.stdout).toContain('line 3 (value): MISSING_COLUMN')
  })

  it('- reads stdin (no job to resume, no rejects file unless named)', async () => {
    const body = ['sensor_id,timestamp,value', `${sensorId},${iso(t0 + 20_000)},45`, `${sensorId},${iso(t0 + 21_000)},46`, ''].join('\r\n')
    const before = count()
    const r = await runWithStdin(['csv', '-', '--json'], body, env)
    expect(r.code, r.stderr).toBe(0)
    expect(json<Summary>(r)).toMatchObject({ file: 'stdin', rows: 2, stored: 2, rejected: 0, rejectsFile: null })
    expect(count()).toBe(before + 2)
  })

  it('--dry-run validates and writes nothing: no rows, no job, no rejects file', async () => {
    const input = file('dry.csv', ['sensor_id,timestamp,value', `${sensorId},${iso(t0 + 30_000)},47`, `424242,${iso(t0 + 31_000)},48`, `${sensorId},${iso(t0 + 32_000)},x`])
    const before = count()
    const r = await runCli(['csv', input, '--dry-run', '--json'], { env })
    expect(r.code, r.stderr).toBe(1)
    expect(json<Summary>(r)).toMatchObject({ dryRun: true, jobId: null, rows: 3, stored: 0, rejected: 2 })
    expect(count()).toBe(before)
    expect(existsSync(join(dir.path, 'dry.rejects.csv'))).toBe(false)
  })

  it('--rejects FILE writes the bad lines there', async () => {
    const input = file('named.csv', ['sensor_id,timestamp,value', `${sensorId},${iso(t0 + 40_000)},"4,9"`, `${sensorId},${iso(t0 + 41_000)},49`])
    const out = join(dir.path, 'elsewhere.csv')
    const r = await runCli(['csv', input, '--rejects', out, '--json', '--allow-rejects'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(json<Summary>(r)).toMatchObject({ stored: 1, rejected: 1, rejectsFile: out })
    expect(readFileSync(out, 'utf8').trim().split('\r\n')).toEqual(['line,column,code,reason', '2,value,VALUE_NOT_NUMERIC,"""4,9"" is not a finite decimal number"'])
    expect(existsSync(join(dir.path, 'named.rejects.csv'))).toBe(false)
  })

  it('a header without the needed columns is a usage error (exit 2), nothing stored', async () => {
    const input = file('nohead.csv', ['sensor,when,value', `${sensorId},${iso(t0)},1`])
    const r = await runCli(['csv', input, '--json'], { env })
    expect(r.code).toBe(2)
    expect(json<{ error: { message: string } }>(r).error.message).toContain('the header has no "timestamp" column')
    const human = await runCli(['csv', input], { env })
    expect(human.code).toBe(2)
    expect(human.stderr).toContain('the header has no "timestamp" column')
  })
})

describe.runIf(await postgresAvailable())('ingest csv: two runs of one file at once (PostgreSQL)', () => {
  const dir = tempDir()
  let env: Record<string, string>
  let drop: () => Promise<void>
  let pool: pg.Pool
  let sensorId: number

  beforeAll(async () => {
    const t = await createTestDatabase()
    drop = t.drop
    env = { INGEST_DATA_DIR: join(dir.path, 'data'), DATABASE_URL: t.url }
    pool = new pg.Pool({ connectionString: t.url, max: 2 })
    expect((await runCli(['db', 'migrate'], { env })).code).toBe(0)
    const applied = await runCli(['apply', demo, '--json'], { env })
    sensorId = json<{ devices: Array<{ sensors: Array<{ id: number }> }> }>(applied).devices[0]?.sensors[0]?.id as number
  })
  afterAll(async () => {
    await pool.end()
    await drop()
    dir.remove()
  })

  it('the second run refuses with exit 2 while the first is alive; after the first ends a run goes on normally', async () => {
    const t0 = Date.now() - 30 * 86_400_000
    const rows = ['sensor_id,timestamp,value']
    for (let i = 0; i < 200_000; i++) rows.push(`${sensorId},${iso(t0 + i * 1000)},${40 + (i % 7)}`)
    const input = join(dir.path, 'big.csv')
    writeFileSync(input, `${rows.join('\n')}\n`)
    const first = spawn('node', [BIN, 'csv', input, '--json'], { env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', LOG_LEVEL: 'warn', ...env }, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    first.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
    const exited = new Promise<number | null>((resolve) => first.on('close', (code) => resolve(code)))
    try {
      // Once its job is processing, the first run holds the file; stop it there so it cannot finish first.
      for (let i = 0; ; i++) {
        const job = (await pool.query<{ status: string }>('SELECT status FROM csv_import_jobs')).rows[0]
        if (job?.status === 'processing') break
        if (first.exitCode !== null) throw new Error(`the first run ended before its job was seen processing: ${out}`)
        expect(i).toBeLessThan(600)
        await new Promise((r) => setTimeout(r, 50))
      }
      first.kill('SIGSTOP')
      const second = await runCli(['csv', input], { env })
      expect(second.code).toBe(2)
      expect(second.stderr).toContain('is being imported by another run')
      expect(second.stderr).toContain(`process ${first.pid}`)
    } finally {
      first.kill('SIGCONT')
    }
    expect(await exited).toBe(0)
    expect(JSON.parse(out)).toMatchObject({ stored: 200_000, rejected: 0 })
    const third = await runCli(['csv', input, '--json'], { env })
    expect(third.code, third.stderr).toBe(0)
    expect(json<Summary>(third)).toMatchObject({ stored: 0, duplicates: 200_000 })
    expect(Number((await pool.query<{ n: string }>('SELECT count(*) AS n FROM sensor_readings')).rows[0]?.n)).toBe(200_000)
  })
})
