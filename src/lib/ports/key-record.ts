/*
 * Conventions of the key ports (device-key-store.ts, role-key-store.ts): ids are JS numbers; every
 * time is epoch milliseconds (UTC), or null; uuids are lower-case hyphenated; hashes are lower-case
 * hex SHA-256 of the whole presented key. No plaintext key ever crosses them.
 */

/** Times every key row carries. */
export interface KeyTimes {
  createdAt: number | null
  expiresAt: number | null
  revokedAt: number | null
  lastUsedAt: number | null
}
