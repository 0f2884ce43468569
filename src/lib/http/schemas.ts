import type { IdReading, PacketInput, PacketReading } from '../app/ingest/ingest-service.js'
import { normaliseUuid } from '../domain/uuid.js'
import { BodyInvalid, datetimeField, idString, isPlainObject, listField, missing, objectBody, strictInt, strictNumber, uuidField, type ValidationIssue } from './validation.js'

/**
 * The common reading (`{sensor_uuid, value, sensor_ts?}`: canonical uuid, finite JSON numbers, nothing
 * else to check) accepted without building the error paths the full check needs; anything else, valid
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

/** A packet reading with every check, issues located at body.readings[i]. */
export function checkedReading(raw: unknown, i: number, issues: ValidationIssue[]): PacketReading | undefined {
  const loc = ['body', 'readings', i]
  const r = objectBody(raw, loc, issues)
  if (!r) return undefined
  const sensorUuid = 'sensor_uuid' in r ? uuidField(r['sensor_uuid'], [...loc, 'sensor_uuid'], issues) : missing([...loc, 'sensor_uuid'], issues, r)
  const value = 'value' in r ? strictNumber(r['value'], [...loc, 'value'], issues) : missing([...loc, 'value'], issues, r)
  const sensorTs = r['sensor_ts'] === undefined || r['sensor_ts'] === null ? null : (strictNumber(r['sensor_ts'], [...loc, 'sensor_ts'], issues) ?? null)
  const sequence = r['sequence'] === undefined || r['sequence'] === null ? null : (strictInt(r['sequence'], [...loc, 'sequence'], issues) ?? null)
  const rawMsg = r['msg_id'] ?? r['msgId']
  const msgId = rawMsg === undefined || rawMsg === null ? null : (idString(rawMsg, [...loc, 'msg_id'], issues) ?? null)
  if (sensorUuid === undefined || value === undefined) return undefined
  return { sensorUuid, value, sensorTs: sensorTs === 0 ? null : sensorTs, sequence, msgId }
}

/**
 * Request bodies of the IoT routes (reference §1.9–§1.11), validated without coercion. Unknown fields
 * are ignored as the original did; client-supplied server fields (class, ids, ingest time) never reach
 * storage because only the fields below are read.
 */
export function parsePacket(body: unknown, maxItems: number): PacketInput {
  const issues: ValidationIssue[] = []
  const obj = objectBody(body, ['body'], issues)
  if (!obj) throw new BodyInvalid(issues)
  const deviceUuid = 'device_uuid' in obj ? uuidField(obj['device_uuid'], ['body', 'device_uuid'], issues) : missing(['body', 'device_uuid'], issues, obj)
  const ts = obj['ts'] === undefined || obj['ts'] === null ? null : (datetimeField(obj['ts'], ['body', 'ts'], issues) ?? null)
  const list = obj['readings'] === undefined ? [] : (listField(obj['readings'], ['body', 'readings'], issues, maxItems) ?? [])
  const readings: PacketReading[] = []
  list.forEach((raw, i) => {
    const r = plainReading(raw) ?? checkedReading(raw, i, issues)
    if (r !== undefined) readings.push(r)
  })
  if (issues.length > 0 || deviceUuid === undefined) throw new BodyInvalid(issues)
  return { deviceUuid, ts, readings, transport: 'http' }
}

function parseIdReading(raw: unknown, loc: Array<string | number>, issues: ValidationIssue[]): IdReading | undefined {
  const r = objectBody(raw, loc, issues)
  if (!r) return undefined
  const sensorId = 'sensor_id' in r ? strictInt(r['sensor_id'], [...loc, 'sensor_id'], issues, 1) : missing([...loc, 'sensor_id'], issues, r)
  const value = 'value' in r ? strictNumber(r['value'], [...loc, 'value'], issues) : missing([...loc, 'value'], issues, r)
  const timestamp = r['timestamp'] === undefined || r['timestamp'] === null ? null : (datetimeField(r['timestamp'], [...loc, 'timestamp'], issues) ?? null)
  if (sensorId === undefined || value === undefined) return undefined
  return { sensorId, value, timestamp }
}

/** `POST /ingest/readings`: `{sensor_id, value, timestamp?}`. */
export function parseReading(body: unknown): IdReading {
  const issues: ValidationIssue[] = []
  const r = parseIdReading(body, ['body'], issues)
  if (!r || issues.length > 0) throw new BodyInvalid(issues)
  return r
}

/** `POST /ingest/readings/bulk`: `{readings: [...]}` (default []). */
export function parseBulk(body: unknown, maxItems: number): IdReading[] {
  const issues: ValidationIssue[] = []
  const obj = objectBody(body, ['body'], issues)
  if (!obj) throw new BodyInvalid(issues)
  const list = obj['readings'] === undefined ? [] : (listField(obj['readings'], ['body', 'readings'], issues, maxItems) ?? [])
  const out: IdReading[] = []
  list.forEach((raw, i) => {
    const r = parseIdReading(raw, ['body', 'readings', i], issues)
    if (r) out.push(r)
  })
  if (issues.length > 0) throw new BodyInvalid(issues)
  return out
}

export { isPlainObject }
