import { Flags } from '@oclif/core'

import type { CreatedKey, KeyInfo, RevokedKey, RotatedKey } from '../app/keys.js'
import { parseDurationSeconds } from '../config/index.js'
import { UsageError } from '../errors/index.js'

/** The stderr line printed with every new key. */
export const KEY_SHOWN_ONCE = 'Warning: this key is shown only once and cannot be recovered; store it now (only its SHA-256 is kept).'

/** A duration flag (`90s`, `30m`, `12h`, `30d`; a bare number is seconds) parsed to seconds. */
export function durationFlag(options: { description: string }) {
  return Flags.custom<number>({ description: options.description, helpValue: '<duration>', parse: parseDurationAsync })()
}

/** The same with a default (`--grace 1h`). */
export function durationFlagWithDefault(options: { description: string; default: string }) {
  return Flags.custom<number>({
    description: options.description,
    helpValue: '<duration>',
    default: () => parseDurationAsync(options.default),
    defaultHelp: () => Promise.resolve(options.default),
    parse: parseDurationAsync,
  })()
}

/** oclif takes a promise: a bad duration rejects with the UsageError. */
function parseDurationAsync(input: string): Promise<number> {
  return new Promise((resolve) => resolve(parseDuration(input)))
}

function parseDuration(input: string): number {
  const seconds = parseDurationSeconds(input)
  if (seconds === undefined) throw new UsageError(`${JSON.stringify(input)} is not a duration (e.g. 90s, 30m, 12h, 30d)`)
  return seconds
}

/** Human output of a new key: the key alone on stdout (easy to copy or pipe). */
export function renderCreatedKey(k: CreatedKey | RotatedKey): string[] {
  return [k.key]
}

/** The stderr summary beside a new key: what it is for (no secret). */
export function describeCreatedKey(k: CreatedKey | RotatedKey): string {
  const scope = k.kind === 'device' ? `device ${k.deviceUuid ?? ''}` : `role ${k.role ?? ''}${k.allowedSourceId ? ` source ${k.allowedSourceId}` : ''}${k.allowedDomains?.length ? ` domains ${k.allowedDomains.join(',')}` : ''}`
  const rotated = 'previous' in k ? `; the old key ${k.previous.kid} ${k.previous.expiresAt ? `stops working at ${k.previous.expiresAt}${everywhereLater(k.previous)}` : 'keeps working'}` : ''
  return `kid ${k.kid} (${scope}), ${k.expiresAt ? `expires ${k.expiresAt}` : 'no expiry'}${rotated}`
}

function scopeOf(k: KeyInfo): string {
  if (k.kind === 'device') return `device ${k.deviceUuid ?? ''}`
  const parts = [`role ${k.role ?? ''}`]
  if (k.allowedSourceId) parts.push(`source ${k.allowedSourceId}`)
  if (k.allowedDomains?.length) parts.push(`domains ${k.allowedDomains.join(',')}`)
  return parts.join(' ')
}

/** `keys list`: one line per key, never a secret. */
export function renderKeyList(result: { keys: readonly KeyInfo[] }): string[] {
  if (result.keys.length === 0) return ['no keys']
  const rows = result.keys.map((k) => [k.kid ?? `(legacy #${k.id})`, k.kind, k.status, scopeOf(k), k.name ?? '', k.expiresAt ?? '-', k.lastUsedAt ?? '-'])
  const head = ['KID', 'KIND', 'STATUS', 'SCOPE', 'NAME', 'EXPIRES', 'LAST USED']
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)]
}

/** When the auth cache keeps the old key working past its expiry (a grace shorter than the cache TTL). */
function everywhereLater(p: RotatedKey['previous']): string {
  return p.effectiveEverywhereAt !== null && p.effectiveEverywhereAt !== p.expiresAt ? ` (everywhere by ${p.effectiveEverywhereAt}: auth cache ${p.authCacheSeconds} s)` : ''
}

/** Running services trust a verified key from memory, so the line says when every one refuses it. */
export function renderRevoked(r: RevokedKey): string[] {
  const cache = `(auth cache ${r.authCacheSeconds} s)`
  if (r.changed) return [`revoked ${r.kind} key ${r.kid}; takes effect everywhere by ${r.effectiveEverywhereAt ?? 'unknown time'} ${cache}`]
  const since = r.effectiveEverywhereAt === null ? '' : `; in effect everywhere from ${r.effectiveEverywhereAt} ${cache}`
  return [`${r.kind} key ${r.kid} was already revoked (${r.revokedAt ?? 'unknown time'})${since}`]
}
