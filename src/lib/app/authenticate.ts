import { createHash, timingSafeEqual } from 'node:crypto'

import type { Config } from '../config/index.js'
import { type AccessDecision, parseKey, type Role, type RoleScope, verifySourceAccess } from '../domain/keys.js'
import { normaliseUuid } from '../domain/uuid.js'
import type { Logger } from '../log/index.js'
import type { Clock } from '../ports/clock.js'
import type { DeviceKeyRecord, DeviceKeyStore } from '../ports/device-key-store.js'
import type { RoleKeyRecord, RoleKeyStore } from '../ports/role-key-store.js'
import type { SecurityAuditStore, SecurityEvent } from '../ports/security-audit-store.js'

/**
 * How long a verified key is trusted from memory: the revocation latency (a revoked or expired-by-
 * rotation key keeps working at most this long on a replica that has just verified it).
 */
export const AUTH_CACHE_TTL_MS = 30_000
/** How long an unknown or refused key is remembered, so a retry storm does not hit the database. */
export const AUTH_NEGATIVE_TTL_MS = 5_000
/** `last_used_at` and the device's `last_connection` are written at most this often per key / device. */
export const LAST_USED_WRITE_INTERVAL_MS = 60_000
/** Authentication failures written to `security_audit_log` per second; the rest are counted. */
export const AUDIT_EVENTS_PER_SECOND = 20

const CACHE_MAX_ENTRIES = 10_000
// Real keys are < 100 characters; anything far longer is refused without hashing work or a query.
const MAX_KEY_LENGTH = 1024

export type AuthFailureCode =
  | 'MISSING_CREDENTIAL'
  | 'MALFORMED_KEY'
  | 'INVALID_API_KEY'
  | 'WRONG_KEY_KIND'
  | 'DEVICE_MISMATCH'
  | 'DEVICE_DELETED'
  | 'KEY_INACTIVE'
  | 'KEY_REVOKED'
  | 'KEY_EXPIRED'
  | 'LEGACY_API_KEY_DISABLED'
  | 'GLOBAL_KEY_UNSET'
  | 'ROLE_NOT_ALLOWED'

export type Principal =
  | { type: 'device'; keyId: number; kid: string | null; deviceId: number; deviceUuid: string }
  | { type: 'role'; keyId: number; kid: string; role: Role; scope: RoleScope }
  /** INGEST_API_KEY. */
  | { type: 'global' }
  /** No credential, allowed only by INGEST_ALLOW_UNAUTHENTICATED=1 (development). */
  | { type: 'anonymous' }

/**
 * `missing`: no credential was sent (401 "API key required"); `invalid`: any other authentication
 * failure (401 "Invalid API key", the same body whatever the code); `forbidden`: a valid role key
 * whose role may not use the route (403). The code is for logs and the audit, never for the client.
 */
export type AuthResult = { ok: true; principal: Principal } | { ok: false; reason: 'missing' | 'invalid' | 'forbidden'; code: AuthFailureCode }

export interface RequestMeta {
  sourceIp?: string | undefined
  requestId?: string | undefined
  /** `http` (default), `websocket`, `mqtt`... */
  transport?: string | undefined
}

export interface AuthenticatorDeps {
  config: { auth: Pick<Config['auth'], 'ingestApiKey' | 'allowUnauthenticated' | 'legacyApiKeyAllowed'> }
  /** Device keys and devices (the IoT store's). */
  deviceKeys: Pick<DeviceKeyStore, 'findByKid' | 'findByHash' | 'markUsed' | 'touchDevice'>
  /** Role keys (the universal store's). */
  roleKeys: Pick<RoleKeyStore, 'findByKid' | 'findByHash' | 'markUsed'>
  /** The security audit log (the universal store's). */
  securityAudit: SecurityAuditStore
  clock: Pick<Clock, 'now'>
  logger: Pick<Logger, 'warn' | 'info' | 'debug'>
}

export interface Authenticator {
  /** `/ingest/packets`: X-Device-Key of that device, or the global key when LEGACY_API_KEY_ALLOWED. */
  authenticateDevice(input: { deviceUuid: string; deviceKey?: string | undefined; apiKey?: string | undefined } & RequestMeta): Promise<AuthResult>
  /** Global-key routes: INGEST_API_KEY, or a role key (`admin` when `requireRole: 'admin'`, any role for reads). */
  authenticateGlobal(input: { apiKey?: string | undefined; requireRole?: 'admin' | undefined } & RequestMeta): Promise<AuthResult>
  /** Role-key routes (universal ingest, WebSocket): the role principal. */
  authenticateRole(input: { apiKey?: string | undefined } & RequestMeta): Promise<AuthResult>
  /**
   * The source/domain rule of role keys (reference §2.3), for the role-key routes; other principals
   * are denied. A denial is audited (`source.ownership_denied`).
   */
  authorizeWrite(principal: Principal, target: { sourceId: string; domain: string } & RequestMeta): AccessDecision
  /** Waits for the best-effort writes in flight (last_used, audit): graceful shutdown and tests. */
  drain(): Promise<void>
  stats(): { auditWritten: number; auditSuppressed: number; cachedKeys: number }
}

