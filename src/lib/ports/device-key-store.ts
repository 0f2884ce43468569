import type { KeyTimes } from './key-record.js'

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

/** A device key as listed: everything but the hash. */
export type DeviceKeySummary = Omit<DeviceKeyRecord, 'hash'>

export interface NewDeviceKey {
  deviceUuid: string
  kid: string
  hash: string
  name: string | null
  expiresAt: number | null
  createdAt: number
}

/**
 * Device keys (`device_api_keys`) and the device side effect of using one (`devices`). Both tables
 * live in the IoT store: callers use the IoT Database's `deviceKeys`, on every engine (SQL Server
 * included). Conventions: see key-record.ts.
 */
export interface DeviceKeyStore {
  /** Stores a device key's hash for the device with that uuid; NotFoundError when there is none (or it is deleted). */
  create(key: NewDeviceKey): Promise<{ id: number; kid: string; deviceId: number }>
  findByKid(kid: string): Promise<DeviceKeyRecord | null>
  /** Legacy (unprefixed) device keys: `device_api_keys.api_key_hash`. */
  findByHash(hash: string): Promise<DeviceKeyRecord | null>
  /** Every device key, oldest first, without hashes. */
  list(): Promise<DeviceKeySummary[]>
  /** Sets revoked_at and is_active = false; false when no unrevoked key has that kid. */
  revoke(kid: string, now: number): Promise<boolean>
  /** Sets expires_at (rotation grace); false when no key has that kid. */
  setExpiry(kid: string, expiresAt: number | null): Promise<boolean>
  /** last_used_at = now for these key ids (best effort, throttled by the caller). */
  markUsed(ids: readonly number[], now: number): Promise<void>
  /** devices.last_connection = now, status = 'online' (the legacy device-auth side effect). */
  touchDevice(deviceId: number, now: number): Promise<void>
}
