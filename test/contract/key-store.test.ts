import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { SqlExecutor } from '../../src/lib/adapters/storage/sql/executor.js'
import { createSqlDeviceKeyStore } from '../../src/lib/adapters/storage/sql/device-key-store.js'
import { createSqlRoleKeyStore } from '../../src/lib/adapters/storage/sql/role-key-store.js'
import { toMsOrNull } from '../../src/lib/adapters/storage/sql/row.js'
import { createSqlSecurityAuditStore } from '../../src/lib/adapters/storage/sql/security-audit-store.js'
import { parseRegistryFile } from '../../src/lib/app/apply-registry.js'
import { generateKey, sha256Hex } from '../../src/lib/app/keys.js'
import { NotFoundError } from '../../src/lib/errors/index.js'
import type { DeviceKeyStore } from '../../src/lib/ports/device-key-store.js'
import type { RoleKeyStore } from '../../src/lib/ports/role-key-store.js'
import type { SecurityAuditStore } from '../../src/lib/ports/security-audit-store.js'
import { availableEngines, type EngineHandle } from '../helpers/engines.js'

const engines = await availableEngines()

const DEVICE = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
const T0 = Date.parse('2030-01-01T00:00:00.123Z')
const file = `
devices:
  - uuid: ${DEVICE}
    name: boiler-room
    sensors:
      - { uuid: 8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d, type: temperature }
`

function executorOf(h: EngineHandle): SqlExecutor {
  const handle = h.db as unknown as { connection?: SqlExecutor; pool?: SqlExecutor }
  const exec = handle.connection ?? handle.pool
  if (!exec) throw new Error(`no executor on the ${h.engine} handle`)
  return exec
}

function expectTimesTyped(r: { createdAt: unknown; expiresAt: unknown; revokedAt: unknown; lastUsedAt: unknown }): void {
  for (const v of [r.createdAt, r.expiresAt, r.revokedAt, r.lastUsedAt]) expect(v === null || (typeof v === 'number' && Number.isFinite(v))).toBe(true)
}