function sha256(text: string): Buffer {
  return createHash('sha256').update(text, 'utf8').digest()
}

/** Constant-time equality of two 32-byte digests (a malformed stored hash simply does not match). */
function sameDigest(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b)
}

/** A bounded map whose entries expire; the oldest entry goes first when full. */
class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>()
  constructor(private readonly max: number) {}
  get(key: string, now: number): V | undefined {
    const e = this.entries.get(key)
    if (!e) return undefined
    if (e.until <= now) {
      this.entries.delete(key)
      return undefined
    }
    return e.value
  }
  set(key: string, value: V, until: number): void {
    this.entries.delete(key)
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next()
      if (!oldest.done) this.entries.delete(oldest.value)
    }
    this.entries.set(key, { value, until })
  }
  get size(): number {
    return this.entries.size
  }
}

type Checked<R> = { ok: true; record: R } | { ok: false; code: AuthFailureCode }

function checkState(r: { revokedAt: number | null; isActive: boolean; expiresAt: number | null }, now: number): AuthFailureCode | undefined {
  if (r.revokedAt !== null) return 'KEY_REVOKED'
  if (!r.isActive) return 'KEY_INACTIVE'
  if (r.expiresAt !== null && r.expiresAt <= now) return 'KEY_EXPIRED'
  return undefined
}

/**
 * Builds the authenticator the HTTP, WebSocket and MQTT layers share. Keys are looked up by kid
 * (prefixed keys, after the checksum) or by SHA-256 (legacy device keys), compared as 32-byte
 * digests with `timingSafeEqual`, and cached by the SHA-256 of the presented key.
 */
