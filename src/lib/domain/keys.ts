import { normaliseUuid } from './uuid.js'

/**
 * API key formats and the authorisation rules of role keys. Pure: the random bytes and SHA-256
 * come from the caller (lib/app), so this module stays free of I/O.
 *
 * `ingk_<kid>_<secret><checksum>` (role keys) and `ingd_<kid>_<secret><checksum>` (device keys):
 * kid 12 base62 characters (public, the lookup id), secret 32 base62 characters (~190 bits),
 * checksum 6 base62 characters of the CRC32 of everything before it, so a mistyped or made-up key
 * is refused without a database query and secret scanners can recognise a real one.
 */

export type KeyKind = 'role' | 'device'

export const KEY_PREFIX: Readonly<Record<KeyKind, string>> = { role: 'ingk', device: 'ingd' }
export const KID_LENGTH = 12
export const SECRET_LENGTH = 32
export const CHECKSUM_LENGTH = 6
export const BASE62_ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz'

/** The full shape of a prefixed key (the checksum is checked separately). */
export const KEY_PATTERN = /^(ingk|ingd)_([0-9A-Za-z]{12})_([0-9A-Za-z]{32})([0-9A-Za-z]{6})$/
const KID_PATTERN = /^[0-9A-Za-z]{12}$/

export type ParsedKey = { kind: KeyKind; kid: string; valid: boolean } | { kind: 'legacy' }

// ---------------------------------------------------------------- CRC32 (IEEE 802.3, as zlib)

const CRC_TABLE = ((): Uint32Array => {
  const table = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    table[n] = c >>> 0
  }
  return table
})()

