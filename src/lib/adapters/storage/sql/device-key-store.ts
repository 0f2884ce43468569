import { NotFoundError } from '../../../errors/index.js'
import type { DeviceKeyRecord, DeviceKeyStore, NewDeviceKey } from '../../../ports/device-key-store.js'
import type { Row, SqlExecutor } from './executor.js'
import { dateOrNull, runForIds } from './key-rows.js'
import { toBool, toMsOrNull, toNumber, toStringOrNull, toUuid } from './row.js'

const SELECT = `SELECT k."id", k."kid", k."key_name", k."device_id", d."device_uuid", k."api_key_hash", k."is_active",
  k."created_at", k."expires_at", k."revoked_at", k."last_used_at", d."deleted_at"
FROM "device_api_keys" k JOIN "devices" d ON d."id" = k."device_id"`
const BY_KID = `${SELECT} WHERE k."kid" = ?`
// The unique index on the hash is opt-in on legacy SQL Server tables: take the oldest row.
const BY_HASH = `${SELECT} WHERE k."api_key_hash" = ? ORDER BY k."id"`
const LIST = `${SELECT} ORDER BY k."id"`

const FIND_DEVICE = 'SELECT "id", "deleted_at" FROM "devices" WHERE "device_uuid" = ?'
const REVOKE = 'UPDATE "device_api_keys" SET "revoked_at" = ?, "is_active" = ? WHERE "kid" = ? AND "revoked_at" IS NULL'
const SET_EXPIRY = 'UPDATE "device_api_keys" SET "expires_at" = ? WHERE "kid" = ?'
/** Followed by the id list. */
const MARK_USED = 'UPDATE "device_api_keys" SET "last_used_at" = ? WHERE "id" IN'
const TOUCH_DEVICE = `UPDATE "devices" SET "last_connection" = ?, "status" = 'online' WHERE "id" = ?`

function decode(r: Row): DeviceKeyRecord {
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

/** Device keys and `devices` over the IoT store's SqlExecutor (every engine, SQL Server's legacy tables included). */
export function createSqlDeviceKeyStore(iot: SqlExecutor): DeviceKeyStore {
  return {
    create(key: NewDeviceKey) {
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
          expires_at: dateOrNull(key.expiresAt),
          is_active: true,
        })
        return { id, kid: key.kid, deviceId }
      })
    },

    async findByKid(kid) {
      const [row] = await iot.all(BY_KID, [kid])
      return row ? decode(row) : null
    },

    async findByHash(hash) {
      const [row] = await iot.all(BY_HASH, [hash])
      return row ? decode(row) : null
    },

    async list() {
      return (await iot.all(LIST)).map((r) => {
        const { hash: _hash, ...summary } = decode(r)
        return summary
      })
    },

    async revoke(kid, now) {
      return (await iot.run(REVOKE, [new Date(now), false, kid])) > 0
    },

    async setExpiry(kid, expiresAt) {
      return (await iot.run(SET_EXPIRY, [dateOrNull(expiresAt), kid])) > 0
    },

    markUsed(ids, now) {
      return runForIds(iot, MARK_USED, [new Date(now)], ids)
    },

    async touchDevice(deviceId, now) {
      await iot.run(TOUCH_DEVICE, [new Date(now), deviceId])
    },
  }
}