export function createAuthenticator(deps: AuthenticatorDeps): Authenticator {
  const { config, deviceKeys, roleKeys, securityAudit, clock, logger } = deps
  const globalDigest = config.auth.ingestApiKey ? sha256(config.auth.ingestApiKey) : undefined
  const deviceCache = new TtlCache<DeviceKeyRecord | null>(CACHE_MAX_ENTRIES)
  const roleCache = new TtlCache<RoleKeyRecord | null>(CACHE_MAX_ENTRIES)
  const lookups = new Map<string, Promise<unknown>>()
  const lastTouched = new Map<string, number>()
  const inFlight = new Set<Promise<void>>()
  let auditWindow = -1
  let auditInWindow = 0
  let auditSuppressed = 0
  let auditSuppressedTotal = 0
  let auditWritten = 0

  function background(work: () => Promise<void>, what: string): void {
    const p = work()
      .catch((err: unknown) => logger.warn({ err }, `${what} failed (best effort)`))
      .finally(() => inFlight.delete(p))
    inFlight.add(p)
  }

  function audit(event: SecurityEvent): void {
    const now = clock.now()
    const window = Math.floor(now / 1000)
    if (window !== auditWindow) {
      if (auditSuppressed > 0) {
        const dropped = auditSuppressed
        logger.warn({ dropped }, 'security audit events suppressed by the rate bound')
        background(() => securityAudit.record({ eventType: 'audit.suppressed', outcome: 'failure', actorType: 'system', details: { dropped }, at: now }), 'security audit write')
        auditWritten++
      }
      auditWindow = window
      auditInWindow = 0
      auditSuppressed = 0
    }
    if (auditInWindow >= AUDIT_EVENTS_PER_SECOND) {
      auditSuppressed++
      auditSuppressedTotal++
      return
    }
    auditInWindow++
    auditWritten++
    logger.info({ event: event.eventType, code: event.reasonCode, kid: event.actorKid, ip: event.sourceIp }, 'authentication refused')
    background(() => securityAudit.record({ ...event, at: now }), 'security audit write')
  }

  function fail(reason: 'missing' | 'invalid' | 'forbidden', code: AuthFailureCode, meta: RequestMeta, actor: Partial<SecurityEvent> & { actorType: SecurityEvent['actorType'] }): AuthResult {
    audit({
      eventType: reason === 'forbidden' ? 'authz.denied' : 'auth.failure',
      outcome: reason === 'forbidden' ? 'denied' : 'failure',
      reasonCode: code,
      sourceIp: meta.sourceIp ?? null,
      requestId: meta.requestId ?? null,
      transport: meta.transport ?? 'http',
      ...actor,
    })
    return { ok: false, reason, code }
  }

  /** At most one write per key (or device) per interval, never awaited by the request. */
  function touch(slot: string, write: (now: number) => Promise<void>): void {
    const now = clock.now()
    const last = lastTouched.get(slot)
    if (last !== undefined && now - last < LAST_USED_WRITE_INTERVAL_MS) return
    if (lastTouched.size >= CACHE_MAX_ENTRIES) lastTouched.clear()
    lastTouched.set(slot, now)
    background(() => write(now), 'last-used write')
  }

  /** One database lookup per presented key at a time, remembered for the TTL (negatives briefly). */
  async function lookup<R extends { revokedAt: number | null; isActive: boolean; expiresAt: number | null }>(
    tag: 'device' | 'role',
    cache: TtlCache<R | null>,
    cacheKey: string,
    load: () => Promise<R | null>,
  ): Promise<R | null> {
    const cached = cache.get(cacheKey, clock.now())
    if (cached !== undefined) return cached
    const slot = `${tag}:${cacheKey}`
    const pending = lookups.get(slot) as Promise<R | null> | undefined
    if (pending) return pending
    const p = load()
      .then((record) => {
        const now = clock.now()
        const good = record !== null && checkState(record, now) === undefined
        cache.set(cacheKey, record, now + (good ? AUTH_CACHE_TTL_MS : AUTH_NEGATIVE_TTL_MS))
        return record
      })
      .finally(() => lookups.delete(slot))
    lookups.set(slot, p)
    return p
  }

  async function verifyDeviceKey(key: string, deviceUuid: string): Promise<Checked<DeviceKeyRecord> & { kid?: string }> {
    if (key.length > MAX_KEY_LENGTH) return { ok: false, code: 'MALFORMED_KEY' }
    const parsed = parseKey(key)
    if (parsed.kind === 'role') return { ok: false, code: 'WRONG_KEY_KIND', ...(parsed.kid ? { kid: parsed.kid } : {}) }
    if (parsed.kind === 'device' && !parsed.valid) return { ok: false, code: 'MALFORMED_KEY' }
    const digest = sha256(key)
    const hex = digest.toString('hex')
    const record = await lookup('device', deviceCache, hex, async () => {
      if (parsed.kind === 'legacy') return deviceKeys.findByHash(hex)
      const found = await deviceKeys.findByKid(parsed.kid)
      return found && sameDigest(Buffer.from(found.hash, 'hex'), digest) ? found : null
    })
    const kid = parsed.kind === 'device' ? { kid: parsed.kid } : {}
    if (!record) return { ok: false, code: 'INVALID_API_KEY', ...kid }
    if (record.deviceUuid !== deviceUuid) return { ok: false, code: 'DEVICE_MISMATCH', ...kid }
    const state = checkState(record, clock.now()) ?? (record.deviceDeleted ? 'DEVICE_DELETED' : undefined)
    if (state) return { ok: false, code: state, ...kid }
    return { ok: true, record }
  }

  async function verifyRoleKey(key: string): Promise<Checked<RoleKeyRecord> & { kid?: string }> {
    if (key.length > MAX_KEY_LENGTH) return { ok: false, code: 'MALFORMED_KEY' }
    const parsed = parseKey(key)
    if (parsed.kind === 'device') return { ok: false, code: 'WRONG_KEY_KIND', ...(parsed.kid ? { kid: parsed.kid } : {}) }
    if (parsed.kind === 'role' && !parsed.valid) return { ok: false, code: 'MALFORMED_KEY' }
    const digest = sha256(key)
    const hex = digest.toString('hex')
    const record = await lookup('role', roleCache, hex, async () => {
      // Unprefixed role keys can only be rows carried over from the legacy api_keys table.
      if (parsed.kind === 'legacy') return roleKeys.findByHash(hex)
      const found = await roleKeys.findByKid(parsed.kid)
      return found && sameDigest(Buffer.from(found.hash, 'hex'), digest) ? found : null
    })
    const kid = parsed.kind === 'role' ? { kid: parsed.kid } : {}
    if (!record) return { ok: false, code: 'INVALID_API_KEY', ...kid }
    const state = checkState(record, clock.now())
    if (state) return { ok: false, code: state, ...kid }
    return { ok: true, record }
  }

  function isGlobalKey(key: string): boolean {
    return globalDigest !== undefined && sameDigest(sha256(key), globalDigest)
  }

  function rolePrincipal(r: RoleKeyRecord): Principal {
    touch(`role:${r.id}`, (now) => roleKeys.markUsed([r.id], now))
    return { type: 'role', keyId: r.id, kid: r.kid, role: r.role, scope: { role: r.role, allowedSourceId: r.allowedSourceId, allowedDomains: r.allowedDomains } }
  }

  return {
    async authenticateDevice(input) {
      const deviceUuid = normaliseUuid(input.deviceUuid) ?? input.deviceUuid.toLowerCase()
      const target = { targetType: 'device', targetId: deviceUuid }
      if (input.deviceKey) {
        const v = await verifyDeviceKey(input.deviceKey, deviceUuid)
        if (!v.ok) return fail('invalid', v.code, input, { actorType: 'device', actorKid: v.kid ?? null, ...target })
        const r = v.record
        touch(`device-key:${r.id}`, (now) => deviceKeys.markUsed([r.id], now))
        touch(`device:${r.deviceId}`, (now) => deviceKeys.touchDevice(r.deviceId, now))
        return { ok: true, principal: { type: 'device', keyId: r.id, kid: r.kid, deviceId: r.deviceId, deviceUuid: r.deviceUuid } }
      }
      if (input.apiKey) {
        // Device auth is always on: the global key stands in for a device key only when allowed.
        if (!config.auth.legacyApiKeyAllowed) return fail('invalid', 'LEGACY_API_KEY_DISABLED', input, { actorType: 'api_key', ...target })
        if (globalDigest === undefined) return fail('invalid', 'GLOBAL_KEY_UNSET', input, { actorType: 'api_key', ...target })
        if (isGlobalKey(input.apiKey)) return { ok: true, principal: { type: 'global' } }
        return fail('invalid', 'INVALID_API_KEY', input, { actorType: 'api_key', ...target })
      }
      return fail('missing', 'MISSING_CREDENTIAL', input, { actorType: 'anonymous', ...target })
    },

    async authenticateGlobal(input) {
      const key = input.apiKey
      if (!key) {
        if (globalDigest === undefined && config.auth.allowUnauthenticated) return { ok: true, principal: { type: 'anonymous' } }
        return fail('missing', 'MISSING_CREDENTIAL', input, { actorType: 'anonymous' })
      }
      if (isGlobalKey(key)) return { ok: true, principal: { type: 'global' } }
      if (globalDigest === undefined && config.auth.allowUnauthenticated && parseKey(key).kind === 'legacy') return { ok: true, principal: { type: 'anonymous' } }
      const v = await verifyRoleKey(key)
      if (!v.ok) {
        const code = v.code === 'INVALID_API_KEY' && globalDigest === undefined && parseKey(key).kind === 'legacy' ? 'GLOBAL_KEY_UNSET' : v.code
        return fail('invalid', code, input, { actorType: 'api_key', actorKid: v.kid ?? null })
      }
      if (input.requireRole === 'admin' && v.record.role !== 'admin') {
        return fail('forbidden', 'ROLE_NOT_ALLOWED', input, { actorType: 'api_key', actorKid: v.record.kid, actorRole: v.record.role })
      }
      return { ok: true, principal: rolePrincipal(v.record) }
    },

    async authenticateRole(input) {
      if (!input.apiKey) return fail('missing', 'MISSING_CREDENTIAL', input, { actorType: 'anonymous' })
      const v = await verifyRoleKey(input.apiKey)
      if (!v.ok) return fail('invalid', v.code, input, { actorType: 'api_key', actorKid: v.kid ?? null })
      return { ok: true, principal: rolePrincipal(v.record) }
    },

    authorizeWrite(principal, target) {
      // Only role keys carry a source/domain scope; any other principal writes no universal source.
      const decision: AccessDecision =
        principal.type === 'role'
          ? verifySourceAccess(principal.scope, target.sourceId, target.domain)
          : { allowed: false, code: 'SOURCE_NOT_ALLOWED', detail: `Not authorized to write to source_id '${target.sourceId}'` }
      if (!decision.allowed) {
        audit({
          eventType: 'source.ownership_denied',
          outcome: 'denied',
          actorType: principal.type === 'device' ? 'device' : 'api_key',
          actorKid: principal.type === 'role' || principal.type === 'device' ? principal.kid : null,
          actorRole: principal.type === 'role' ? principal.role : null,
          sourceIp: target.sourceIp ?? null,
          requestId: target.requestId ?? null,
          transport: target.transport ?? 'http',
          targetType: 'source',
          targetId: `${target.domain}:${target.sourceId}`,
          reasonCode: decision.code,
        })
      }
      return decision
    },

    async drain() {
      while (inFlight.size > 0) await Promise.allSettled([...inFlight])
    },

    stats() {
      return { auditWritten, auditSuppressed: auditSuppressedTotal, cachedKeys: deviceCache.size + roleCache.size }
    },
  }
}
