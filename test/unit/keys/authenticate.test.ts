import type * as Crypto from 'node:crypto'
import { timingSafeEqual } from 'node:crypto'

import { beforeEach, describe, expect, it, vi } from 'vitest'

import { AUDIT_EVENTS_PER_SECOND, AUTH_CACHE_TTL_MS, AUTH_NEGATIVE_TTL_MS, type AuthResult, createAuthenticator, LAST_USED_WRITE_INTERVAL_MS } from '../../../src/lib/app/authenticate.js'
import { generateKey, sha256Hex } from '../../../src/lib/app/keys.js'
import { formatKey, type Role } from '../../../src/lib/domain/keys.js'
import { FakeDeviceKeyStore, FakeRoleKeyStore, FakeSecurityAudit } from './fake-key-store.js'

vi.mock('node:crypto', async (importOriginal) => {
  const actual = await importOriginal<typeof Crypto>()
  return { ...actual, timingSafeEqual: vi.fn(actual.timingSafeEqual) }
})

const DEVICE = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
const OTHER = '11111111-2222-4333-8444-555555555555'
const GLOBAL = 'the-global-ingest-key-0123456789'
const silent = { warn: () => undefined, info: () => undefined, debug: () => undefined }

interface Setup {
  ingestApiKey?: string | undefined
  allowUnauthenticated?: boolean
  legacyApiKeyAllowed?: boolean
}

function setup(opts: Setup = {}) {
  let t = 1_700_000_000_000
  const clock = { now: () => t }
  const deviceKeys = new FakeDeviceKeyStore()
  const roleKeys = new FakeRoleKeyStore()
  const audit = new FakeSecurityAudit()
  deviceKeys.addDevice(DEVICE)
  deviceKeys.addDevice(OTHER)
  const auth = createAuthenticator({
    config: { auth: { ingestApiKey: 'ingestApiKey' in opts ? opts.ingestApiKey : GLOBAL, allowUnauthenticated: opts.allowUnauthenticated ?? false, legacyApiKeyAllowed: opts.legacyApiKeyAllowed ?? false } },
    deviceKeys,
    roleKeys,
    securityAudit: audit,
    clock,
    logger: silent,
  })
  const deviceKey = async (uuid = DEVICE, expiresAt: number | null = null) => {
    const g = generateKey('device')
    await deviceKeys.create({ deviceUuid: uuid, kid: g.kid, hash: g.hash, name: null, expiresAt, createdAt: t })
    return g
  }
  const roleKey = async (role: Role, expiresAt: number | null = null) => {
    const g = generateKey('role')
    await roleKeys.create({ kid: g.kid, hash: g.hash, prefix: g.key.slice(0, 8), name: null, role, allowedSourceId: role === 'source_writer' ? 'ward-3' : null, allowedDomains: role === 'source_writer' ? ['health'] : [], expiresAt, createdAt: t, createdBy: 'test' })
    return g
  }
  return { auth, deviceKeys, roleKeys, audit, deviceKey, roleKey, advance: (ms: number) => (t += ms), now: () => t }
}

const flip = (key: string, i: number) => key.slice(0, i) + (key[i] === 'A' ? 'B' : 'A') + key.slice(i + 1)

