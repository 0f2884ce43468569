import { isRole } from '../../../domain/keys.js'
import { BugError } from '../../../errors/index.js'
import type { NewRoleKey, RoleKeyRecord, RoleKeyStore } from '../../../ports/role-key-store.js'
import type { Row, SqlExecutor } from './executor.js'
import { dateOrNull, runForIds } from './key-rows.js'
import { toBool, toJson, toMsOrNull, toNumber, toStringOrNull } from './row.js'

const SELECT = `SELECT "id", "kid", "key_hash", "key_prefix", "name", "role", "allowed_source_id", "allowed_domains", "is_active",
  "created_at", "expires_at", "revoked_at", "last_used_at", "created_by"
FROM "api_keys"`
const BY_KID = `${SELECT} WHERE "kid" = ?`
const BY_HASH = `${SELECT} WHERE "key_hash" = ?`
const LIST = `${SELECT} ORDER BY "id"`

const REVOKE = 'UPDATE "api_keys" SET "revoked_at" = ?, "is_active" = ? WHERE "kid" = ? AND "revoked_at" IS NULL'
const SET_EXPIRY = 'UPDATE "api_keys" SET "expires_at" = ? WHERE "kid" = ?'
/** Followed by the id list. */
const MARK_USED = 'UPDATE "api_keys" SET "last_used_at" = ? WHERE "id" IN'

function decode(r: Row): RoleKeyRecord {
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

/** Role keys (`api_keys`) over the universal store's SqlExecutor (SQL Server has no such table: never called there). */
export function createSqlRoleKeyStore(universal: SqlExecutor): RoleKeyStore {
  return {
    async create(key: NewRoleKey) {
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
        expires_at: dateOrNull(key.expiresAt),
        created_by: key.createdBy,
      })
      return { id, kid: key.kid }
    },

    async findByKid(kid) {
      const [row] = await universal.all(BY_KID, [kid])
      return row ? decode(row) : null
    },

    async findByHash(hash) {
      const [row] = await universal.all(BY_HASH, [hash])
      return row ? decode(row) : null
    },

    async list() {
      return (await universal.all(LIST)).map((r) => {
        const { hash: _hash, ...summary } = decode(r)
        return summary
      })
    },

    async revoke(kid, now) {
      return (await universal.run(REVOKE, [new Date(now), false, kid])) > 0
    },

    async setExpiry(kid, expiresAt) {
      return (await universal.run(SET_EXPIRY, [dateOrNull(expiresAt), kid])) > 0
    },

    markUsed(ids, now) {
      return runForIds(universal, MARK_USED, [new Date(now)], ids)
    },
  }
}
