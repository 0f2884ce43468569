import secureJson from 'secure-json-parse'

import { isPlainObject, jsonDepthExceeds } from '../../domain/ingest/fields.js'
import type { ParseIssue } from '../../domain/ingest/issues.js'
import { type DataPointInput, parsePoint, parseSourceAndDomain } from '../../domain/ingest/points.js'
import { isIotDomain } from '../../domain/universal/index.js'
import type { PointReceipt } from '../../app/universal/point-service.js'
import type { Receipt } from '../../app/ingest/items.js'

/**
 * The frames of WebSocket `/ingest/stream` (reference §1.16): JSON text frames in, JSON text frames out.
 * Pure functions, so the wire shapes are unit-tested without a socket.
 */

/** Close codes (RFC 6455 §7.4.1) as the original used them, plus 1009 (ws sends it for an oversized message). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  unsupported: 1003,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
} as const

export type ServerFrame =
  | { type: 'connected'; session_id: string }
  | { type: 'error'; error: string; code?: string; retry_after?: number; batch_id?: string | number; id?: string | number }
  | AckFrame

export interface AckFrame {
  type: 'ack'
  batch_id?: string | number
  id?: string | number
  /** The largest positive `sequence` among the frame's well-formed points (the original's field). */
  sequence_up_to: number | null
  rejected: Array<{ index: number; stream_id: string; reason: string }>
  /** Points not rejected: stored, duplicates and dead-lettered (the original's `len(batch) - len(rejected)`). */
  processed: number
  inserted: number
  duplicates: number
  dead_lettered: number
  receipts: Receipt[]
}

export type Decoded = { ok: true; value: Record<string, unknown> } | { ok: false; error: string }