describe('authenticateDevice', () => {
  it('accepts the device key of that device, with the device principal', async () => {
    const s = setup()
    const k = await s.deviceKey()
    const r = await s.auth.authenticateDevice({ deviceUuid: DEVICE.toUpperCase(), deviceKey: k.key, sourceIp: '10.0.0.1' })
    expect(r).toMatchObject({ ok: true, principal: { type: 'device', kid: k.kid, deviceUuid: DEVICE } })
  })

  it('accepts a legacy (unprefixed) device key by its SHA-256', async () => {
    const s = setup()
    s.deviceKeys.addLegacyKey(DEVICE, sha256Hex('legacy-key-from-the-backend'))
    expect(await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: 'legacy-key-from-the-backend' })).toMatchObject({ ok: true, principal: { type: 'device', kid: null } })
    expect(s.deviceKeys.calls['findByHash']).toBe(1)
    expect(await s.auth.authenticateDevice({ deviceUuid: OTHER, deviceKey: 'legacy-key-from-the-backend' })).toEqual({ ok: false, reason: 'invalid', code: 'DEVICE_MISMATCH' })
  })

  it('every failure answers the same outward shape; only the logged code differs', async () => {
    const s = setup({ legacyApiKeyAllowed: false })
    const good = await s.deviceKey()
    const revoked = await s.deviceKey()
    await s.deviceKeys.revoke(revoked.kid, s.now())
    const expired = await s.deviceKey(DEVICE, s.now() - 1)
    const inactive = await s.deviceKey()
    const row = s.deviceKeys.keys.find((k) => k.kid === inactive.kid)
    if (row) row.isActive = false
    const deletedUuid = '99999999-2222-4333-8444-555555555555'
    s.deviceKeys.addDevice(deletedUuid)
    const onDeleted = await s.deviceKey(deletedUuid)
    const dev = s.deviceKeys.devices.get(deletedUuid)
    if (dev) dev.deleted = true
    const role = await s.roleKey('admin')
    const cases: Array<[string, Parameters<typeof s.auth.authenticateDevice>[0]]> = [
      ['MALFORMED_KEY', { deviceUuid: DEVICE, deviceKey: flip(good.key, 20) }],
      ['INVALID_API_KEY', { deviceUuid: DEVICE, deviceKey: generateKey('device').key }],
      ['INVALID_API_KEY', { deviceUuid: DEVICE, deviceKey: formatKey('device', good.kid, 'x'.repeat(32)) }],
      ['INVALID_API_KEY', { deviceUuid: DEVICE, deviceKey: 'unknown-legacy-key' }],
      ['DEVICE_MISMATCH', { deviceUuid: OTHER, deviceKey: good.key }],
      ['KEY_REVOKED', { deviceUuid: DEVICE, deviceKey: revoked.key }],
      ['KEY_EXPIRED', { deviceUuid: DEVICE, deviceKey: expired.key }],
      ['KEY_INACTIVE', { deviceUuid: DEVICE, deviceKey: inactive.key }],
      ['DEVICE_DELETED', { deviceUuid: deletedUuid, deviceKey: onDeleted.key }],
      ['WRONG_KEY_KIND', { deviceUuid: DEVICE, deviceKey: role.key }],
      ['LEGACY_API_KEY_DISABLED', { deviceUuid: DEVICE, apiKey: GLOBAL }],
    ]
    const results: AuthResult[] = []
    for (const [code, input] of cases) {
      const r = await s.auth.authenticateDevice(input)
      expect(r, code).toEqual({ ok: false, reason: 'invalid', code })
      results.push(r)
    }
    expect(new Set(results.map((r) => JSON.stringify(Object.keys(r).sort())))).toEqual(new Set(['["code","ok","reason"]']))
    expect(await s.auth.authenticateDevice({ deviceUuid: DEVICE })).toEqual({ ok: false, reason: 'missing', code: 'MISSING_CREDENTIAL' })
  })

  it('a bad checksum and a role key are refused without a database query', async () => {
    const s = setup()
    const k = await s.deviceKey()
    for (let i = 5; i < k.key.length; i += 7) await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: flip(k.key, i) })
    await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: generateKey('role').key })
    await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: 'x'.repeat(5000) })
    expect(s.deviceKeys.lookups()).toBe(0)
  })

  it('X-API-Key stands in only with LEGACY_API_KEY_ALLOWED and the right global key', async () => {
    const allowed = setup({ legacyApiKeyAllowed: true })
    expect(await allowed.auth.authenticateDevice({ deviceUuid: DEVICE, apiKey: GLOBAL })).toEqual({ ok: true, principal: { type: 'global' } })
    expect(await allowed.auth.authenticateDevice({ deviceUuid: DEVICE, apiKey: 'any value' })).toEqual({ ok: false, reason: 'invalid', code: 'INVALID_API_KEY' })
    const unset = setup({ legacyApiKeyAllowed: true, ingestApiKey: undefined, allowUnauthenticated: true })
    expect(await unset.auth.authenticateDevice({ deviceUuid: DEVICE, apiKey: 'any value' })).toEqual({ ok: false, reason: 'invalid', code: 'GLOBAL_KEY_UNSET' })
    expect(await unset.auth.authenticateDevice({ deviceUuid: DEVICE })).toMatchObject({ ok: false, reason: 'missing' })
  })

  it('a device key is checked before X-API-Key: a bad device key is not rescued by the global key', async () => {
    const s = setup({ legacyApiKeyAllowed: true })
    expect(await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: generateKey('device').key, apiKey: GLOBAL })).toMatchObject({ ok: false, code: 'INVALID_API_KEY' })
  })

  it('a database outage propagates (503 upstream), never a 401', async () => {
    const s = setup()
    const k = await s.deviceKey()
    s.deviceKeys.failLookups = new Error('connection refused')
    await expect(s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })).rejects.toThrow('connection refused')
  })
})

