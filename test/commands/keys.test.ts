import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { KEY_PATTERN } from '../../src/lib/domain/keys.js'
import { json, ROOT, runCli } from '../helpers/cli.js'
import { createTestDatabase, postgresAvailable, tempDir } from '../helpers/services.js'

const demo = join(ROOT, 'fixtures/demo.yaml')
const DEVICE = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'

interface CreatedJson {
  key: string
  kid: string
  kind: string
  deviceUuid?: string
  role?: string
  expiresAt: string | null
  previous?: { kid: string; expiresAt: string | null }
}
interface ListJson {
  keys: Array<{ kind: string; kid: string | null; status: string; deviceUuid?: string; role?: string; expiresAt: string | null }>
}

describe('keys create, list, revoke, rotate through the CLI (embedded default)', () => {
  const dir = tempDir()
  const env = { INGEST_DATA_DIR: join(dir.path, 'data') }
  const shown: string[] = []
  afterAll(() => dir.remove())

  beforeAll(async () => {
    const m = await runCli(['db', 'migrate'], { env })
    expect(m.code, m.stderr).toBe(0)
    const a = await runCli(['apply', demo], { env })
    expect(a.code, a.stderr).toBe(0)
  })

  it('keys create --device --json returns the key once, in the documented format', async () => {
    const r = await runCli(['keys', 'create', '--device', DEVICE.toUpperCase(), '--name', 'boiler', '--expires-in', '30d', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const k = json<CreatedJson>(r)
    expect(k.key).toMatch(KEY_PATTERN)
    expect(k.key.startsWith(`ingd_${k.kid}_`)).toBe(true)
    expect(k).toMatchObject({ kind: 'device', deviceUuid: DEVICE })
    expect(Date.parse(k.expiresAt ?? '') - Date.now()).toBeGreaterThan(29 * 86_400_000)
    shown.push(k.key)
  })

  it('human output: the key alone on stdout, the shown-once warning on stderr', async () => {
    const r = await runCli(['keys', 'create', '--role', 'source_writer', '--source-id', 'ward-3', '--domain', 'health', '--domain', 'finance'], { env })
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(KEY_PATTERN)
    expect(lines[0]?.startsWith('ingk_')).toBe(true)
    expect(r.stderr).toMatch(/shown only once/)
    expect(r.stderr).not.toContain(lines[0])
    shown.push(lines[0] ?? '')
  })

  it('keys list shows every key by kid and status, never a secret', async () => {
    const r = await runCli(['keys', 'list', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const { keys } = json<ListJson>(r)
    expect(keys.map((k) => [k.kind, k.status])).toEqual([
      ['role', 'active'],
      ['device', 'active'],
    ])
    const human = await runCli(['keys', 'list'], { env })
    expect(human.code).toBe(0)
    for (const k of keys) expect(human.stdout).toContain(k.kid ?? '')
    for (const key of shown) {
      expect(r.stdout).not.toContain(key)
      expect(human.stdout).not.toContain(key)
      expect(r.stdout).not.toContain(key.slice(18, 50))
    }
  })

  it('the database holds no plaintext key (only the SHA-256)', () => {
    const data = join(dir.path, 'data')
    const bytes = readdirSync(data).map((f) => readFileSync(join(data, f)).toString('latin1')).join('')
    for (const key of shown) expect(bytes).not.toContain(key.slice(18, 50))
  })

  it('rotate gives a new key for the same device; the old one expires after the grace', async () => {
    const before = json<ListJson>(await runCli(['keys', 'list', '--json'], { env })).keys.find((k) => k.kind === 'device')
    const r = await runCli(['keys', 'rotate', before?.kid ?? '', '--grace', '10m', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const k = json<CreatedJson>(r)
    expect(k).toMatchObject({ kind: 'device', deviceUuid: DEVICE, previous: { kid: before?.kid } })
    expect(k.kid).not.toBe(before?.kid)
    expect(k.key).toMatch(KEY_PATTERN)
    const graceEnd = Date.parse(k.previous?.expiresAt ?? '')
    expect(graceEnd - Date.now()).toBeGreaterThan(9 * 60_000)
    expect(graceEnd - Date.now()).toBeLessThanOrEqual(10 * 60_000)
  })

  it('revoke works, is idempotent, and the list shows the key revoked', async () => {
    const kid = json<ListJson>(await runCli(['keys', 'list', '--json'], { env })).keys.find((k) => k.kind === 'role')?.kid ?? ''
    const r = await runCli(['keys', 'revoke', kid, '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(json(r)).toMatchObject({ kid, kind: 'role', changed: true })
    const again = await runCli(['keys', 'revoke', kid], { env })
    expect(again.code).toBe(0)
    expect(again.stdout).toMatch(/already revoked/)
    const listed = json<ListJson>(await runCli(['keys', 'list', '--json'], { env })).keys.find((k) => k.kid === kid)
    expect(listed?.status).toBe('revoked')
    const unknown = await runCli(['keys', 'revoke', 'AAAAAAAAAAAA'], { env })
    expect(unknown.code).toBe(1)
    expect(unknown.stderr).toMatch(/no key with id AAAAAAAAAAAA/)
  })

  it('revoke and rotate say when the change takes effect everywhere (the 30 s auth cache)', async () => {
    const created = json<CreatedJson>(await runCli(['keys', 'create', '--role', 'read_only', '--json'], { env }))
    const before = Date.now()
    const r = await runCli(['keys', 'revoke', created.kid], { env })
    const after = Date.now()
    expect(r.code, r.stderr).toBe(0)
    const m = /^revoked role key (\w+); takes effect everywhere by (\S+) \(auth cache 30 s\)\n$/.exec(r.stdout)
    expect(m, r.stdout).not.toBeNull()
    expect(m?.[1]).toBe(created.kid)
    const at = Date.parse(m?.[2] ?? '')
    expect(at).toBeGreaterThanOrEqual(before + 30_000)
    expect(at).toBeLessThanOrEqual(after + 30_000)
    const again = json<{ revokedAt: string; effectiveEverywhereAt: string; authCacheSeconds: number }>(await runCli(['keys', 'revoke', created.kid, '--json'], { env }))
    expect(again.authCacheSeconds).toBe(30)
    expect(again.effectiveEverywhereAt).toBe(m?.[2])
    expect(Date.parse(again.effectiveEverywhereAt) - Date.parse(again.revokedAt)).toBe(30_000)

    // A grace shorter than the cache: the old key expires now but may be accepted for 30 s more.
    const other = json<CreatedJson>(await runCli(['keys', 'create', '--role', 'read_only', '--json'], { env }))
    const rotated = await runCli(['keys', 'rotate', other.kid, '--grace', '0s', '--json'], { env })
    expect(rotated.code, rotated.stderr).toBe(0)
    const previous = json<{ previous: { expiresAt: string; effectiveEverywhereAt: string } }>(rotated).previous
    expect(Date.parse(previous.effectiveEverywhereAt) - Date.parse(previous.expiresAt)).toBe(30_000)
    const human = await runCli(['keys', 'rotate', json<CreatedJson>(rotated).kid, '--grace', '5s'], { env })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stderr).toMatch(/stops working at \S+ \(everywhere by \S+: auth cache 30 s\)/)
  })

  it.each([
    [['keys', 'create'], /exactly one of --device/],
    [['keys', 'create', '--device', DEVICE, '--role', 'admin'], /exactly one of --device/],
    [['keys', 'create', '--role', 'source_writer', '--domain', 'health'], /needs --source-id/],
    [['keys', 'create', '--device', 'not-a-uuid'], /--device must be a UUID/],
    [['keys', 'create', '--role', 'root'], /--role=root to be one of/],
    [['keys', 'create', '--role', 'admin', '--expires-in', 'soon'], /"soon" is not a duration/],
    [['keys', 'create', '--role', 'admin', '--source-id', 'x'], /source_writer keys only/],
    [['keys', 'revoke', 'not a kid'], /is not a key id/],
    [['keys', 'rotate'], /Missing 1 required arg/],
  ])('usage errors exit 2 without a stack trace: %j', async (args, message) => {
    const r = await runCli(args, { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('an unknown device is refused (exit 1) and names the fix', async () => {
    const r = await runCli(['keys', 'create', '--device', '11111111-2222-4333-8444-555555555555'], { env })
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/device 11111111-2222-4333-8444-555555555555 not found/)
    expect(r.stderr).toMatch(/ingest apply/)
  })
})

describe('keys against PostgreSQL (DATABASE_URL)', async () => {
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

  it.runIf(up)('create (device and role), list and revoke', async () => {
    expect((await runCli(['db', 'migrate'], { env })).code).toBe(0)
    expect((await runCli(['apply', demo], { env })).code).toBe(0)
    const d = json<CreatedJson>(await runCli(['keys', 'create', '--device', DEVICE, '--json'], { env }))
    const r = json<CreatedJson>(await runCli(['keys', 'create', '--role', 'read_only', '--json'], { env }))
    expect(d.key).toMatch(KEY_PATTERN)
    expect(r.key).toMatch(KEY_PATTERN)
    const list = await runCli(['keys', 'list', '--json'], { env })
    expect(json<ListJson>(list).keys.map((k) => [k.kind, k.kid, k.status])).toEqual([
      ['role', r.kid, 'active'],
      ['device', d.kid, 'active'],
    ])
    expect(list.stdout).not.toContain(d.key)
    const rv = await runCli(['keys', 'revoke', d.key, '--json'], { env })
    expect(json(rv)).toMatchObject({ kid: d.kid, kind: 'device', changed: true })
  })
})
