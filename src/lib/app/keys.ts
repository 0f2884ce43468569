import { createHash, randomBytes } from 'node:crypto'
import { userInfo } from 'node:os'

import {
  formatKey,
  isKid,
  KID_LENGTH,
  keyDisplayPrefix,
  type KeyKind,
  parseKey,
  randomBase62,
  type Role,
  SECRET_LENGTH,
  validateKeyRequest,
} from '../domain/keys.js'
import { NotFoundError, UsageError } from '../errors/index.js'
import type { DeviceKeyRecord, DeviceKeyStore, DeviceKeySummary } from '../ports/device-key-store.js'
import type { RoleKeyRecord, RoleKeyStore, RoleKeySummary } from '../ports/role-key-store.js'
import type { SecurityAuditStore } from '../ports/security-audit-store.js'
import { AUTH_CACHE_TTL_MS } from './authenticate.js'
import type { AppContext } from './context.js'

// ---------------------------------------------------------------- key material

/** Lower-case hex SHA-256 of the UTF-8 text: what the stores hold for a key. */
export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

export interface KeyMaterial {
  key: string
  kid: string
  hash: string
}

/** A new key from the CSPRNG: kid (public) and secret (~190 bits), with its checksum and hash. */
export function generateKey(kind: KeyKind): KeyMaterial {
  const kid = randomBase62(KID_LENGTH, randomBytes)
  const key = formatKey(kind, kid, randomBase62(SECRET_LENGTH, randomBytes))
  return { key, kid, hash: sha256Hex(key) }
}

// ---------------------------------------------------------------- store access

// Device keys (and devices) live in the IoT store; role keys and the security audit log in the universal one.
const deviceKeys = (ctx: AppContext): DeviceKeyStore => ctx.iot.deviceKeys
const roleKeys = (ctx: AppContext): RoleKeyStore => ctx.universal.roleKeys
const securityAudit = (ctx: AppContext): SecurityAuditStore => ctx.universal.securityAudit