describe('cache, revocation latency and negative cache', () => {
  it(`a revoked key keeps working from the cache for at most ${AUTH_CACHE_TTL_MS} ms`, async () => {
    const s = setup()
    const k = await s.deviceKey()
    const ok = () => s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })
    expect((await ok()).ok).toBe(true)
    await s.deviceKeys.revoke(k.kid, s.now())
    s.advance(AUTH_CACHE_TTL_MS - 1)
    expect((await ok()).ok).toBe(true)
    expect(s.deviceKeys.lookups()).toBe(1)
    s.advance(1)
    expect(await ok()).toEqual({ ok: false, reason: 'invalid', code: 'KEY_REVOKED' })
    expect(s.deviceKeys.lookups()).toBe(2)
  })

  it('an expiry takes effect exactly on time even for a cached key (rotation grace)', async () => {
    const s = setup()
    const k = await s.deviceKey(DEVICE, s.now() + 10_000)
    expect((await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })).ok).toBe(true)
    s.advance(10_000)
    expect(await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })).toMatchObject({ ok: false, code: 'KEY_EXPIRED' })
    expect(s.deviceKeys.lookups()).toBe(1)
  })

  it(`an unknown key is remembered for ${AUTH_NEGATIVE_TTL_MS} ms, then looked up again`, async () => {
    const s = setup()
    const unknown = generateKey('device').key
    for (let i = 0; i < 5; i++) await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: unknown })
    expect(s.deviceKeys.lookups()).toBe(1)
    s.advance(AUTH_NEGATIVE_TTL_MS)
    await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: unknown })
    expect(s.deviceKeys.lookups()).toBe(2)
  })

  it('concurrent requests with the same uncached key share one lookup', async () => {
    const s = setup()
    const k = await s.deviceKey()
    const rs = await Promise.all(Array.from({ length: 20 }, () => s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })))
    expect(rs.every((r) => r.ok)).toBe(true)
    expect(s.deviceKeys.lookups()).toBe(1)
  })

  it('a key valid for one device stays refused for another even when cached', async () => {
    const s = setup()
    const k = await s.deviceKey()
    expect((await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })).ok).toBe(true)
    expect(await s.auth.authenticateDevice({ deviceUuid: OTHER, deviceKey: k.key })).toMatchObject({ ok: false, code: 'DEVICE_MISMATCH' })
  })
})

describe('last_used_at and last_connection', () => {
  it(`are written at most once per ${LAST_USED_WRITE_INTERVAL_MS} ms per key and device`, async () => {
    const s = setup()
    const k = await s.deviceKey()
    for (let i = 0; i < 10; i++) {
      await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })
      s.advance(5_000)
    }
    await s.auth.drain()
    expect(s.deviceKeys.calls['markUsed']).toBe(1)
    expect(s.deviceKeys.calls['touchDevice']).toBe(1)
    expect(s.deviceKeys.devices.get(DEVICE)).toMatchObject({ status: 'online' })
    s.advance(LAST_USED_WRITE_INTERVAL_MS)
    await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })
    await s.auth.drain()
    expect(s.deviceKeys.calls['markUsed']).toBe(2)
    expect(s.deviceKeys.calls['touchDevice']).toBe(2)
  })

  it('never block the request (a hanging write does not delay the answer)', async () => {
    const s = setup()
    const k = await s.deviceKey()
    s.deviceKeys.hangTouches = true
    const r = await Promise.race([s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key }), new Promise((resolve) => setTimeout(() => resolve('timeout'), 500))])
    expect(r).toMatchObject({ ok: true })
  })

  it('a failing write is only logged', async () => {
    const s = setup()
    const k = await s.deviceKey()
    s.deviceKeys.touchDevice = () => Promise.reject(new Error('disk full'))
    expect((await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })).ok).toBe(true)
    await s.auth.drain()
  })
})

