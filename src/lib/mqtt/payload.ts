import secureJson from 'secure-json-parse'

import { jsonDepthExceeds } from '../domain/ingest/fields.js'

const UTF8 = new TextDecoder('utf-8', { fatal: true })

export type DecodedPayload = { ok: true; value: unknown } | { ok: false; error: string }

/**
 * An MQTT payload's bytes to a JSON value, refused (never coerced) when it is not strict UTF-8, not
 * JSON, carries `__proto__`/`constructor` keys, nests deeper than `maxDepth` or is larger than
 * `maxBytes` (reliability.md §4.3: every such message is dead-lettered, then acked).
 */
export function decodeJsonPayload(bytes: Uint8Array, limits: { maxBytes: number; maxDepth: number }): DecodedPayload {
  if (bytes.length === 0) return { ok: false, error: 'Invalid JSON: empty payload' }
  if (bytes.length > limits.maxBytes) return { ok: false, error: `Invalid JSON: payload of ${bytes.length} bytes is over the ${limits.maxBytes}-byte limit` }
  let text: string
  try {
    text = UTF8.decode(bytes)
  } catch {
    return { ok: false, error: 'Invalid JSON: the payload is not UTF-8' }
  }
  let value: unknown
  try {
    value = secureJson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' })
  } catch (err) {
    return { ok: false, error: `Invalid JSON: ${(err as Error).message}` }
  }
  if (jsonDepthExceeds(value, limits.maxDepth)) return { ok: false, error: `Invalid JSON: nested deeper than ${limits.maxDepth} levels` }
  return { ok: true, value }
}