/** A client frame: JSON object text, within the depth limit, no `__proto__`/`constructor` keys (as the HTTP parser). */
export function decodeFrame(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean, maxDepth: number): Decoded {
  if (isBinary) return { ok: false, error: 'Binary frames are not supported: send JSON text frames' }
  const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8')
  let value: unknown
  try {
    value = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch (err) {
    if (err instanceof SyntaxError && /forbidden prototype property/i.test(err.message)) return { ok: false, error: 'Forbidden key in JSON: __proto__ and constructor are not accepted' }
    return { ok: false, error: `Invalid JSON: ${(err instanceof Error ? err.message : String(err)).slice(0, 200)}` }
  }
  if (jsonDepthExceeds(value, maxDepth)) return { ok: false, error: `JSON nested deeper than ${maxDepth} levels` }
  if (!isPlainObject(value)) return { ok: false, error: 'Expected a JSON object' }
  return { ok: true, value }
}

const firstMessage = (issues: readonly ParseIssue[]): string => {
  const i = issues[0]
  return i ? (i.path.length > 0 ? `${i.path.join('.')}: ${i.msg}` : i.msg) : 'invalid'
}

export type ConnectCheck =
  | { ok: true; domain: string; sourceId: string; apiKey: string }
  | { ok: false; error: string; close: number }

/**
 * The `connect` frame, checked in the original's order: type (1003), missing fields (1003), `domain: iot`
 * (1008); then our field rules for source and domain (1003). The key comes from the upgrade's `X-API-Key`
 * or the frame's `api_key`, never from the query string.
 */
export function checkConnect(frame: Record<string, unknown>, headerKey: string | undefined): ConnectCheck {
  if (frame['type'] !== 'connect') return { ok: false, error: "Expected 'connect' message", close: CLOSE.unsupported }
  const frameKey = typeof frame['api_key'] === 'string' && frame['api_key'] !== '' ? frame['api_key'] : undefined
  const apiKey = headerKey ?? frameKey
  if (!frame['source_id'] || !frame['domain'] || apiKey === undefined) return { ok: false, error: 'Missing source_id, domain, or api_key', close: CLOSE.unsupported }
  if (typeof frame['domain'] === 'string' && isIotDomain(frame['domain'])) return { ok: false, error: "domain='iot' not allowed in WebSocket transport", close: CLOSE.policy }
  const issues: ParseIssue[] = []
  const target = parseSourceAndDomain(frame, [], issues)
  if (!target) return { ok: false, error: firstMessage(issues), close: CLOSE.unsupported }
  return { ok: true, ...target, apiKey }
}

/** A `data` frame's well-formed points (with their index in `batch`) and the refused ones with their reason. */
export interface ParsedBatch {
  points: DataPointInput[]
  indexes: number[]
  rejected: Array<{ index: number; stream_id: string; reason: string }>
  sequenceUpTo: number | null
  echo: { batch_id?: string | number; id?: string | number }
}

/** The client's `batch_id` / `id`, echoed in the answer when it is a short string or a finite number. */
export function echoOf(frame: Record<string, unknown>): ParsedBatch['echo'] {
  const echo: ParsedBatch['echo'] = {}
  for (const k of ['batch_id', 'id'] as const) {
    const v = frame[k]
    if ((typeof v === 'string' && v.length <= 200) || (typeof v === 'number' && Number.isFinite(v))) echo[k] = v
  }
  return echo
}

/**
 * `{type: 'data', batch: [...]}`: a frame that is not a non-empty list within `maxItems` is refused whole
 * (an error frame, nothing stored); a bad item is rejected with its reason and the rest proceed.
 */
export function parseDataFrame(frame: Record<string, unknown>, maxItems: number): { ok: true; value: ParsedBatch } | { ok: false; error: string } {
  const batch = frame['batch']
  if (batch === undefined || batch === null || (Array.isArray(batch) && batch.length === 0)) return { ok: false, error: 'Empty batch' }
  if (!Array.isArray(batch)) return { ok: false, error: 'batch: Input should be a valid list' }
  if (batch.length > maxItems) return { ok: false, error: `Batch too large: ${batch.length} items (at most ${maxItems})` }
  const out: ParsedBatch = { points: [], indexes: [], rejected: [], sequenceUpTo: null, echo: echoOf(frame) }
  batch.forEach((raw: unknown, index) => {
    const issues: ParseIssue[] = []
    const point = parsePoint(raw, [], issues)
    if (point) {
      out.points.push(point)
      out.indexes.push(index)
      if (point.sequence !== null && point.sequence > 0 && (out.sequenceUpTo === null || point.sequence > out.sequenceUpTo)) out.sequenceUpTo = point.sequence
      return
    }
    const obj = isPlainObject(raw) ? raw : {}
    const streamId = typeof obj['stream_id'] === 'string' && obj['stream_id'] !== '' ? obj['stream_id'].slice(0, 255) : 'unknown'
    const missingField = !('stream_id' in obj) || !('value' in obj) || obj['value'] === null
    out.rejected.push({ index, stream_id: streamId, reason: missingField ? 'Missing stream_id or value' : firstMessage(issues) })
  })
  return { ok: true, value: out }
}

/** The ack of a committed batch: the original's fields plus our receipts, with indexes into the client's `batch`. */
export function ackFrame(batch: ParsedBatch, receipt: PointReceipt, total: number): AckFrame {
  const rejected = [...batch.rejected]
  const receipts: Receipt[] = batch.rejected.map((r) => ({ index: r.index, status: 'rejected', code: 'INVALID_POINT' }))
  receipt.receipts.forEach((rc) => {
    const index = batch.indexes[rc.index] as number
    receipts.push({ ...rc, index })
    const res = receipt.results[rc.index]
    if (rc.status === 'rejected') rejected.push({ index, stream_id: res?.stream_id ?? 'unknown', reason: res?.reason ?? rc.code ?? 'rejected' })
  })
  receipts.sort((a, b) => a.index - b.index)
  rejected.sort((a, b) => a.index - b.index)
  return {
    type: 'ack',
    ...batch.echo,
    sequence_up_to: batch.sequenceUpTo,
    rejected,
    processed: total - rejected.length,
    inserted: receipt.inserted,
    duplicates: receipt.duplicates,
    dead_lettered: receipt.dead_lettered,
    receipts,
  }
}