describe.each(engines)('key stores contract (device keys, role keys, security audit): $engine', ({ engine, open }) => {
  let h: EngineHandle
  let exec: SqlExecutor
  let deviceKeys: DeviceKeyStore
  let roleKeys: RoleKeyStore
  let audit: SecurityAuditStore
  let deviceId: number
  // SQL Server holds only the IoT store: role keys and the audit log live elsewhere.
  const universal = engine === 'sqlserver' ? it.skip : it

  beforeAll(async () => {
    h = await open()
    await h.db.migrator.migrate({ dryRun: false, alterLegacy: false })
    const [device] = await h.db.registry.applyDevices(parseRegistryFile(file, 't').devices, { prune: false, dryRun: false })
    deviceId = device?.id ?? -1
    exec = executorOf(h)
    deviceKeys = createSqlDeviceKeyStore(exec)
    roleKeys = createSqlRoleKeyStore(exec)
    audit = createSqlSecurityAuditStore(exec)
  })
  afterAll(async () => {
    await h.dispose()
  })

  it('a device key for an unknown device is NotFound', async () => {
    const g = generateKey('device')
    await expect(deviceKeys.create({ deviceUuid: '11111111-2222-4333-8444-555555555555', kid: g.kid, hash: g.hash, name: null, expiresAt: null, createdAt: T0 })).rejects.toBeInstanceOf(NotFoundError)
  })

  it('device keys: create, find by kid and by hash, typed values, only the hash stored', async () => {
    const g = generateKey('device')
    const created = await deviceKeys.create({ deviceUuid: DEVICE, kid: g.kid, hash: g.hash, name: 'boiler', expiresAt: T0 + 86_400_000, createdAt: T0 })
    expect(created).toEqual({ id: expect.any(Number) as number, kid: g.kid, deviceId })
    const byKid = await deviceKeys.findByKid(g.kid)
    expect(byKid).toEqual({
      id: created.id,
      kid: g.kid,
      name: 'boiler',
      deviceId,
      deviceUuid: DEVICE,
      hash: g.hash,
      isActive: true,
      deviceDeleted: false,
      createdAt: T0,
      expiresAt: T0 + 86_400_000,
      revokedAt: null,
      lastUsedAt: null,
    })
    expect(typeof byKid?.id).toBe('number')
    expect(typeof byKid?.deviceId).toBe('number')
    expectTimesTyped(byKid ?? { createdAt: 'x', expiresAt: null, revokedAt: null, lastUsedAt: null })
    expect(await deviceKeys.findByHash(g.hash)).toEqual(byKid)
    expect(await deviceKeys.findByKid('AAAAAAAAAAAA')).toBeNull()
    expect(await deviceKeys.findByHash(sha256Hex('nope'))).toBeNull()
    const dump = JSON.stringify(await exec.all('SELECT * FROM "device_api_keys"'))
    expect(dump).toContain(g.hash)
    expect(dump).not.toContain(g.key)
    expect(dump).not.toContain(g.key.slice(18, 50))
  })

  it('legacy device keys (no kid) are found by their SHA-256', async () => {
    const hash = sha256Hex('legacy-provisioned-key')
    await exec.insert('device_api_keys', { device_id: deviceId, api_key_hash: hash, key_name: 'legacy', created_at: new Date(T0), is_active: true })
    expect(await deviceKeys.findByHash(hash)).toMatchObject({ kid: null, deviceId, deviceUuid: DEVICE, isActive: true, expiresAt: null })
  })

  it('revoke, expiry, last_used_at and the device side effect round trip', async () => {
    const g = generateKey('device')
    const { id } = await deviceKeys.create({ deviceUuid: DEVICE, kid: g.kid, hash: g.hash, name: null, expiresAt: null, createdAt: T0 })
    expect(await deviceKeys.setExpiry(g.kid, T0 + 60_000)).toBe(true)
    expect((await deviceKeys.findByKid(g.kid))?.expiresAt).toBe(T0 + 60_000)
    expect(await deviceKeys.setExpiry('AAAAAAAAAAAA', T0)).toBe(false)
    await deviceKeys.markUsed([id, id], T0 + 5_000)
    expect((await deviceKeys.findByKid(g.kid))?.lastUsedAt).toBe(T0 + 5_000)
    await deviceKeys.touchDevice(deviceId, T0 + 5_000)
    const [dev] = await exec.all('SELECT "status", "last_connection" FROM "devices" WHERE "id" = ?', [deviceId])
    expect(dev?.['status']).toBe('online')
    expect(dev?.['last_connection']).not.toBeNull()
    expect(await deviceKeys.revoke(g.kid, T0 + 10_000)).toBe(true)
    expect(await deviceKeys.revoke(g.kid, T0 + 20_000)).toBe(false)
    expect(await deviceKeys.findByKid(g.kid)).toMatchObject({ isActive: false, revokedAt: T0 + 10_000 })
  })

  it('lists device keys without hashes, oldest first', async () => {
    const keys = await deviceKeys.list()
    expect(keys.length).toBeGreaterThanOrEqual(3)
    expect(keys.map((k) => k.id)).toEqual([...keys.map((k) => k.id)].sort((a, b) => a - b))
    for (const k of keys) {
      expect(k).not.toHaveProperty('hash')
      expect(k.deviceUuid).toBe(DEVICE)
      expect(typeof k.id).toBe('number')
      expectTimesTyped(k)
    }
  })

  universal('role keys: create, find by kid and hash, scope round trip, listed without hashes', async () => {
    const g = generateKey('role')
    const created = await roleKeys.create({ kid: g.kid, hash: g.hash, prefix: g.key.slice(0, 8), name: 'writer', role: 'source_writer', allowedSourceId: 'ward-3', allowedDomains: ['health', 'finance'], expiresAt: null, createdAt: T0, createdBy: 'cli:test' })
    expect(created).toEqual({ id: expect.any(Number) as number, kid: g.kid })
    const r = await roleKeys.findByKid(g.kid)
    expect(r).toEqual({ id: created.id, kid: g.kid, hash: g.hash, prefix: g.key.slice(0, 8), name: 'writer', role: 'source_writer', allowedSourceId: 'ward-3', allowedDomains: ['health', 'finance'], isActive: true, createdBy: 'cli:test', createdAt: T0, expiresAt: null, revokedAt: null, lastUsedAt: null })
    expect(await roleKeys.findByHash(g.hash)).toEqual(r)
    await roleKeys.markUsed([created.id], T0 + 1)
    expect(await roleKeys.revoke(g.kid, T0 + 2)).toBe(true)
    expect(await roleKeys.findByKid(g.kid)).toMatchObject({ isActive: false, revokedAt: T0 + 2, lastUsedAt: T0 + 1 })
    const listed = await roleKeys.list()
    expect(listed.find((k) => k.kid === g.kid)).toMatchObject({ role: 'source_writer', allowedDomains: ['health', 'finance'] })
    expect(listed[0]).not.toHaveProperty('hash')
    const dump = JSON.stringify(await exec.all('SELECT * FROM "api_keys"'))
    expect(dump).not.toContain(g.key)
  })

  universal('the database refuses a source_writer key without a source', async () => {
    const g = generateKey('role')
    await expect(roleKeys.create({ kid: g.kid, hash: g.hash, prefix: 'ingk_xxx', name: null, role: 'source_writer', allowedSourceId: null, allowedDomains: [], expiresAt: null, createdAt: T0, createdBy: null })).rejects.toThrow()
  })

  universal('security events are appended with every field, clipped and without control characters; the table refuses updates and deletes', async () => {
    await audit.record({ eventType: 'key.create', outcome: 'success', actorType: 'cli', targetType: 'device_key', targetId: 'abc', details: { by: 'cli:test' }, at: T0 })
    await audit.record({
      eventType: 'auth.failure',
      outcome: 'failure',
      actorType: 'device',
      actorKid: 'K'.repeat(40),
      sourceIp: '10.0.0.1\r\nforged: line',
      transport: 'http',
      requestId: 'req-1',
      targetType: 'device',
      targetId: DEVICE,
      reasonCode: 'KEY_REVOKED',
    })
    const rows = await exec.all('SELECT * FROM "security_audit_log" ORDER BY "id"')
    expect(rows).toHaveLength(2)
    const [first, second] = rows
    expect(first).toMatchObject({ event_type: 'key.create', outcome: 'success', actor_type: 'cli', target_id: 'abc' })
    expect(toMsOrNull(first?.['ts'])).toBe(T0)
    expect(JSON.stringify(first?.['details'])).toContain('cli:test')
    expect(second).toMatchObject({ event_type: 'auth.failure', reason_code: 'KEY_REVOKED', actor_kid: 'K'.repeat(32), request_id: 'req-1' })
    expect(String(second?.['source_ip'])).not.toMatch(/[\r\n]/)
    expect(second?.['ts']).not.toBeNull()
    await expect(exec.run('UPDATE "security_audit_log" SET "outcome" = ?', ['success'])).rejects.toThrow()
    await expect(exec.run('DELETE FROM "security_audit_log"')).rejects.toThrow()
    expect(await exec.all('SELECT "id" FROM "security_audit_log"')).toHaveLength(2)
  })
})
