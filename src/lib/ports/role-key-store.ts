import type { Role } from '../domain/keys.js'
import type { KeyTimes } from './key-record.js'

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

/** A role key as listed: everything but the hash. */
export type RoleKeySummary = Omit<RoleKeyRecord, 'hash'>

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

/**
 * Role keys (`api_keys`), an operations table: callers use the universal Database's `roleKeys`
 * (SQL Server holds only the IoT store, so its Database's `roleKeys` is never called).
 * Conventions: see key-record.ts.
 */
export interface RoleKeyStore {
  create(key: NewRoleKey): Promise<{ id: number; kid: string }>
  findByKid(kid: string): Promise<RoleKeyRecord | null>
  /** Unprefixed role keys: rows carried over from the legacy `api_keys` table. */
  findByHash(hash: string): Promise<RoleKeyRecord | null>
  /** Every role key, oldest first, without hashes. */
  list(): Promise<RoleKeySummary[]>
  /** Sets revoked_at and is_active = false; false when no unrevoked key has that kid. */
  revoke(kid: string, now: number): Promise<boolean>
  /** Sets expires_at (rotation grace); false when no key has that kid. */
  setExpiry(kid: string, expiresAt: number | null): Promise<boolean>
  /** last_used_at = now for these key ids (best effort, throttled by the caller). */
  markUsed(ids: readonly number[], now: number): Promise<void>
}
