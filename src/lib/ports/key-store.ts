import type { KeyKind, Role } from '../domain/keys.js'

/*
 * Conventions of this port: ids are JS numbers; every time is epoch milliseconds (UTC), or null;
 * uuids are lower-case hyphenated; hashes are lower-case hex SHA-256 of the whole presented key.
 * No plaintext key ever crosses it.
 */

/** Times every key row carries. */
export interface KeyTimes {
  createdAt: number | null
  expiresAt: number | null
  revokedAt: number | null
  lastUsedAt: number | null
}

/** A `device_api_keys` row joined to its device (IoT store). */
export interface DeviceKeyRecord extends KeyTimes {
  id: number
  /** null for legacy keys provisioned by the backend (no prefix, found by hash). */
  kid: string | null
  name: string | null
  deviceId: number
  deviceUuid: string
  hash: string
  isActive: boolean
  /** `devices.deleted_at` is set. */
  deviceDeleted: boolean
}

/** An `api_keys` row (universal store). */
export interface RoleKeyRecord extends KeyTimes {
  id: number
  kid: string
  hash: string
  /** First characters of the key (`ingk_abc`), not secret. */
  prefix: string
  name: string | null
  role: Role
  allowedSourceId: string | null
  allowedDomains: string[]
  isActive: boolean
  createdBy: string | null
}

/** A key as listed: everything but the hash. */
export type KeySummary = ({ kind: 'device' } & Omit<DeviceKeyRecord, 'hash'>) | ({ kind: 'role' } & Omit<RoleKeyRecord, 'hash'>)

export interface NewDeviceKey {
  deviceUuid: string
  kid: string
  hash: string
  name: string | null
  expiresAt: number | null
  createdAt: number
}

export interface NewRoleKey {
  kid: string
  hash: string
  prefix: string
  name: string | null
  role: Role
  allowedSourceId: string | null
  allowedDomains: readonly string[]
  expiresAt: number | null
  createdAt: number
  createdBy: string | null
}

/** One `security_audit_log` row (append-only). Never a secret: kids and hash prefixes only. */
export interface SecurityEvent {
  /** `auth.failure`, `key.create`, `key.revoke`, `key.rotate`, `audit.suppressed`, ... */
  eventType: string
  outcome: 'success' | 'failure' | 'denied'
  actorType: 'api_key' | 'device' | 'cli' | 'system' | 'anonymous'
  actorKid?: string | null | undefined
  actorRole?: string | null | undefined
  sourceIp?: string | null | undefined
  transport?: string | null | undefined
  requestId?: string | null | undefined
  targetType?: string | null | undefined
  targetId?: string | null | undefined
  reasonCode?: string | null | undefined
  /** Allow-listed, non-secret fields only. */
  details?: Record<string, unknown> | null | undefined
  /** When it happened (epoch ms); the database's clock when absent. */
  at?: number | undefined
}

/**
 * Device keys, role keys and the security audit log. Device keys (and `devices`) live in the IoT
 * store, role keys and the audit log in the universal store: callers use the IoT Database's store
 * for the `device` methods and the universal one's for `role` keys and events; the `kind` argument
 * picks the table where both exist.
 */
export interface KeyStore {
  /** Stores a device key's hash for the device with that uuid; NotFoundError when there is none (or it is deleted). */
  createDeviceKey(key: NewDeviceKey): Promise<{ id: number; kid: string; deviceId: number }>
  findDeviceKeyByKid(kid: string): Promise<DeviceKeyRecord | null>
  /** Legacy (unprefixed) device keys: `device_api_keys.api_key_hash`. */
  findDeviceKeyByHash(hash: string): Promise<DeviceKeyRecord | null>
  createRoleKey(key: NewRoleKey): Promise<{ id: number; kid: string }>
  findRoleKeyByKid(kid: string): Promise<RoleKeyRecord | null>
  findRoleKeyByHash(hash: string): Promise<RoleKeyRecord | null>
  /** Every key of that kind, oldest first, without hashes. */
  listKeys(kind: KeyKind): Promise<KeySummary[]>
  /** Sets revoked_at and is_active = false; false when no unrevoked key has that kid. */
  revokeKey(kind: KeyKind, kid: string, now: number): Promise<boolean>
  /** Sets expires_at (rotation grace); false when no key has that kid. */
  setExpiry(kind: KeyKind, kid: string, expiresAt: number | null): Promise<boolean>
  /** last_used_at = now for these key ids (best effort, throttled by the caller). */
  touchKeys(kind: KeyKind, ids: readonly number[], now: number): Promise<void>
  /** devices.last_connection = now, status = 'online' (the legacy device-auth side effect). */
  touchDevice(deviceId: number, now: number): Promise<void>
  recordSecurityEvent(event: SecurityEvent): Promise<void>
}
