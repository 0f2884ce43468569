import { isRole, type KeyKind } from '../../../domain/keys.js'
import { BugError, NotFoundError } from '../../../errors/index.js'
import type { DeviceKeyRecord, KeyStore, KeySummary, NewDeviceKey, NewRoleKey, RoleKeyRecord, SecurityEvent } from '../../../ports/key-store.js'
import type { Param, Row, SqlExecutor } from './executor.js'
import { toBool, toJson, toMsOrNull, toNumber, toStringOrNull, toUuid } from './row.js'

const DEVICE_KEY_SELECT = `SELECT k."id", k."kid", k."key_name", k."device_id", d."device_uuid", k."api_key_hash", k."is_active",
  k."created_at", k."expires_at", k."revoked_at", k."last_used_at", d."deleted_at"
FROM "device_api_keys" k JOIN "devices" d ON d."id" = k."device_id"`

const ROLE_KEY_SELECT = `SELECT "id", "kid", "key_hash", "key_prefix", "name", "role", "allowed_source_id", "allowed_domains", "is_active",
  "created_at", "expires_at", "revoked_at", "last_used_at", "created_by"
FROM "api_keys"`

const FIND_DEVICE = 'SELECT "id", "deleted_at" FROM "devices" WHERE "device_uuid" = ?'
const TOUCH_DEVICE = `UPDATE "devices" SET "last_connection" = ?, "status" = 'online' WHERE "id" = ?`

