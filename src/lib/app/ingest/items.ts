import type { IngestTransport } from '../../domain/ingest/readings.js'

/** The transports that feed the one ingest path (the domain's list). */
export type Transport = IngestTransport

/** One reading on its way to a group-commit flush (resolved, guarded, keyed). Times are epoch ms. */
export interface ReadingItem {
  sensorId: number
  deviceId: number
  value: number
  /** The device's own time, or null (then the reading's time is the ingest time). */
  deviceTime: number | null
  ingestTime: number
  dedupKey: string | null
  /** The dedup pre-filter key (see filterKeyOf), computed once when the item is built. */
  filterKey: string | null
  sequence: number | null
  transport: Transport
  /** Backfill: classified with its own time, exempt from the age window, no alerts or state unless `alerts`. */
  backfill: boolean
  alerts: boolean
}

export type ReceiptStatus = 'stored' | 'duplicate' | 'rejected' | 'dead_lettered'

/** What happened to one item of a batch (DESIGN §3 receipts). */
export interface Receipt {
  index: number
  status: ReceiptStatus
  code?: string
  dlq_id?: string
  classification?: string
}

export interface ItemOutcome {
  status: ReceiptStatus
  code?: string
  classification?: string
  dlqId?: string
}

/** Python-style `{x:.6f}` (the legacy dedup key shape). */
function fixed6(x: number): string {
  return x.toFixed(6)
}

/**
 * The dedup key of DESIGN §6: the client's msgId when given; otherwise built from what the device
 * sent: its own time and value in the legacy `{sensor_id}:{ts:.6f}:{value:.6f}` shape, `:{sequence}`
 * appended when present, and the packet index when the reading is timed only by the packet `ts`.
 * A reading with no device time, no sequence and no msgId has no key.
 */
export function buildDedupKey(input: {
  sensorId: number
  value: number
  msgId?: string | null
  /** The device's time in epoch seconds as it sent it (sensor_ts, the MQTT timestamp, the reading's timestamp). */
  deviceTsSeconds?: number | null
  sequence?: number | null
  /** Set when the time came from the packet-level `ts`: readings of one packet share it. */
  packetIndex?: number | null
}): string | null {
  if (input.msgId !== undefined && input.msgId !== null && input.msgId !== '') return input.msgId
  const ts = input.deviceTsSeconds ?? null
  const seq = input.sequence ?? null
  if (ts === null && seq === null) return null
  let key = `${input.sensorId}:${ts === null ? '-' : fixed6(ts)}:${fixed6(input.value)}`
  if (seq !== null) key += `:${seq}`
  if (input.packetIndex !== undefined && input.packetIndex !== null) key += `#${input.packetIndex}`
  return key
}

/**
 * The scoped pre-filter key of a dedup key: keys we built keep the legacy `{sensor}:{ts}:{value}` shape
 * (`dedup:msg:<key>` in Redis); a client msgId is scoped as `{sensor}:msg:{msgId}` (msgIds are per
 * sensor in the database, and one that merely looks like another sensor's key must not collide with it).
 */
export function filterKeyOf(sensorId: number, dedupKey: string | null, built: boolean): string | null {
  if (dedupKey === null) return null
  return built ? dedupKey : `${sensorId}:msg:${dedupKey}`
}