describe('authenticateGlobal', () => {
  beforeEach(() => {
    vi.mocked(timingSafeEqual).mockClear()
  })

  it('compares the global key in constant time on 32-byte digests', async () => {
    const s = setup()
    expect(await s.auth.authenticateGlobal({ apiKey: GLOBAL })).toEqual({ ok: true, principal: { type: 'global' } })
    expect(await s.auth.authenticateGlobal({ apiKey: `${GLOBAL}x` })).toMatchObject({ ok: false, reason: 'invalid' })
    expect(await s.auth.authenticateGlobal({ apiKey: 'short' })).toMatchObject({ ok: false, reason: 'invalid' })
    const calls = vi.mocked(timingSafeEqual).mock.calls
    expect(calls.length).toBeGreaterThanOrEqual(3)
    for (const [a, b] of calls) {
      expect((a as Buffer).length).toBe(32)
      expect((b as Buffer).length).toBe(32)
    }
  })

  it('prefixed keys are compared in constant time too (after the lookup by kid)', async () => {
    const s = setup()
    const k = await s.roleKey('admin')
    vi.mocked(timingSafeEqual).mockClear()
    await s.auth.authenticateGlobal({ apiKey: k.key })
    expect(vi.mocked(timingSafeEqual)).toHaveBeenCalled()
  })

  it('is closed when INGEST_API_KEY is unset', async () => {
    const s = setup({ ingestApiKey: undefined })
    expect(await s.auth.authenticateGlobal({})).toEqual({ ok: false, reason: 'missing', code: 'MISSING_CREDENTIAL' })
    expect(await s.auth.authenticateGlobal({ apiKey: 'anything' })).toEqual({ ok: false, reason: 'invalid', code: 'GLOBAL_KEY_UNSET' })
    expect(await s.auth.authenticateGlobal({ apiKey: '' })).toMatchObject({ ok: false, reason: 'missing' })
  })

  it('INGEST_ALLOW_UNAUTHENTICATED opens it only while INGEST_API_KEY is unset', async () => {
    const open = setup({ ingestApiKey: undefined, allowUnauthenticated: true })
    expect(await open.auth.authenticateGlobal({})).toEqual({ ok: true, principal: { type: 'anonymous' } })
    const set = setup({ allowUnauthenticated: true })
    expect(await set.auth.authenticateGlobal({})).toMatchObject({ ok: false, reason: 'missing' })
    expect(await set.auth.authenticateGlobal({ apiKey: 'wrong' })).toMatchObject({ ok: false, reason: 'invalid' })
  })

  it('role keys: admin writes; any role reads; other roles are forbidden on writes', async () => {
    const s = setup()
    const admin = await s.roleKey('admin')
    const reader = await s.roleKey('read_only')
    const writer = await s.roleKey('source_writer')
    expect(await s.auth.authenticateGlobal({ apiKey: admin.key, requireRole: 'admin' })).toMatchObject({ ok: true, principal: { type: 'role', role: 'admin', kid: admin.kid } })
    expect(await s.auth.authenticateGlobal({ apiKey: reader.key })).toMatchObject({ ok: true, principal: { role: 'read_only' } })
    expect(await s.auth.authenticateGlobal({ apiKey: writer.key })).toMatchObject({ ok: true, principal: { role: 'source_writer' } })
    expect(await s.auth.authenticateGlobal({ apiKey: reader.key, requireRole: 'admin' })).toEqual({ ok: false, reason: 'forbidden', code: 'ROLE_NOT_ALLOWED' })
    expect(await s.auth.authenticateGlobal({ apiKey: writer.key, requireRole: 'admin' })).toEqual({ ok: false, reason: 'forbidden', code: 'ROLE_NOT_ALLOWED' })
  })

  it('a device key is not a global credential; a revoked or expired role key is refused', async () => {
    const s = setup()
    const dk = await s.deviceKey()
    expect(await s.auth.authenticateGlobal({ apiKey: dk.key })).toEqual({ ok: false, reason: 'invalid', code: 'WRONG_KEY_KIND' })
    const revoked = await s.roleKey('admin')
    await s.roleKeys.revoke(revoked.kid, s.now())
    expect(await s.auth.authenticateGlobal({ apiKey: revoked.key })).toEqual({ ok: false, reason: 'invalid', code: 'KEY_REVOKED' })
    const expiring = await s.roleKey('admin', s.now() + 1000)
    expect((await s.auth.authenticateGlobal({ apiKey: expiring.key })).ok).toBe(true)
    s.advance(1000)
    expect(await s.auth.authenticateGlobal({ apiKey: expiring.key })).toEqual({ ok: false, reason: 'invalid', code: 'KEY_EXPIRED' })
  })
})