const INSERT_EVENT = `INSERT INTO "security_audit_log"
  ("ts", "event_type", "outcome", "actor_type", "actor_kid", "actor_role", "source_ip", "transport", "request_id", "target_type", "target_id", "reason_code", "details")
VALUES (COALESCE(?, __NOW__), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

const TABLE: Readonly<Record<KeyKind, string>> = { device: 'device_api_keys', role: 'api_keys' }

/** Ids per UPDATE ... IN (...) (SQL Server takes at most 2100 parameters). */
const TOUCH_CHUNK = 500

const date = (ms: number | null): Date | null => (ms === null ? null : new Date(ms))

/** Audit columns are short varchars: control characters (CR/LF log injection) removed, length clipped. */
function clip(v: string | null | undefined, max: number): string | null {
  if (v === null || v === undefined) return null
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, max)
}

function decodeDeviceKey(r: Row): DeviceKeyRecord {
  return {
    id: toNumber(r['id']),
    kid: toStringOrNull(r['kid']),
    name: toStringOrNull(r['key_name']),
    deviceId: toNumber(r['device_id']),
    deviceUuid: toUuid(r['device_uuid']),
    hash: String(r['api_key_hash']).toLowerCase(),
    isActive: toBool(r['is_active']),
    deviceDeleted: r['deleted_at'] !== null && r['deleted_at'] !== undefined,
    createdAt: toMsOrNull(r['created_at']),
    expiresAt: toMsOrNull(r['expires_at']),
    revokedAt: toMsOrNull(r['revoked_at']),
    lastUsedAt: toMsOrNull(r['last_used_at']),
  }
}

function decodeRoleKey(r: Row): RoleKeyRecord {
  const role = String(r['role'])
  if (!isRole(role)) throw new BugError(`api_keys row ${String(r['id'])} has the unknown role ${JSON.stringify(role)}`)
  const domains = toJson(r['allowed_domains'])
  return {
    id: toNumber(r['id']),
    kid: String(r['kid']),
    hash: String(r['key_hash']).toLowerCase(),
    prefix: String(r['key_prefix']),
    name: toStringOrNull(r['name']),
    role,
    allowedSourceId: toStringOrNull(r['allowed_source_id']),
    allowedDomains: Array.isArray(domains) ? domains.filter((d): d is string => typeof d === 'string') : [],
    isActive: toBool(r['is_active']),
    createdBy: toStringOrNull(r['created_by']),
    createdAt: toMsOrNull(r['created_at']),
    expiresAt: toMsOrNull(r['expires_at']),
    revokedAt: toMsOrNull(r['revoked_at']),
    lastUsedAt: toMsOrNull(r['last_used_at']),
  }
}

function summary(kind: KeyKind, r: Row): KeySummary {
  if (kind === 'device') {
    const { hash: _hash, ...rest } = decodeDeviceKey(r)
    return { kind, ...rest }
  }
  const { hash: _hash, ...rest } = decodeRoleKey(r)
  return { kind, ...rest }
}

/**
 * The key store over any engine's SqlExecutor. Device keys and `devices` use `iot`; role keys and
 * `security_audit_log` use `universal` (the same executor when one database holds both; on SQL
 * Server, which holds no operations tables, only the device methods may be called).
 */
export function createSqlKeyStore(iot: SqlExecutor, universal: SqlExecutor = iot): KeyStore {
  const execFor = (kind: KeyKind): SqlExecutor => (kind === 'device' ? iot : universal)
  const insertEvent = INSERT_EVENT.replace('__NOW__', universal.dialect.now)

  return {
    createDeviceKey(key: NewDeviceKey) {
      return iot.transaction(async (tx) => {
        const [device] = await tx.all(FIND_DEVICE, [key.deviceUuid])
        if (!device) throw new NotFoundError(`device ${key.deviceUuid} not found`, { suggestions: ['register it first: ingest apply FILE'] })
        if (device['deleted_at'] !== null && device['deleted_at'] !== undefined) throw new NotFoundError(`device ${key.deviceUuid} is deleted`)
        const deviceId = toNumber(device['id'])
        const id = await tx.insert('device_api_keys', {
          device_id: deviceId,
          api_key_hash: key.hash,
          key_name: key.name,
          kid: key.kid,
          created_at: new Date(key.createdAt),
          expires_at: date(key.expiresAt),
          is_active: true,
        })
        return { id, kid: key.kid, deviceId }
      })
    },

    async findDeviceKeyByKid(kid) {
      const [row] = await iot.all(`${DEVICE_KEY_SELECT} WHERE k."kid" = ?`, [kid])
      return row ? decodeDeviceKey(row) : null
    },

    async findDeviceKeyByHash(hash) {
      // The unique index on the hash is opt-in on legacy SQL Server tables: take the oldest row.
      const [row] = await iot.all(`${DEVICE_KEY_SELECT} WHERE k."api_key_hash" = ? ORDER BY k."id"`, [hash])
      return row ? decodeDeviceKey(row) : null
    },

    async createRoleKey(key: NewRoleKey) {
      const id = await universal.insert('api_keys', {
        kid: key.kid,
        key_hash: key.hash,
        key_prefix: key.prefix,
        name: key.name,
        role: key.role,
        allowed_source_id: key.allowedSourceId,
        allowed_domains: JSON.stringify(key.allowedDomains),
        is_active: true,
        created_at: new Date(key.createdAt),
        expires_at: date(key.expiresAt),
        created_by: key.createdBy,
      })
      return { id, kid: key.kid }
    },

    async findRoleKeyByKid(kid) {
      const [row] = await universal.all(`${ROLE_KEY_SELECT} WHERE "kid" = ?`, [kid])
      return row ? decodeRoleKey(row) : null
    },

    async findRoleKeyByHash(hash) {
      const [row] = await universal.all(`${ROLE_KEY_SELECT} WHERE "key_hash" = ?`, [hash])
      return row ? decodeRoleKey(row) : null
    },

    async listKeys(kind) {
      const sql = kind === 'device' ? `${DEVICE_KEY_SELECT} ORDER BY k."id"` : `${ROLE_KEY_SELECT} ORDER BY "id"`
      return (await execFor(kind).all(sql)).map((r) => summary(kind, r))
    },

    async revokeKey(kind, kid, now) {
      const n = await execFor(kind).run(`UPDATE "${TABLE[kind]}" SET "revoked_at" = ?, "is_active" = ? WHERE "kid" = ? AND "revoked_at" IS NULL`, [new Date(now), false, kid])
      return n > 0
    },

    async setExpiry(kind, kid, expiresAt) {
      const n = await execFor(kind).run(`UPDATE "${TABLE[kind]}" SET "expires_at" = ? WHERE "kid" = ?`, [date(expiresAt), kid])
      return n > 0
    },

    async touchKeys(kind, ids, now) {
      const unique = [...new Set(ids)]
      for (let i = 0; i < unique.length; i += TOUCH_CHUNK) {
        const chunk = unique.slice(i, i + TOUCH_CHUNK)
        await execFor(kind).run(`UPDATE "${TABLE[kind]}" SET "last_used_at" = ? WHERE "id" IN (${chunk.map(() => '?').join(', ')})`, [new Date(now), ...chunk])
      }
    },

    async touchDevice(deviceId, now) {
      await iot.run(TOUCH_DEVICE, [new Date(now), deviceId])
    },

    async recordSecurityEvent(e: SecurityEvent) {
      const params: Param[] = [
        e.at === undefined ? null : new Date(e.at),
        clip(e.eventType, 64),
        clip(e.outcome, 16),
        clip(e.actorType, 16),
        clip(e.actorKid, 32),
        clip(e.actorRole, 20),
        clip(e.sourceIp, 64),
        clip(e.transport, 16),
        clip(e.requestId, 64),
        clip(e.targetType, 32),
        clip(e.targetId, 255),
        clip(e.reasonCode, 64),
        e.details === null || e.details === undefined ? null : JSON.stringify(e.details),
      ]
      await universal.run(insertEvent, params)
    },
  }
}
