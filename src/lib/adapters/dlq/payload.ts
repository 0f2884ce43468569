import type { DeadLetterEntry, DlqFilter } from '../../ports/dead-letter-queue.js'

/**
 * The stored form of a payload: JSON text, never truncated. Raw bytes (an MQTT message that is not
 * JSON) are kept exactly as `{"kind":"bytes","encoding":"base64","data":...}`; a value JSON cannot
 * represent (nested deeper than JSON.stringify goes, cyclic) is kept as its text with the reason, so
 * writing a dead letter never fails on its payload.
 */
export function encodePayload(payload: unknown): string {
  if (payload instanceof Uint8Array) return JSON.stringify({ kind: 'bytes', encoding: 'base64', data: Buffer.from(payload).toString('base64') })
  try {
    return JSON.stringify(payload, (_key, value: unknown) => (typeof value === 'bigint' ? value.toString() : value)) ?? 'null'
  } catch (err) {
    let text: string
    try {
      text = String(payload)
    } catch {
      text = Object.prototype.toString.call(payload)
    }
    return JSON.stringify({ kind: 'unserializable', error: err instanceof Error ? err.message : String(err), text })
  }
}

/** Stored text back to the payload; text that is not JSON (entries written by the legacy service) stays text. */
export function decodePayload(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

/** The one definition of a filter match, for backends that filter in memory (Redis) and for test fakes. */
export function matchesFilter(e: DeadLetterEntry, f: DlqFilter): boolean {
  const first = Date.parse(e.firstFailedAt)
  if (f.since !== undefined && !(first >= f.since)) return false
  if (f.until !== undefined && !(first <= f.until)) return false
  if (f.stage !== undefined && e.stage !== f.stage) return false
  if (f.errorClass !== undefined && e.errorClass !== f.errorClass) return false
  if (f.sensorId !== undefined && e.sensorId !== f.sensorId) return false
  if (f.seriesId !== undefined && e.seriesId !== f.seriesId) return false
  if (f.status !== undefined && e.status !== f.status) return false
  if (f.entryIds !== undefined && !f.entryIds.includes(e.entryId)) return false
  return true
}

/** Listing order on every backend: first failure, then entry id. */
export function compareEntries(a: DeadLetterEntry, b: DeadLetterEntry): number {
  if (a.firstFailedAt !== b.firstFailedAt) return a.firstFailedAt < b.firstFailedAt ? -1 : 1
  return a.entryId < b.entryId ? -1 : a.entryId > b.entryId ? 1 : 0
}
