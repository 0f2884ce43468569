import { describe, expect, it } from 'vitest'

import { AUTH_CACHE_TTL_MS, createAuthenticator } from '../../../src/lib/app/authenticate.js'
import type { AppContext } from '../../../src/lib/app/context.js'
import { createKey, listKeys, revokeKey, rotateKey, sha256Hex } from '../../../src/lib/app/keys.js'
import { parseKey } from '../../../src/lib/domain/keys.js'
import { NotFoundError, UsageError } from '../../../src/lib/errors/index.js'
import { createLogger } from '../../../src/lib/log/index.js'
import type { Database } from '../../../src/lib/ports/storage.js'
import { FakeDeviceKeyStore, FakeRoleKeyStore, FakeSecurityAudit } from './fake-key-store.js'

const DEVICE = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'

function fakeContext() {
  let t = Date.parse('2030-01-01T00:00:00Z')
  // Two Databases with stores of their own: a device key written to the universal store, or a role
  // key or audit row written to the IoT store, lands in a fake no assertion below reads.
  const stores = () => ({ deviceKeys: new FakeDeviceKeyStore(), roleKeys: new FakeRoleKeyStore(), securityAudit: new FakeSecurityAudit() })
  const iot = stores()
  const universal = stores()
  iot.deviceKeys.addDevice(DEVICE)
  universal.deviceKeys.addDevice(DEVICE)
  const db = (s: ReturnType<typeof stores>) => ({ engine: 'sqlite', ...s }) as unknown as Database
  const ctx = {
    logger: createLogger({ level: 'silent' }),
    clock: { now: () => t, sleep: () => Promise.resolve() },
    iot: db(iot),
    universal: db(universal),
  } as unknown as AppContext
  const deviceKeys = iot.deviceKeys
  const roleKeys = universal.roleKeys
  const audit = universal.securityAudit
  const auth = createAuthenticator({ config: { auth: { ingestApiKey: undefined, allowUnauthenticated: false, legacyApiKeyAllowed: false } }, deviceKeys, roleKeys, securityAudit: audit, clock: ctx.clock, logger: ctx.logger })
  /** What went to the store that does not hold it. */
  const misplaced = () => [...universal.deviceKeys.keys, ...iot.roleKeys.keys, ...iot.securityAudit.events]
  return { ctx, deviceKeys, roleKeys, audit, misplaced, auth, advance: (ms: number) => (t += ms), now: () => t }
}

describe('createKey', () => {
  it('a device key: the plaintext is returned once and only its SHA-256 is stored', async () => {
    const f = fakeContext()
    const k = await createKey(f.ctx, { device: DEVICE.toUpperCase(), name: 'boiler', expiresIn: 3600 })
    expect(k).toMatchObject({ kind: 'device', deviceUuid: DEVICE, name: 'boiler', createdAt: '2030-01-01T00:00:00.000Z', expiresAt: '2030-01-01T01:00:00.000Z' })
    expect(parseKey(k.key)).toEqual({ kind: 'device', kid: k.kid, valid: true })
    expect(f.deviceKeys.keys).toHaveLength(1)
    expect(f.deviceKeys.keys[0]?.hash).toBe(sha256Hex(k.key))
    expect(JSON.stringify([f.deviceKeys.keys, f.audit.events])).not.toContain(k.key)
    expect(f.audit.events).toEqual([expect.objectContaining({ eventType: 'key.create', outcome: 'success', actorType: 'cli', targetType: 'device_key', targetId: k.kid })])
    expect(f.misplaced()).toEqual([])
    expect((await f.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })).ok).toBe(true)
  })

  it('a role key goes to the universal store with its scope', async () => {
    const f = fakeContext()
    const k = await createKey(f.ctx, { role: 'source_writer', sourceId: 'ward-3', domains: ['health'] })
    expect(k).toMatchObject({ kind: 'role', role: 'source_writer', allowedSourceId: 'ward-3', allowedDomains: ['health'], expiresAt: null })
    expect(f.roleKeys.keys[0]).toMatchObject({ kid: k.kid, prefix: k.key.slice(0, 8), role: 'source_writer', hash: sha256Hex(k.key) })
    expect(f.deviceKeys.keys).toHaveLength(0)
    expect(f.misplaced()).toEqual([])
  })

  it('refuses bad requests with a UsageError listing every problem, before touching a store', async () => {
    const f = fakeContext()
    const err = await createKey(f.ctx, { role: 'source_writer', expiresIn: -1 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).exitCode).toBe(2)
    expect((err as UsageError).problems.length).toBeGreaterThanOrEqual(3)
    expect(f.roleKeys.calls['create']).toBeUndefined()
  })

  it('an unknown device is NotFound', async () => {
    const f = fakeContext()
    await expect(createKey(f.ctx, { device: '11111111-2222-4333-8444-555555555555' })).rejects.toBeInstanceOf(NotFoundError)
    expect(f.audit.events).toEqual([])
  })
})

