import { datetimeField, idString, isPlainObject, missing, objectField, strictInt, strictNumber } from './fields.js'
import type { Parsed, ParseIssue } from './issues.js'
import type { IdReading } from './readings.js'

/** The legacy bound on an MQTT value (reference §9.2: `-1e12 < value < 1e12`). */
const VALUE_LIMIT = 1e12

/** An IoT MQTT reading (reference §9.2) as the ingest path takes it: an id reading with its dedup inputs. */
export interface MqttReading extends IdReading {
  /** Device time, epoch ms (to the microsecond). */
  timestamp: number
  /** The device time in epoch seconds (the legacy `{sensor_id}:{ts:.6f}:{value:.6f}` dedup key). */
  deviceTsSeconds: number
  sequence: number | null
  msgId: string | null
}

/**
 * The payload of `iot/sensors/{id}/readings` (reference §9.2), validated without coercion beyond what
 * DESIGN §3 allows: `sensorId` (alias `sensor_id`) a JSON number or numeric string naming a positive
 * integer; `value` a finite number or plain decimal string, `-1e12 < value < 1e12`; `timestamp` an
 * ISO-8601 time (naive = UTC) or epoch number, required; `v` 1..10 when given; `metadata.sequence` an
 * integer or ignored (as the legacy receiver did); `msgId` (alias `msg_id`) the client's dedup id.
 * The time window is not checked here: the ingest path's guards judge it against its clock, on every
 * transport alike. Unknown fields are ignored.
 */
export function parseMqttReading(input: unknown): Parsed<MqttReading> {
  const issues: ParseIssue[] = []
  const obj = objectField(input, [], issues)
  if (!obj) return { ok: false, issues }
  if (obj['v'] !== undefined && obj['v'] !== null) {
    const v = strictInt(obj['v'], ['v'], issues, 1)
    if (v !== undefined && v > 10) issues.push({ path: ['v'], code: 'less_than_equal', msg: 'Input should be less than or equal to 10', input: obj['v'], ctx: { le: 10 } })
  }
  const idKey = 'sensorId' in obj ? 'sensorId' : 'sensor_id'
  const sensorId = idKey in obj ? strictInt(obj[idKey], [idKey], issues, 1) : missing(['sensorId'], issues, obj)
  let value = 'value' in obj ? strictNumber(obj['value'], ['value'], issues) : missing(['value'], issues, obj)
  if (value !== undefined && !(Math.abs(value) < VALUE_LIMIT)) {
    issues.push({ path: ['value'], code: 'value_error', msg: `Value error, value must be between -${VALUE_LIMIT} and ${VALUE_LIMIT} (exclusive)`, input: obj['value'] })
    value = undefined
  }
  const rawTs = obj['timestamp']
  const timestamp = rawTs === undefined || rawTs === null ? missing(['timestamp'], issues, obj) : datetimeField(rawTs, ['timestamp'], issues)
  const rawMsg = obj['msgId'] ?? obj['msg_id']
  const msgId = rawMsg === undefined || rawMsg === null || rawMsg === '' ? null : (idString(rawMsg, ['msgId'], issues) ?? null)
  if (obj['type'] !== undefined && obj['type'] !== null && typeof obj['type'] !== 'string') issues.push({ path: ['type'], code: 'string_type', msg: 'Input should be a valid string', input: obj['type'] })
  const metadata = obj['metadata']
  let sequence: number | null = null
  if (metadata !== undefined && metadata !== null) {
    if (!isPlainObject(metadata)) issues.push({ path: ['metadata'], code: 'dict_type', msg: 'Input should be a valid dictionary', input: metadata })
    else if (metadata['sequence'] !== undefined && metadata['sequence'] !== null) {
      // The legacy receiver ignored a sequence it could not read as an integer; so do we.
      const ignored: ParseIssue[] = []
      sequence = strictInt(metadata['sequence'], ['metadata', 'sequence'], ignored) ?? null
    }
  }
  if (issues.length > 0 || sensorId === undefined || value === undefined || timestamp === undefined) return { ok: false, issues }
  return { ok: true, value: { sensorId, value, timestamp, deviceTsSeconds: timestamp / 1000, sequence, msgId } }
}

/** One line naming every issue (`sensorId: Field required; value: ...`), for a dead-letter entry's error text. */
export function describeIssues(issues: readonly ParseIssue[]): string {
  return issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(payload)'}: ${i.msg} [${i.code}]`).join('; ')
}
