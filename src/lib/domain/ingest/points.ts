import { validateSeriesKey } from '../universal/series-id.js'
import { datetimeField, isPlainObject, listField, missing, objectField, strictInt, strictNumber } from './fields.js'
import type { IssuePath, ParseIssue, Parsed } from './issues.js'
import type { IngestTransport } from './readings.js'

/**
 * Universal data points (reference §1.13, §1.16, §8.1): `{source_id, domain, data_points: [{stream_id,
 * value, timestamp?, stream_type?, sequence?, metadata?}]}`, parsed without coercion by the field rules
 * every transport shares. `domain: "iot"` is refused with the original's message.
 */

/** One parsed point of a packet. Times are epoch ms (microseconds kept). */
export interface DataPointInput {
  streamId: string
  value: number
  /** The point's own time, or null (then "now": such a point is not idempotent). */
  timestamp: number | null
  sequence: number | null
  streamType: string | null
  /** The client's metadata object (stored as JSON with the reason codes). */
  metadata: Record<string, unknown>
}

export interface PointPacket {
  domain: string
  sourceId: string
  points: DataPointInput[]
  transport: IngestTransport
}

/** The source and domain of a packet or a WebSocket `connect` frame, each at its own path. */
export function parseSourceAndDomain(obj: Record<string, unknown>, path: IssuePath, issues: ParseIssue[]): { domain: string; sourceId: string } | undefined {
  const before = issues.length
  if (!('domain' in obj)) missing([...path, 'domain'], issues, obj)
  if (!('source_id' in obj)) missing([...path, 'source_id'], issues, obj)
  if (issues.length > before) return undefined
  // The stream part is checked per point; a placeholder keeps this call to the two packet fields.
  const key = validateSeriesKey({ domain: obj['domain'], source_id: obj['source_id'], stream_id: '-' }, path, issues)
  return key ? { domain: key.domain, sourceId: key.source_id } : undefined
}

/** One point at `path`; undefined after pushing its issues. */
export function parsePoint(raw: unknown, path: IssuePath, issues: ParseIssue[]): DataPointInput | undefined {
  const p = objectField(raw, path, issues)
  if (!p) return undefined
  const before = issues.length
  let streamId: string | undefined
  if ('stream_id' in p) streamId = validateSeriesKey({ domain: '-', source_id: '-', stream_id: p['stream_id'] }, path, issues)?.stream_id
  else missing([...path, 'stream_id'], issues, p)
  const value = 'value' in p ? strictNumber(p['value'], [...path, 'value'], issues) : missing([...path, 'value'], issues, p)
  const timestamp = p['timestamp'] === undefined || p['timestamp'] === null ? null : (datetimeField(p['timestamp'], [...path, 'timestamp'], issues) ?? null)
  const sequence = p['sequence'] === undefined || p['sequence'] === null ? null : (strictInt(p['sequence'], [...path, 'sequence'], issues, 0) ?? null)
  let streamType: string | null = null
  if (p['stream_type'] !== undefined && p['stream_type'] !== null) {
    if (typeof p['stream_type'] === 'string') streamType = p['stream_type']
    else issues.push({ path: [...path, 'stream_type'], code: 'string_type', msg: 'Input should be a valid string', input: p['stream_type'] })
  }
  let metadata: Record<string, unknown> = {}
  if (p['metadata'] !== undefined && p['metadata'] !== null) {
    if (isPlainObject(p['metadata'])) metadata = p['metadata']
    else issues.push({ path: [...path, 'metadata'], code: 'dict_type', msg: 'Input should be a valid dictionary', input: p['metadata'] })
  }
  if (issues.length > before || streamId === undefined || value === undefined) return undefined
  return { streamId, value, timestamp, sequence, streamType, metadata }
}

/** `POST /ingest/data`: the whole packet, or every issue found (nothing is stored from a bad packet). */
export function parsePointPacket(input: unknown, options: { maxItems: number; transport: IngestTransport }): Parsed<PointPacket> {
  const issues: ParseIssue[] = []
  const obj = objectField(input, [], issues)
  if (!obj) return { ok: false, issues }
  const target = parseSourceAndDomain(obj, [], issues)
  const list = 'data_points' in obj ? (listField(obj['data_points'], ['data_points'], issues, options.maxItems) ?? []) : (missing(['data_points'], issues, obj) ?? [])
  const points = parsePointList(list, ['data_points'], issues)
  if (issues.length > 0 || !target) return { ok: false, issues }
  return { ok: true, value: { ...target, points, transport: options.transport } }
}

/** The points of a list at `path` (`data_points`, a WebSocket frame's `batch`). */
export function parsePointList(list: readonly unknown[], path: IssuePath, issues: ParseIssue[]): DataPointInput[] {
  const points: DataPointInput[] = []
  for (let i = 0; i < list.length; i++) {
    const p = parsePoint(list[i], [...path, i], issues)
    if (p) points.push(p)
  }
  return points
}