describe('listKeys, revokeKey', () => {
  it('lists both kinds with a status and without secrets or hashes', async () => {
    const f = fakeContext()
    const d = await createKey(f.ctx, { device: DEVICE, expiresIn: 10 })
    const r = await createKey(f.ctx, { role: 'admin' })
    f.advance(10_000)
    const { keys } = await listKeys(f.ctx)
    expect(keys.map((k) => [k.kind, k.kid, k.status])).toEqual([
      ['role', r.kid, 'active'],
      ['device', d.kid, 'expired'],
    ])
    const dump = JSON.stringify(keys)
    for (const s of [d.key, r.key, sha256Hex(d.key), sha256Hex(r.key)]) expect(dump).not.toContain(s)
  })

  it('revokes by kid or by the whole key, idempotently, with an audit row each time', async () => {
    const f = fakeContext()
    const k = await createKey(f.ctx, { device: DEVICE })
    expect(await revokeKey(f.ctx, k.kid)).toEqual({ kid: k.kid, kind: 'device', changed: true, revokedAt: '2030-01-01T00:00:00.000Z', effectiveEverywhereAt: '2030-01-01T00:00:30.000Z', authCacheSeconds: 30 })
    expect(await revokeKey(f.ctx, k.key)).toMatchObject({ kid: k.kid, changed: false })
    expect(f.audit.events.map((e) => e.eventType)).toEqual(['key.create', 'key.revoke', 'key.revoke'])
    f.advance(AUTH_CACHE_TTL_MS)
    expect(await f.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })).toMatchObject({ ok: false, code: 'KEY_REVOKED' })
  })

  it('unknown kids are NotFound; text that is no kid or key is a usage error', async () => {
    const f = fakeContext()
    await expect(revokeKey(f.ctx, 'AAAAAAAAAAAA')).rejects.toBeInstanceOf(NotFoundError)
    await expect(revokeKey(f.ctx, 'not a kid')).rejects.toBeInstanceOf(UsageError)
    const k = await createKey(f.ctx, { role: 'admin' })
    await expect(revokeKey(f.ctx, `${k.key.slice(0, -1)}x`)).rejects.toBeInstanceOf(UsageError)
  })
})

describe('rotateKey (S06: the old key works until the grace ends, then 401)', () => {
  it('a device key: same device and name, the old key expires after the grace', async () => {
    const f = fakeContext()
    const old = await createKey(f.ctx, { device: DEVICE, name: 'boiler' })
    const rotated = await rotateKey(f.ctx, old.kid, { graceSeconds: 60 })
    expect(rotated).toMatchObject({ kind: 'device', deviceUuid: DEVICE, name: 'boiler', expiresAt: null, previous: { kid: old.kid, expiresAt: '2030-01-01T00:01:00.000Z' } })
    expect(rotated.kid).not.toBe(old.kid)
    const use = (key: string) => f.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: key })
    expect((await use(old.key)).ok).toBe(true)
    expect((await use(rotated.key)).ok).toBe(true)
    f.advance(59_999)
    expect((await use(old.key)).ok).toBe(true)
    f.advance(1)
    expect(await use(old.key)).toMatchObject({ ok: false, code: 'KEY_EXPIRED' })
    expect((await use(rotated.key)).ok).toBe(true)
    expect(f.audit.events.find((e) => e.eventType === 'key.rotate')).toMatchObject({ targetId: old.kid, details: expect.objectContaining({ new_kid: rotated.kid, grace_seconds: 60 }) as unknown })
  })

  it("a role key keeps its scope; the new key keeps the old one's lifetime; the grace never extends an expiry", async () => {
    const f = fakeContext()
    const old = await createKey(f.ctx, { role: 'source_writer', sourceId: 'ward-3', domains: ['health'], expiresIn: 30 })
    f.advance(10_000)
    const rotated = await rotateKey(f.ctx, old.kid, { graceSeconds: 3600 })
    expect(rotated).toMatchObject({ role: 'source_writer', allowedSourceId: 'ward-3', allowedDomains: ['health'], expiresAt: '2030-01-01T00:00:40.000Z', previous: { expiresAt: '2030-01-01T00:00:30.000Z' } })
  })

  it('refuses to rotate a revoked or expired key', async () => {
    const f = fakeContext()
    const k = await createKey(f.ctx, { role: 'admin' })
    await revokeKey(f.ctx, k.kid)
    await expect(rotateKey(f.ctx, k.kid, { graceSeconds: 0 })).rejects.toThrow(/is revoked/)
    await expect(rotateKey(f.ctx, k.kid, { graceSeconds: -1 })).rejects.toBeInstanceOf(UsageError)
  })
})
