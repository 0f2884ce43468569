import { normaliseUuid } from '../uuid.js'
import { datetimeField, idString, isPlainObject, listField, missing, objectField, strictInt, strictNumber, uuidField } from './fields.js'
import type { IssuePath, Parsed, ParseIssue } from './issues.js'

/** Who carried an item in (metrics, DLQ entries, diagnostics). */
export type IngestTransport = 'http' | 'mqtt' | 'websocket' | 'csv' | 'replay'

/** One reading of a device packet, already schema-valid (numbers finite, uuids normalised). */
export interface PacketReading {
  sensorUuid: string
  value: number
  /** Precise epoch seconds from the sensor, as sent (the legacy dedup key is built from it). */
  sensorTs: number | null
  sequence: number | null
  msgId?: string | null
}

/** A device packet (reference §1.11) as every transport hands it to the ingest use-case. */
export interface PacketInput {
  deviceUuid: string
  /** Packet-level device time, epoch ms (to the microsecond). */
  ts: number | null
  readings: readonly PacketReading[]
  /** Set by the caller: the parser does not know which transport carried the packet. */
  transport: IngestTransport
  backfill?: boolean
  alerts?: boolean
}

/** A reading addressed by internal sensor id (legacy endpoints, MQTT). */
export interface IdReading {
  sensorId: number
  value: number
  /** Device time, epoch ms (to the microsecond). */
  timestamp: number | null
  /** The device time in epoch seconds as sent (for the legacy dedup key), when known. */
  deviceTsSeconds?: number | null
  sequence?: number | null
  msgId?: string | null
  /** A replay keeps the original dedup key and ingest time (so a stored item is found as a duplicate). */
  dedupKey?: string | null
  ingestTime?: number
  transport?: string
  backfill?: boolean
  alerts?: boolean
}

/**
 * The common reading (`{sensor_uuid, value, sensor_ts?}`: canonical uuid, finite JSON numbers, nothing
 * else to check) accepted without building the issue paths the full check needs; anything else, valid
 * or not, takes the full check below. Returns exactly what the full check would.
 */
export function plainReading(raw: unknown): PacketReading | undefined {
  if (!isPlainObject(raw)) return undefined
  const u = raw['sensor_uuid']
  const v = raw['value']
  const t = raw['sensor_ts']
  if (typeof u !== 'string' || typeof v !== 'number' || !Number.isFinite(v)) return undefined
  if (t !== undefined && t !== null && !(typeof t === 'number' && Number.isFinite(t))) return undefined
  if (raw['sequence'] != null || raw['msg_id'] != null || raw['msgId'] != null) return undefined
  const sensorUuid = normaliseUuid(u)
  if (sensorUuid === undefined) return undefined
  const sensorTs = t === undefined || t === null || t === 0 ? null : t
  return { sensorUuid, value: v === 0 ? 0 : v, sensorTs, sequence: null, msgId: null }
}

/** A packet reading with every check, issues located at `readings[i]`. */
export function checkedReading(raw: unknown, i: number, issues: ParseIssue[]): PacketReading | undefined {
  const path = ['readings', i]
  const r = objectField(raw, path, issues)
  if (!r) return undefined
  const sensorUuid = 'sensor_uuid' in r ? uuidField(r['sensor_uuid'], [...path, 'sensor_uuid'], issues) : missing([...path, 'sensor_uuid'], issues, r)
  const value = 'value' in r ? strictNumber(r['value'], [...path, 'value'], issues) : missing([...path, 'value'], issues, r)
  const sensorTs = r['sensor_ts'] === undefined || r['sensor_ts'] === null ? null : (strictNumber(r['sensor_ts'], [...path, 'sensor_ts'], issues) ?? null)
  const sequence = r['sequence'] === undefined || r['sequence'] === null ? null : (strictInt(r['sequence'], [...path, 'sequence'], issues) ?? null)
  const rawMsg = r['msg_id'] ?? r['msgId']
  const msgId = rawMsg === undefined || rawMsg === null ? null : (idString(rawMsg, [...path, 'msg_id'], issues) ?? null)
  if (sensorUuid === undefined || value === undefined) return undefined
  return { sensorUuid, value, sensorTs: sensorTs === 0 ? null : sensorTs, sequence, msgId }
}

/**
 * A device packet `{device_uuid, ts?, readings: [...]}` (reference §1.11), validated without coercion.
 * Unknown fields are ignored as the original did; client-supplied server fields (class, ids, ingest
 * time) never reach storage because only the fields below are read.
 */
export function parsePacket(input: unknown, options: { maxItems: number; transport: IngestTransport }): Parsed<PacketInput> {
  const issues: ParseIssue[] = []
  const obj = objectField(input, [], issues)
  if (!obj) return { ok: false, issues }
  const deviceUuid = 'device_uuid' in obj ? uuidField(obj['device_uuid'], ['device_uuid'], issues) : missing(['device_uuid'], issues, obj)
  const ts = obj['ts'] === undefined || obj['ts'] === null ? null : (datetimeField(obj['ts'], ['ts'], issues) ?? null)
  const list = obj['readings'] === undefined ? [] : (listField(obj['readings'], ['readings'], issues, options.maxItems) ?? [])
  const readings: PacketReading[] = []
  for (let i = 0; i < list.length; i++) {
    const raw = list[i]
    const r = plainReading(raw) ?? checkedReading(raw, i, issues)
    if (r !== undefined) readings.push(r)
  }
  if (issues.length > 0 || deviceUuid === undefined) return { ok: false, issues }
  return { ok: true, value: { deviceUuid, ts, readings, transport: options.transport } }
}

function idReading(raw: unknown, path: IssuePath, issues: ParseIssue[]): IdReading | undefined {
  const r = objectField(raw, path, issues)
  if (!r) return undefined
  const sensorId = 'sensor_id' in r ? strictInt(r['sensor_id'], [...path, 'sensor_id'], issues, 1) : missing([...path, 'sensor_id'], issues, r)
  const value = 'value' in r ? strictNumber(r['value'], [...path, 'value'], issues) : missing([...path, 'value'], issues, r)
  const timestamp = r['timestamp'] === undefined || r['timestamp'] === null ? null : (datetimeField(r['timestamp'], [...path, 'timestamp'], issues) ?? null)
  if (sensorId === undefined || value === undefined) return undefined
  return { sensorId, value, timestamp }
}

/** One reading by sensor id, `{sensor_id, value, timestamp?}` (reference §1.9). */
export function parseIdReading(input: unknown): Parsed<IdReading> {
  const issues: ParseIssue[] = []
  const r = idReading(input, [], issues)
  return r && issues.length === 0 ? { ok: true, value: r } : { ok: false, issues }
}

/** A batch by sensor id, `{readings: [...]}` with `readings` defaulting to [] (reference §1.10). */
export function parseIdReadings(input: unknown, options: { maxItems: number }): Parsed<IdReading[]> {
  const issues: ParseIssue[] = []
  const obj = objectField(input, [], issues)
  if (!obj) return { ok: false, issues }
  const list = obj['readings'] === undefined ? [] : (listField(obj['readings'], ['readings'], issues, options.maxItems) ?? [])
  const out: IdReading[] = []
  for (let i = 0; i < list.length; i++) {
    const r = idReading(list[i], ['readings', i], issues)
    if (r) out.push(r)
  }
  return issues.length > 0 ? { ok: false, issues } : { ok: true, value: out }
}
