import { idString } from '../ingest/fields.js'
import type { IssuePath, ParseIssue } from '../ingest/issues.js'

/**
 * Series ids of the universal path (DESIGN §5, reference §8.2): `domain:source_id:stream_id`.
 * `parseSeriesId` splits on `:` at most twice, so a `:` is refused in `domain` and `source_id` (it would
 * make the id ambiguous) and allowed in `stream_id`. Every part goes through the ids rule every
 * transport shares ({@link idString}: no control characters or lone surrogates, NFC-normalised).
 */

/** The original's message for `domain='iot'` on a universal path (reference §1.13). */
export const IOT_DOMAIN_REFUSED_MESSAGE = "domain='iot' is not allowed in universal ingestion. Use POST /ingest/packets for IoT data."

/** Column widths of `data_points` / `stream_configs` (varchar(50) / varchar(255)). */
export const SERIES_PART_MAX_LENGTH = { domain: 50, source_id: 255, stream_id: 255 } as const

export interface SeriesKey {
  domain: string
  source_id: string
  stream_id: string
}

/** `domain:source_id:stream_id`. */
export function formatSeriesId(key: SeriesKey): string {
  return `${key.domain}:${key.source_id}:${key.stream_id}`
}

/** Whether a domain is the IoT one (compared case-insensitively, as the original did). */
export function isIotDomain(domain: string): boolean {
  return domain.toLowerCase() === 'iot'
}

/**
 * Splits a series id on `:` at most twice (reference §8.2): missing parts are `domain` "generic" and
 * empty `source_id` / `stream_id`. No validation: use {@link validateSeriesKey} on the result.
 */
export function parseSeriesId(seriesId: string): SeriesKey {
  const first = seriesId.indexOf(':')
  if (first < 0) return { domain: seriesId === '' ? 'generic' : seriesId, source_id: '', stream_id: '' }
  const second = seriesId.indexOf(':', first + 1)
  const domain = seriesId.slice(0, first)
  if (second < 0) return { domain: domain === '' ? 'generic' : domain, source_id: seriesId.slice(first + 1), stream_id: '' }
  return { domain: domain === '' ? 'generic' : domain, source_id: seriesId.slice(first + 1, second), stream_id: seriesId.slice(second + 1) }
}

function part(v: unknown, name: keyof SeriesKey, path: IssuePath, issues: ParseIssue[], colonAllowed: boolean): string | undefined {
  const before = issues.length
  const s = idString(v, [...path, name], issues, SERIES_PART_MAX_LENGTH[name])
  if (s === undefined || issues.length > before) return undefined
  if (s.length === 0) {
    issues.push({ path: [...path, name], code: 'string_too_short', msg: 'String should have at least 1 character', input: v, ctx: { min_length: 1 } })
    return undefined
  }
  if (!colonAllowed && s.includes(':')) {
    issues.push({ path: [...path, name], code: 'string_pattern_mismatch', msg: 'String should not contain ":"', input: v })
    return undefined
  }
  return s
}

/**
 * Validates the three parts of a series key (each at `[...path, part]`): strings, non-empty, within the
 * column widths, no control characters, no `:` in `domain` / `source_id`, NFC-normalised; `domain='iot'`
 * (any case) is refused with {@link IOT_DOMAIN_REFUSED_MESSAGE} (pydantic's `value_error`). Returns the
 * normalised key, or undefined after pushing every issue found.
 */
export function validateSeriesKey(
  input: { domain: unknown; source_id: unknown; stream_id: unknown },
  path: IssuePath,
  issues: ParseIssue[],
): SeriesKey | undefined {
  let domain = part(input.domain, 'domain', path, issues, false)
  if (domain !== undefined && isIotDomain(domain)) {
    issues.push({ path: [...path, 'domain'], code: 'value_error', msg: `Value error, ${IOT_DOMAIN_REFUSED_MESSAGE}`, input: input.domain, ctx: { error: IOT_DOMAIN_REFUSED_MESSAGE } })
    domain = undefined
  }
  const source_id = part(input.source_id, 'source_id', path, issues, false)
  const stream_id = part(input.stream_id, 'stream_id', path, issues, true)
  if (domain === undefined || source_id === undefined || stream_id === undefined) return undefined
  return { domain, source_id, stream_id }
}