describe('authenticateRole and authorizeWrite', () => {
  it('returns the role principal and applies the source/domain rule', async () => {
    const s = setup()
    const writer = await s.roleKey('source_writer')
    const r = await s.auth.authenticateRole({ apiKey: writer.key, sourceIp: '10.0.0.9' })
    if (!r.ok) throw new Error('expected ok')
    expect(r.principal).toMatchObject({ type: 'role', role: 'source_writer', scope: { allowedSourceId: 'ward-3', allowedDomains: ['health'] } })
    expect(s.auth.authorizeWrite(r.principal, { sourceId: 'ward-3', domain: 'health' })).toEqual({ allowed: true })
    expect(s.auth.authorizeWrite(r.principal, { sourceId: 'ward-4', domain: 'health' })).toMatchObject({ allowed: false, detail: "Not authorized to write to source_id 'ward-4'" })
    await s.auth.drain()
    expect(s.audit.events.at(-1)).toMatchObject({ eventType: 'source.ownership_denied', outcome: 'denied', actorKid: writer.kid, actorRole: 'source_writer', reasonCode: 'SOURCE_NOT_ALLOWED' })
    expect(await s.auth.authenticateRole({})).toEqual({ ok: false, reason: 'missing', code: 'MISSING_CREDENTIAL' })
    expect(await s.auth.authenticateRole({ apiKey: GLOBAL })).toEqual({ ok: false, reason: 'invalid', code: 'INVALID_API_KEY' })
  })

  it('role keys record last_used_at at most once a minute', async () => {
    const s = setup()
    const k = await s.roleKey('read_only')
    for (let i = 0; i < 5; i++) await s.auth.authenticateRole({ apiKey: k.key })
    await s.auth.drain()
    expect(s.roleKeys.calls['markUsed']).toBe(1)
  })
})

describe('security audit of failures', () => {
  it('records every failure with its code and never the key', async () => {
    const s = setup()
    const k = await s.deviceKey()
    const wrong = formatKey('device', k.kid, 'Z'.repeat(32))
    await s.auth.authenticateDevice({ deviceUuid: OTHER, deviceKey: k.key, sourceIp: '10.1.2.3', requestId: 'req-1' })
    await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: wrong, sourceIp: '10.1.2.3' })
    await s.auth.authenticateGlobal({ apiKey: 'not-the-global-key', sourceIp: '10.1.2.4' })
    await s.auth.drain()
    expect(s.audit.events.map((e) => [e.eventType, e.outcome, e.reasonCode])).toEqual([
      ['auth.failure', 'failure', 'DEVICE_MISMATCH'],
      ['auth.failure', 'failure', 'INVALID_API_KEY'],
      ['auth.failure', 'failure', 'INVALID_API_KEY'],
    ])
    expect(s.audit.events[0]).toMatchObject({ actorType: 'device', actorKid: k.kid, sourceIp: '10.1.2.3', requestId: 'req-1', transport: 'http', targetType: 'device', targetId: OTHER })
    const dump = JSON.stringify(s.audit.events)
    for (const secret of [k.key, wrong, 'not-the-global-key', GLOBAL, k.hash]) expect(dump).not.toContain(secret)
  })

  it(`a flood writes at most ${AUDIT_EVENTS_PER_SECOND} rows a second and counts the rest`, async () => {
    const s = setup()
    for (let i = 0; i < 500; i++) await s.auth.authenticateGlobal({ apiKey: `bad-${i}` })
    await s.auth.drain()
    expect(s.audit.events).toHaveLength(AUDIT_EVENTS_PER_SECOND)
    s.advance(1000)
    await s.auth.authenticateGlobal({ apiKey: 'one-more' })
    await s.auth.drain()
    expect(s.audit.events.at(-2)).toMatchObject({ eventType: 'audit.suppressed', details: { dropped: 500 - AUDIT_EVENTS_PER_SECOND } })
    expect(s.auth.stats().auditSuppressed).toBe(500 - AUDIT_EVENTS_PER_SECOND)
  })

  it('successes are not audited', async () => {
    const s = setup()
    const k = await s.deviceKey()
    await s.auth.authenticateDevice({ deviceUuid: DEVICE, deviceKey: k.key })
    await s.auth.authenticateGlobal({ apiKey: GLOBAL })
    await s.auth.drain()
    expect(s.audit.events).toEqual([])
  })
})

describe('authorizeWrite for principals without a role scope', () => {
  it('denies the global key, devices and anonymous callers on role-key routes', async () => {
    const s = setup()
    for (const principal of [{ type: 'global' as const }, { type: 'anonymous' as const }, { type: 'device' as const, keyId: 1, kid: 'AAAAAAAAAAAA', deviceId: 1, deviceUuid: DEVICE }]) {
      expect(s.auth.authorizeWrite(principal, { sourceId: 'ward-3', domain: 'health' })).toMatchObject({ allowed: false, code: 'SOURCE_NOT_ALLOWED' })
    }
    await s.auth.drain()
    expect(s.audit.events.filter((e) => e.eventType === 'source.ownership_denied')).toHaveLength(3)
  })
})