function cliActor(): string {
  try {
    return `cli:${userInfo().username}`
  } catch {
    // No passwd entry (containers running under an arbitrary uid).
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`
  }
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString())

// ---------------------------------------------------------------- results

export type KeyStatus = 'active' | 'expired' | 'revoked' | 'inactive'

/** A key as `keys list` shows it: never the secret or its hash. Times are ISO-8601 UTC. */
export interface KeyInfo {
  kind: KeyKind
  id: number
  /** null for legacy device keys (no prefix). */
  kid: string | null
  name: string | null
  status: KeyStatus
  deviceUuid?: string
  role?: Role
  allowedSourceId?: string | null
  allowedDomains?: string[]
  createdBy?: string | null
  createdAt: string | null
  expiresAt: string | null
  revokedAt: string | null
  lastUsedAt: string | null
}

export interface CreatedKey {
  /** The plaintext key: shown once, stored nowhere. */
  key: string
  kid: string
  kind: KeyKind
  name: string | null
  deviceUuid?: string
  role?: Role
  allowedSourceId?: string | null
  allowedDomains?: string[]
  createdAt: string
  expiresAt: string | null
}

export interface RevokedKey {
  kid: string
  kind: KeyKind
  /** false when it was already revoked (revoking is idempotent). */
  changed: boolean
  revokedAt: string | null
  /**
   * When every running service refuses the key: a replica that verified it just before the revocation
   * trusts it from memory for the auth cache TTL. null when the revocation time is unknown.
   */
  effectiveEverywhereAt: string | null
  authCacheSeconds: number
}

export interface RotatedKey extends CreatedKey {
  /** The old key: it expires at `expiresAt`; a replica's auth cache may accept it until `effectiveEverywhereAt`. */
  previous: { kid: string; expiresAt: string | null; effectiveEverywhereAt: string | null; authCacheSeconds: number }
}

function statusOf(k: { revokedAt: number | null; isActive: boolean; expiresAt: number | null }, now: number): KeyStatus {
  if (k.revokedAt !== null) return 'revoked'
  if (!k.isActive) return 'inactive'
  if (k.expiresAt !== null && k.expiresAt <= now) return 'expired'
  return 'active'
}

type KeySummary = ({ kind: 'device' } & DeviceKeySummary) | ({ kind: 'role' } & RoleKeySummary)

function toInfo(k: KeySummary, now: number): KeyInfo {
  const common = { kind: k.kind, id: k.id, kid: k.kid, name: k.name, status: statusOf(k, now) }
  const times = { createdAt: iso(k.createdAt), expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt), lastUsedAt: iso(k.lastUsedAt) }
  if (k.kind === 'device') return { ...common, deviceUuid: k.deviceUuid, ...times }
  return { ...common, role: k.role, allowedSourceId: k.allowedSourceId, allowedDomains: k.allowedDomains, createdBy: k.createdBy, ...times }
}

// ---------------------------------------------------------------- use-cases

export interface CreateKeyOptions {
  /** Device uuid: a device key (`ingd_`). */
  device?: string | undefined
  /** A role key (`ingk_`). */
  role?: string | undefined
  sourceId?: string | undefined
  domains?: readonly string[] | undefined
  name?: string | undefined
  /** Lifetime in seconds; absent = never expires. */
  expiresIn?: number | undefined
}

type Scope = { kind: 'device'; deviceUuid: string } | { kind: 'role'; role: Role; allowedSourceId: string | null; allowedDomains: readonly string[] }

async function issue(ctx: AppContext, scope: Scope, name: string | null, expiresAt: number | null, now: number): Promise<CreatedKey> {
  const material = generateKey(scope.kind)
  const base = { key: material.key, kid: material.kid, kind: scope.kind, name, createdAt: new Date(now).toISOString(), expiresAt: iso(expiresAt) }
  if (scope.kind === 'device') {
    await deviceKeys(ctx).create({ deviceUuid: scope.deviceUuid, kid: material.kid, hash: material.hash, name, expiresAt, createdAt: now })
    return { ...base, deviceUuid: scope.deviceUuid }
  }
  await roleKeys(ctx).create({
    kid: material.kid,
    hash: material.hash,
    prefix: keyDisplayPrefix(material.key),
    name,
    role: scope.role,
    allowedSourceId: scope.allowedSourceId,
    allowedDomains: scope.allowedDomains,
    expiresAt,
    createdAt: now,
    createdBy: cliActor(),
  })
  return { ...base, role: scope.role, allowedSourceId: scope.allowedSourceId, allowedDomains: [...scope.allowedDomains] }
}

function auditTarget(k: { kind: KeyKind; kid: string; deviceUuid?: string; role?: Role }): { targetType: string; targetId: string; details: Record<string, unknown> } {
  return {
    targetType: k.kind === 'device' ? 'device_key' : 'role_key',
    targetId: k.kid,
    details: k.kind === 'device' ? { device_uuid: k.deviceUuid, by: cliActor() } : { role: k.role, by: cliActor() },
  }
}

/**
 * `ingest keys create`: a device key (`--device`) or a role key (`--role`). Only the SHA-256 is
 * stored; the plaintext is in the result, once. Writes a `key.create` audit row.
 */
export async function createKey(ctx: AppContext, options: CreateKeyOptions): Promise<CreatedKey> {
  const checked = validateKeyRequest(options)
  if (!checked.ok) throw new UsageError(checked.problems[0] ?? 'invalid key request', { problems: checked.problems })
  const { spec } = checked
  const now = ctx.clock.now()
  const expiresAt = spec.expiresIn === null ? null : now + Math.round(spec.expiresIn * 1000)
  const scope: Scope = spec.kind === 'device' ? spec : { kind: 'role', role: spec.role, allowedSourceId: spec.allowedSourceId, allowedDomains: spec.allowedDomains }
  const created = await issue(ctx, scope, spec.name, expiresAt, now)
  await securityAudit(ctx).record({ eventType: 'key.create', outcome: 'success', actorType: 'cli', at: now, ...auditTarget(created) })
  ctx.logger.info({ kid: created.kid, kind: created.kind }, 'key created')
  return created
}

/** `ingest keys list`: every device and role key, without secrets or hashes. */
export async function listKeys(ctx: AppContext): Promise<{ keys: KeyInfo[] }> {
  const now = ctx.clock.now()
  const device = (await deviceKeys(ctx).list()).map((k): KeySummary => ({ kind: 'device', ...k }))
  const role = (await roleKeys(ctx).list()).map((k): KeySummary => ({ kind: 'role', ...k }))
  return { keys: [...role, ...device].map((k) => toInfo(k, now)) }
}

type FoundKey = { kind: 'device'; kid: string; record: DeviceKeyRecord } | { kind: 'role'; kid: string; record: RoleKeyRecord }

/** Finds a key by its kid, or by the whole key (so a leaked key can be revoked as pasted). */
async function findKey(ctx: AppContext, kidOrKey: string): Promise<FoundKey> {
  const text = kidOrKey.trim()
  const parsed = parseKey(text)
  let kid: string
  let kinds: KeyKind[] = ['role', 'device']
  if (parsed.kind !== 'legacy') {
    if (!parsed.valid) throw new UsageError(`${JSON.stringify(text.slice(0, 17))}... is not a valid key (bad format or checksum)`)
    kid = parsed.kid
    kinds = [parsed.kind]
  } else if (isKid(text)) {
    kid = text
  } else {
    throw new UsageError(`${JSON.stringify(text.length > 20 ? `${text.slice(0, 12)}...` : text)} is not a key id (12 letters and digits, as "ingest keys list" shows)`)
  }
  for (const kind of kinds) {
    if (kind === 'role') {
      const record = await roleKeys(ctx).findByKid(kid)
      if (record) return { kind, kid, record }
    } else {
      const record = await deviceKeys(ctx).findByKid(kid)
      if (record) return { kind, kid, record }
    }
  }
  throw new NotFoundError(`no key with id ${kid}`, { suggestions: ['ingest keys list'] })
}

/** `ingest keys revoke KID`: refused from now on (within the authenticator's cache TTL). Idempotent. */
export async function revokeKey(ctx: AppContext, kidOrKey: string): Promise<RevokedKey> {
  const found = await findKey(ctx, kidOrKey)
  const now = ctx.clock.now()
  const changed = await (found.kind === 'device' ? deviceKeys(ctx) : roleKeys(ctx)).revoke(found.kid, now)
  const revokedAt = changed ? now : found.record.revokedAt
  const target = auditTarget(found.kind === 'device' ? { kind: 'device', kid: found.kid, deviceUuid: found.record.deviceUuid } : { kind: 'role', kid: found.kid, role: found.record.role })
  await securityAudit(ctx).record({ eventType: 'key.revoke', outcome: 'success', actorType: 'cli', at: now, ...target, details: { ...target.details, changed } })
  ctx.logger.info({ kid: found.kid, kind: found.kind, changed }, 'key revoked')
  return {
    kid: found.kid,
    kind: found.kind,
    changed,
    revokedAt: iso(revokedAt),
    effectiveEverywhereAt: iso(revokedAt === null ? null : revokedAt + AUTH_CACHE_TTL_MS),
    authCacheSeconds: AUTH_CACHE_TTL_MS / 1000,
  }
}

export interface RotateKeyOptions {
  /** How long the old key keeps working (seconds); 0 = it stops now. */
  graceSeconds: number
  /** Lifetime of the new key; default: the old key's lifetime, or none. */
  expiresIn?: number | undefined
}

/**
 * `ingest keys rotate KID --grace 1h`: a new key with the same device or role scope and name; the
 * old one expires after the grace (never later than it already would). Writes a `key.rotate` row.
 */
export async function rotateKey(ctx: AppContext, kidOrKey: string, options: RotateKeyOptions): Promise<RotatedKey> {
  if (!(Number.isFinite(options.graceSeconds) && options.graceSeconds >= 0)) throw new UsageError('--grace must be a duration of 0s or more')
  if (options.expiresIn !== undefined && !(Number.isFinite(options.expiresIn) && options.expiresIn >= 1)) throw new UsageError('--expires-in must be at least 1s')
  const found = await findKey(ctx, kidOrKey)
  const now = ctx.clock.now()
  const old = found.record
  const status = statusOf(old, now)
  if (status !== 'active') throw new UsageError(`key ${found.kid} is ${status}: create a new key instead (ingest keys create)`)
  const lifetime = options.expiresIn !== undefined ? Math.round(options.expiresIn * 1000) : old.expiresAt !== null && old.createdAt !== null ? Math.max(old.expiresAt - old.createdAt, 1000) : null
  const scope: Scope = found.kind === 'device' ? { kind: 'device', deviceUuid: found.record.deviceUuid } : { kind: 'role', role: found.record.role, allowedSourceId: found.record.allowedSourceId, allowedDomains: found.record.allowedDomains }
  const created = await issue(ctx, scope, old.name, lifetime === null ? null : now + lifetime, now)
  const graceEnd = now + Math.round(options.graceSeconds * 1000)
  const oldExpiresAt = old.expiresAt === null ? graceEnd : Math.min(old.expiresAt, graceEnd)
  await (found.kind === 'device' ? deviceKeys(ctx) : roleKeys(ctx)).setExpiry(found.kid, oldExpiresAt)
  const target = auditTarget(created)
  await securityAudit(ctx).record({
    eventType: 'key.rotate',
    outcome: 'success',
    actorType: 'cli',
    at: now,
    targetType: target.targetType,
    targetId: found.kid,
    details: { ...target.details, new_kid: created.kid, grace_seconds: options.graceSeconds, old_expires_at: iso(oldExpiresAt) },
  })
  ctx.logger.info({ kid: found.kid, newKid: created.kid, kind: found.kind }, 'key rotated')
  // A replica that cached the old record (with its earlier expiry) before this change accepts the key
  // until that entry ends, unless the earlier expiry comes first.
  const cachedUntil = Math.min(old.expiresAt ?? Number.POSITIVE_INFINITY, now + AUTH_CACHE_TTL_MS)
  const effectiveEverywhereAt = Math.max(oldExpiresAt, cachedUntil)
  return { ...created, previous: { kid: found.kid, expiresAt: iso(oldExpiresAt), effectiveEverywhereAt: iso(effectiveEverywhereAt), authCacheSeconds: AUTH_CACHE_TTL_MS / 1000 } }
}