/** CRC32 of the UTF-8 bytes of `text`, as an unsigned 32-bit number. */
export function crc32(text: string): number {
  let crc = 0xffffffff
  for (const byte of new TextEncoder().encode(text)) crc = (CRC_TABLE[(crc ^ byte) & 0xff] ?? 0) ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

/** Fixed-width base62 (most significant digit first, left-padded with '0'). */
export function encodeBase62(value: number, width: number): string {
  let n = Math.trunc(value)
  let out = ''
  while (n > 0) {
    out = BASE62_ALPHABET.charAt(n % 62) + out
    n = Math.floor(n / 62)
  }
  return out.padStart(width, '0')
}

/** The 6-character checksum of a key body `ingX_<kid>_<secret>` (62^6 > 2^32, so it always fits). */
export function keyChecksum(body: string): string {
  return encodeBase62(crc32(body), CHECKSUM_LENGTH)
}

/**
 * `length` base62 characters from a source of random bytes, by rejection sampling (bytes >= 248
 * are skipped so every character is equally likely).
 */
export function randomBase62(length: number, randomBytes: (n: number) => Uint8Array): string {
  let out = ''
  while (out.length < length) {
    for (const byte of randomBytes(length - out.length + 8)) {
      if (byte >= 248) continue
      out += BASE62_ALPHABET.charAt(byte % 62)
      if (out.length === length) break
    }
  }
  return out
}

export function formatKey(kind: KeyKind, kid: string, secret: string): string {
  const body = `${KEY_PREFIX[kind]}_${kid}_${secret}`
  return body + keyChecksum(body)
}

export function isKid(text: string): boolean {
  return KID_PATTERN.test(text)
}

/**
 * Classifies a presented key. Anything starting with `ingk_`/`ingd_` is a prefixed key: `valid`
 * says whether its shape and checksum hold (`kid` is empty when the shape does not). Everything
 * else is a legacy key (device keys provisioned by the backend), found by its SHA-256.
 */
export function parseKey(text: string): ParsedKey {
  const kind: KeyKind | undefined = text.startsWith('ingk_') ? 'role' : text.startsWith('ingd_') ? 'device' : undefined
  if (kind === undefined) return { kind: 'legacy' }
  const m = KEY_PATTERN.exec(text)
  if (!m) return { kind, kid: '', valid: false }
  const [, prefix, kid = '', secret = '', checksum = ''] = m
  return { kind, kid, valid: keyChecksum(`${prefix}_${kid}_${secret}`) === checksum }
}

/** The non-secret head of a key stored in `api_keys.key_prefix` and shown in listings. */
export function keyDisplayPrefix(key: string): string {
  return key.slice(0, 8)
}

// ---------------------------------------------------------------- roles and authorisation

export const ROLES = ['admin', 'source_writer', 'read_only'] as const
export type Role = (typeof ROLES)[number]

export function isRole(text: string): text is Role {
  return (ROLES as readonly string[]).includes(text)
}

/** What a role key may do (reference §2.3: `api_keys.role`, `allowed_source_id`, `allowed_domains`). */
export interface RoleScope {
  role: Role
  /** null = any source (admin). */
  allowedSourceId: string | null
  /** Empty = every domain for admin, none for source_writer (the legacy rule). */
  allowedDomains: readonly string[]
}

export type AccessDecision = { allowed: true } | { allowed: false; code: 'SOURCE_NOT_ALLOWED' | 'DOMAIN_NOT_ALLOWED'; detail: string }

/**
 * The legacy `verify_source_access` (reference §2.3): the source check first, then the domain.
 * admin: allowed; read_only: denied; source_writer: its exact (case-sensitive) source and one of
 * its listed domains (an empty list allows none). The `detail` strings are the original 403 ones.
 */
export function verifySourceAccess(scope: RoleScope, sourceId: string, domain: string): AccessDecision {
  if (scope.role === 'admin') return { allowed: true }
  if (scope.role !== 'source_writer' || scope.allowedSourceId !== sourceId) {
    return { allowed: false, code: 'SOURCE_NOT_ALLOWED', detail: `Not authorized to write to source_id '${sourceId}'` }
  }
  if (!scope.allowedDomains.includes(domain)) {
    return { allowed: false, code: 'DOMAIN_NOT_ALLOWED', detail: `Not authorized to write to domain '${domain}'` }
  }
  return { allowed: true }
}

/** The global-key write routes (`/ingest/readings`, bulk) take an admin role key. */
export function roleMayWriteGlobal(role: Role): boolean {
  return role === 'admin'
}

/** Read routes (status, diagnostics, jobs) take any role key, read_only included. */
export function roleMayRead(role: Role): boolean {
  return ROLES.includes(role)
}

// ---------------------------------------------------------------- key requests (`ingest keys create`)

export interface KeyRequest {
  device?: string | undefined
  role?: string | undefined
  sourceId?: string | undefined
  domains?: readonly string[] | undefined
  name?: string | undefined
  /** Lifetime in seconds; absent = never expires. */
  expiresIn?: number | undefined
}

export type KeySpec =
  | { kind: 'device'; deviceUuid: string; name: string | null; expiresIn: number | null }
  | { kind: 'role'; role: Role; allowedSourceId: string | null; allowedDomains: string[]; name: string | null; expiresIn: number | null }

const MAX_NAME = 100
const MAX_SOURCE_ID = 255
const MAX_DOMAIN = 50
// Ten years: beyond this an expiry is a typo, and Date arithmetic stays far from its limits.
const MAX_LIFETIME_SECONDS = 10 * 366 * 86_400

/** Checks a key request; every problem is listed (a UsageError in the app). */
export function validateKeyRequest(req: KeyRequest): { ok: true; spec: KeySpec } | { ok: false; problems: string[] } {
  const problems: string[] = []
  const hasDevice = req.device !== undefined
  const hasRole = req.role !== undefined
  if (hasDevice === hasRole) problems.push('give exactly one of --device UUID (a device key) or --role admin|source_writer|read_only (a role key)')
  const name = req.name === undefined ? null : req.name.trim()
  if (name !== null && (name === '' || name.length > MAX_NAME || /\p{Cc}/u.test(name))) problems.push(`--name must be 1-${MAX_NAME} printable characters`)
  const expiresIn = req.expiresIn ?? null
  if (expiresIn !== null && !(Number.isFinite(expiresIn) && expiresIn >= 1 && expiresIn <= MAX_LIFETIME_SECONDS)) problems.push('--expires-in must be between 1s and 3660d (e.g. 90s, 30m, 12h, 30d)')

  const deviceUuid = hasDevice ? normaliseUuid(req.device ?? '') : undefined
  if (hasDevice && deviceUuid === undefined) problems.push(`--device must be a UUID, got ${JSON.stringify(req.device)}`)
  if (hasDevice && (req.sourceId !== undefined || (req.domains?.length ?? 0) > 0)) problems.push('--source-id and --domain apply to role keys only')

  const role = hasRole && isRole(req.role ?? '') ? (req.role as Role) : undefined
  if (hasRole && role === undefined) problems.push(`--role must be one of ${ROLES.join(', ')}, got ${JSON.stringify(req.role)}`)
  const sourceId = req.sourceId ?? null
  const domains = [...new Set(req.domains ?? [])]
  if (sourceId !== null && (sourceId === '' || sourceId.length > MAX_SOURCE_ID || /\p{Cc}/u.test(sourceId))) problems.push(`--source-id must be 1-${MAX_SOURCE_ID} printable characters`)
  for (const d of domains) if (!/^[a-z0-9][a-z0-9_.-]*$/.test(d) || d.length > MAX_DOMAIN) problems.push(`--domain ${JSON.stringify(d)} is not a domain name (lower-case letters, digits, _ . -)`)
  if (role === 'source_writer') {
    if (sourceId === null) problems.push('a source_writer key needs --source-id (the one source it may write)')
    if (domains.length === 0) problems.push('a source_writer key needs at least one --domain (an empty list allows no domain)')
  } else if (role !== undefined && (sourceId !== null || domains.length > 0)) {
    problems.push(`--source-id and --domain apply to source_writer keys only (${role} keys are not scoped)`)
  }

  if (problems.length > 0) return { ok: false, problems }
  if (deviceUuid !== undefined) return { ok: true, spec: { kind: 'device', deviceUuid, name, expiresIn } }
  if (role !== undefined) return { ok: true, spec: { kind: 'role', role, allowedSourceId: sourceId, allowedDomains: domains, name, expiresIn } }
  return { ok: false, problems: ['give --device or --role'] }
}
