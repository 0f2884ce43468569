import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { json, ROOT, runCli } from '../helpers/cli.js'
import { createTestDatabase, postgresAvailable, tempDir } from '../helpers/services.js'

interface ApplyJson {
  devices: Array<{ uuid: string; id: number; status: string; sensors: Array<{ uuid: string; id: number; status: string; thresholds: Array<{ name: string; id: number; status: string }> }> }>
  streams: Array<{ series_id: string; id: number; status: string }>
}

const demo = join(ROOT, 'fixtures/demo.yaml')

function statuses(v: unknown): string[] {
  return [...JSON.stringify(v).matchAll(/"status":"(\w+)"/g)].map((m) => m[1] ?? '')
}

describe('db migrate, db status and apply through the CLI (embedded default)', () => {
  const dir = tempDir()
  const env = { INGEST_DATA_DIR: join(dir.path, 'data') }
  afterAll(() => dir.remove())

  it('--help lists every command with a one-line summary', async () => {
    const r = await runCli(['--help'])
    expect(r.code).toBe(0)
    for (const cmd of ['apply', 'db migrate', 'db status']) expect(r.stdout).toMatch(new RegExp(`\\n\\s+${cmd}\\s+\\S`))
  })

  it('commands other than migrate/apply refuse a missing embedded database, naming the path', async () => {
    const r = await runCli(['db', 'status'], { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(join(dir.path, 'data', 'ingest.db'))
    expect(existsSync(join(dir.path, 'data', 'ingest.db'))).toBe(false)
  })

  it('migrate then apply: created, then the same ids unchanged', async () => {
    const m = await runCli(['db', 'migrate', '--json'], { env })
    expect(m.code, m.stderr).toBe(0)
    const migrated = json<{ databases: Array<{ engine: string; stores: string[]; ran: unknown[]; pending: unknown[] }> }>(m)
    expect(migrated.databases).toHaveLength(1)
    expect(migrated.databases[0]).toMatchObject({ engine: 'sqlite', stores: ['iot', 'universal'], pending: [] })
    const first = await runCli(['apply', demo, '--json'], { env })
    expect(first.code, first.stderr).toBe(0)
    const a = json<ApplyJson>(first)
    expect(new Set(statuses(a))).toEqual(new Set(['created']))
    const second = await runCli(['apply', demo, '--json'], { env })
    const b = json<ApplyJson>(second)
    expect(new Set(statuses(b))).toEqual(new Set(['unchanged']))
    expect(JSON.stringify(b).replaceAll('unchanged', 'created')).toBe(JSON.stringify(a))
    expect(typeof b.devices[0]?.id).toBe('number')
    const s = await runCli(['db', 'status', '--json'], { env })
    expect(json<{ databases: Array<{ pending: unknown[]; applied: unknown[] }> }>(s).databases[0]?.pending).toEqual([])
  })

  it('two processes using the embedded database at once both succeed', async () => {
    const file = join(dir.path, 'other.yaml')
    writeFileSync(file, readFileSync(demo, 'utf8').replace('3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c', '11111111-2222-4333-8444-555555555555').replace('8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d', '66666666-7777-4888-9999-000000000000'))
    const runs = await Promise.all([runCli(['apply', demo, '--json'], { env }), runCli(['apply', file, '--json'], { env }), runCli(['apply', demo, '--json'], { env })])
    for (const r of runs) expect(r.code, r.stderr).toBe(0)
    expect(new Set(statuses(json(runs[0] as never)))).toEqual(new Set(['unchanged']))
    expect(statuses(json(runs[1] as never))).toContain('created')
  })

  it.each([
    [['nosuch'], /command nosuch not found/],
    [['apply', demo, '--bogus'], /Nonexistent flag: --bogus/],
    [['apply'], /Missing 1 required arg/],
  ])('usage errors exit 2 without a stack trace: %j', async (args, message) => {
    const r = await runCli(args, { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('invalid environment: exit 2, one line per problem, secrets masked, no stack', async () => {
    const r = await runCli(['db', 'status'], { env: { ...env, PORT: 'abc', RATE_LIMIT_ENABLED: 'sometimes', DATABASE_URL: 'mysql://u:topsecret@h/db' } })
    expect(r.code).toBe(2)
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(3)
    expect(r.stderr).toContain('PORT: "abc" is not valid')
    expect(r.stderr).not.toContain('topsecret')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('invalid apply files exit 2, list every problem with its path, and write nothing', async () => {
    const bad = join(dir.path, 'bad.yaml')
    writeFileSync(bad, 'devices:\n  - uuid: 11111111-2222-4333-8444-999999999999\n    name: new\n  - uuid: nope\n    colour: red\n')
    const r = await runCli(['apply', bad], { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('devices[1].uuid: must be a UUID, got "nope"')
    expect(r.stderr).toContain('devices[1]: unknown field "colour"')
    const check = await runCli(['apply', demo, '--json', '--dry-run'], { env })
    expect(JSON.stringify(json(check))).not.toContain('99999999')
    const malformed = join(dir.path, 'malformed.yaml')
    writeFileSync(malformed, '{"devices": [')
    const m = await runCli(['apply', malformed], { env })
    expect(m.code).toBe(2)
    expect(m.stderr).toMatch(/not valid YAML or JSON/)
    expect(m.stderr).not.toMatch(/\n\s+at /)
  })
})

describe('the same commands against PostgreSQL (DATABASE_URL)', async () => {
  const up = await postgresAvailable()
  let env: Record<string, string> = {}
  let drop = (): Promise<void> => Promise.resolve()
  const dir = tempDir()
  beforeAll(async () => {
    if (!up) return
    const t = await createTestDatabase()
    env = { DATABASE_URL: t.url, INGEST_DATA_DIR: join(dir.path, 'unused') }
    drop = t.drop
  })
  afterAll(async () => {
    await drop()
    dir.remove()
  })

  it.runIf(up)('creates and fills the schema there; the second apply is unchanged; no embedded file appears', async () => {
    copyFileSync(demo, join(dir.path, 'demo.yaml'))
    const m = await runCli(['db', 'migrate', '--json'], { env })
    expect(m.code, m.stderr).toBe(0)
    expect(json<{ databases: Array<{ engine: string }> }>(m).databases.map((d) => d.engine)).toEqual(['postgres'])
    const a = await runCli(['apply', join(dir.path, 'demo.yaml'), '--json'], { env })
    const b = await runCli(['apply', join(dir.path, 'demo.yaml'), '--json'], { env })
    expect(new Set(statuses(json(a)))).toEqual(new Set(['created']))
    expect(new Set(statuses(json(b)))).toEqual(new Set(['unchanged']))
    expect(existsSync(join(dir.path, 'unused'))).toBe(false)
  })
})
