import { datetimeField, idString, strictInt, strictNumber } from '../domain/ingest/fields.js'
import type { ParseIssue } from '../domain/ingest/issues.js'
import { roundToMicros } from '../domain/time.js'
import { normaliseUuid } from '../domain/uuid.js'
import { UsageError } from '../errors/index.js'

/**
 * The CSV layouts `ingest csv` and `POST /ingest/csv` read (DESIGN §8, reference §1.13), as a plan
 * made once from the header, then applied to every record: each record gives points, or rejects
 * with its line, column and reason. Pure: no I/O.
 */

/** What the caller says about the file. */
export interface CsvFormatOptions {
  /** `iot`, or a universal domain. */
  domain: string
  /** Universal: the source every row belongs to (required unless rows carry `series_id`). */
  sourceId?: string | undefined
  /** The timestamp column (default `timestamp`); naming value columns makes the file wide. */
  timestampColumn?: string | undefined
  /** Wide format: one universal stream per column. */
  valueColumns?: readonly string[] | undefined
  /** Wide format: stream id = prefix + column name. */
  streamIdPrefix?: string | undefined
}

/** One IoT reading of a file: by internal sensor id, or by device and sensor uuid. Times epoch ms. */
export interface IotCsvPoint {
  kind: 'iot'
  line: number
  sensorId: number | null
  deviceUuid: string | null
  sensorUuid: string | null
  time: number
  value: number
  sequence: number | null
}

/** One universal data point of a file. Times epoch ms. */
export interface UniversalCsvPoint {
  kind: 'universal'
  line: number
  /** The value column it came from (wide format), else null. */
  column: string | null
  domain: string
  sourceId: string
  streamId: string
  time: number
  value: number
  sequence: number | null
}

export type CsvPoint = IotCsvPoint | UniversalCsvPoint

/** A bad line (or cell, in the wide format): never stored, always reported. */
export interface CsvReject {
  line: number
  /** The column at fault, when one is. */
  column: string | null
  code: string
  reason: string
}

export type CsvLayout = 'iot-by-id' | 'iot-by-uuid' | 'universal-series' | 'universal-stream' | 'universal-wide'

export interface CsvPlan {
  readonly layout: CsvLayout
  readonly domain: string
  /** The header's column names as read (after trimming). */
  readonly header: readonly string[]
  /** Maps one record into `points` and `rejects` (appended). Returns the number of points added. */
  map(fields: readonly string[], line: number, points: CsvPoint[], rejects: CsvReject[]): number
}

const MAX_ID = 255

function required(header: readonly string[], name: string, problems: string[]): number {
  const i = header.indexOf(name)
  if (i === -1) problems.push(`the header has no ${JSON.stringify(name)} column (columns: ${header.map((h) => JSON.stringify(h)).join(', ')})`)
  return i
}

/** Builds the plan from the header, or throws a UsageError listing every problem (nothing is read further). */
export function planCsvFormat(rawHeader: readonly string[], options: CsvFormatOptions): CsvPlan {
  const header = rawHeader.map((h) => h.trim())
  const problems: string[] = []
  const domain = options.domain.trim()
  const iot = domain.toLowerCase() === 'iot'
  const tsName = options.timestampColumn ?? 'timestamp'
  const wide = options.valueColumns !== undefined && options.valueColumns.length > 0
  if (domain === '') problems.push('--domain must not be empty')
  const seen = new Set<string>()
  for (const h of header) {
    if (seen.has(h)) problems.push(`the header repeats the column ${JSON.stringify(h)}`)
    seen.add(h)
  }
  const ts = required(header, tsName, problems)
  const seq = header.indexOf('sequence')
  if (iot) {
    if (wide) problems.push('the wide format (--value-columns) is for universal domains; IoT files have sensor_id (or device_uuid and sensor_uuid), timestamp and value columns')
    const value = required(header, 'value', problems)
    const sensorId = header.indexOf('sensor_id')
    const deviceUuid = header.indexOf('device_uuid')
    const sensorUuid = header.indexOf('sensor_uuid')
    if (sensorId === -1 && (deviceUuid === -1 || sensorUuid === -1)) problems.push('an IoT file needs a sensor_id column, or device_uuid and sensor_uuid columns')
    if (problems.length > 0) throw new UsageError(`cannot read the CSV header: ${problems.join('; ')}`, { problems })
    return sensorId !== -1 ? iotPlan('iot-by-id', header, { ts, value, seq, sensorId, deviceUuid: -1, sensorUuid: -1 }) : iotPlan('iot-by-uuid', header, { ts, value, seq, sensorId: -1, deviceUuid, sensorUuid })
  }
  const sourceId = options.sourceId?.trim()
  if (wide) {
    const columns = (options.valueColumns ?? []).map((c) => c.trim())
    const indexes = columns.map((c) => required(header, c, problems))
    if (!sourceId) problems.push('the wide format needs --source-id')
    if (problems.length > 0) throw new UsageError(`cannot read the CSV header: ${problems.join('; ')}`, { problems })
    return widePlan(header, domain, sourceId as string, ts, seq, columns, indexes, options.streamIdPrefix ?? '')
  }
  const value = required(header, 'value', problems)
  const series = header.indexOf('series_id')
  const stream = header.indexOf('stream_id')
  if (series === -1 && stream === -1) problems.push('a long-format file needs a series_id or stream_id column (or name the value columns with --value-columns for the wide format)')
  if (series === -1 && stream !== -1 && !sourceId) problems.push('stream_id rows need --source-id')
  if (problems.length > 0) throw new UsageError(`cannot read the CSV header: ${problems.join('; ')}`, { problems })
  return universalLongPlan(header, domain, sourceId, { ts, value, seq, series, stream })
}

/** Cell readers shared by the layouts: each returns the value, or undefined after pushing a reject. */
class Cells {
  private readonly issues: ParseIssue[] = []
  private readonly minutes = new MinuteCache()
  constructor(private readonly header: readonly string[]) {}

  private name(i: number): string {
    return this.header[i] ?? `#${i + 1}`
  }

  /** The field, or a MISSING_COLUMN reject when the record is too short for it. */
  field(fields: readonly string[], i: number, line: number, rejects: CsvReject[]): string | undefined {
    const v = fields[i]
    if (v === undefined) rejects.push({ line, column: this.name(i), code: 'MISSING_COLUMN', reason: `the line has ${fields.length} field${fields.length === 1 ? '' : 's'}, no ${JSON.stringify(this.name(i))} column` })
    return v
  }

  number(text: string, i: number, line: number, rejects: CsvReject[]): number | undefined {
    const issues = this.issues
    issues.length = 0
    const n = strictNumber(text, [], issues)
    if (n === undefined) rejects.push({ line, column: this.name(i), code: text.trim() === '' ? 'VALUE_MISSING' : 'VALUE_NOT_NUMERIC', reason: `${JSON.stringify(clip(text))} is not a finite decimal number` })
    return n
  }

  time(text: string, i: number, line: number, rejects: CsvReject[]): number | undefined {
    const fast = this.minutes.time(text)
    if (fast !== undefined) return fast
    const issues = this.issues
    issues.length = 0
    const t = text.trim() === '' ? undefined : datetimeField(text, [], issues)
    if (t === undefined) rejects.push({ line, column: this.name(i), code: 'TIMESTAMP_INVALID', reason: `${JSON.stringify(clip(text))} is not an ISO-8601 time or epoch seconds` })
    return t
  }

  int(text: string, i: number, line: number, rejects: CsvReject[], code: string, min?: number): number | undefined {
    const issues = this.issues
    issues.length = 0
    const n = strictInt(text, [], issues, min)
    if (n === undefined) rejects.push({ line, column: this.name(i), code, reason: `${JSON.stringify(clip(text))} is not a whole number${min === undefined ? '' : ` of at least ${min}`}` })
    return n
  }

  /** An optional integer column (sequence): empty means none. */
  optionalInt(fields: readonly string[], i: number, line: number, rejects: CsvReject[]): number | null | undefined {
    if (i === -1) return null
    const text = fields[i]
    if (text === undefined || text.trim() === '') return null
    return this.int(text, i, line, rejects, 'SEQUENCE_INVALID')
  }

  uuid(text: string, i: number, line: number, rejects: CsvReject[]): string | undefined {
    const u = normaliseUuid(text)
    if (u === undefined) rejects.push({ line, column: this.name(i), code: 'UUID_INVALID', reason: `${JSON.stringify(clip(text))} is not a UUID` })
    return u
  }

  id(text: string, i: number, line: number, rejects: CsvReject[]): string | undefined {
    const issues = this.issues
    issues.length = 0
    const s = text.trim() === '' ? undefined : idString(text.trim(), [], issues, MAX_ID)
    if (s === undefined) rejects.push({ line, column: this.name(i), code: 'ID_INVALID', reason: issues[0]?.msg ?? 'empty id' })
    return s
  }
}

const ZERO = 48
const digit = (s: string, i: number): number => {
  const d = s.charCodeAt(i) - ZERO
  return d >= 0 && d <= 9 ? d : NaN
}

/**
 * A fast path for the time column of machine-written files, `YYYY-MM-DDTHH:MM:SS[.fff]Z`: rows of a
 * file share their minute, so the minute's epoch is computed once (by datetimeField, which validates
 * it) and each row adds its seconds and milliseconds with the same arithmetic datetimeField uses (so
 * the result is identical). Anything else returns undefined and takes the full parser.
 */
class MinuteCache {
  private prefix = ''
  private base: number | undefined

  time(text: string): number | undefined {
    const n = text.length
    if ((n !== 20 && n !== 24) || text.charCodeAt(n - 1) !== 90 /* Z */ || text.charCodeAt(16) !== 58 /* : */ || text.charCodeAt(10) !== 84 /* T */) return undefined
    const sec = digit(text, 17) * 10 + digit(text, 18)
    if (!(sec <= 59)) return undefined
    let frac = 0
    if (n === 24) {
      if (text.charCodeAt(19) !== 46 /* . */) return undefined
      const ms = digit(text, 20) * 100 + digit(text, 21) * 10 + digit(text, 22)
      if (Number.isNaN(ms)) return undefined
      frac = Number(text.slice(19, 23)) * 1000
    }
    const prefix = text.slice(0, 16)
    if (prefix !== this.prefix) {
      this.prefix = prefix
      this.base = datetimeField(`${prefix}:00Z`, [], [])
    }
    if (this.base === undefined) return undefined
    return roundToMicros(this.base + sec * 1000 + frac)
  }
}

const clip = (s: string): string => (s.length > 60 ? `${s.slice(0, 57)}...` : s)

interface IotColumns {
  ts: number
  value: number
  seq: number
  sensorId: number
  deviceUuid: number
  sensorUuid: number
}

function iotPlan(layout: 'iot-by-id' | 'iot-by-uuid', header: readonly string[], c: IotColumns): CsvPlan {
  const cells = new Cells(header)
  return {
    layout,
    domain: 'iot',
    header,
    map(fields, line, points, rejects) {
      const before = rejects.length
      let sensorId: number | null = null
      let deviceUuid: string | null = null
      let sensorUuid: string | null = null
      if (layout === 'iot-by-id') {
        const raw = cells.field(fields, c.sensorId, line, rejects)
        if (raw !== undefined) sensorId = cells.int(raw, c.sensorId, line, rejects, 'SENSOR_ID_INVALID', 1) ?? null
      } else {
        const d = cells.field(fields, c.deviceUuid, line, rejects)
        if (d !== undefined) deviceUuid = cells.uuid(d, c.deviceUuid, line, rejects) ?? null
        const s = cells.field(fields, c.sensorUuid, line, rejects)
        if (s !== undefined) sensorUuid = cells.uuid(s, c.sensorUuid, line, rejects) ?? null
      }
      const tsText = cells.field(fields, c.ts, line, rejects)
      const time = tsText === undefined ? undefined : cells.time(tsText, c.ts, line, rejects)
      const valueText = cells.field(fields, c.value, line, rejects)
      const value = valueText === undefined ? undefined : cells.number(valueText, c.value, line, rejects)
      const sequence = cells.optionalInt(fields, c.seq, line, rejects)
      if (rejects.length > before || time === undefined || value === undefined || sequence === undefined) return 0
      points.push({ kind: 'iot', line, sensorId, deviceUuid, sensorUuid, time, value, sequence })
      return 1
    },
  }
}

interface LongColumns {
  ts: number
  value: number
  seq: number
  series: number
  stream: number
}

/** `domain:source_id:stream_id`; the stream id may itself hold colons. */
function splitSeriesId(text: string): { domain: string; sourceId: string; streamId: string } | undefined {
  const a = text.indexOf(':')
  const b = a === -1 ? -1 : text.indexOf(':', a + 1)
  if (a <= 0 || b <= a + 1 || b === text.length - 1) return undefined
  return { domain: text.slice(0, a), sourceId: text.slice(a + 1, b), streamId: text.slice(b + 1) }
}

function universalLongPlan(header: readonly string[], domain: string, sourceId: string | undefined, c: LongColumns): CsvPlan {
  const cells = new Cells(header)
  const layout: CsvLayout = c.series !== -1 ? 'universal-series' : 'universal-stream'
  return {
    layout,
    domain,
    header,
    map(fields, line, points, rejects) {
      const before = rejects.length
      let target: { domain: string; sourceId: string; streamId: string } | undefined
      if (layout === 'universal-series') {
        const raw = cells.field(fields, c.series, line, rejects)
        const id = raw === undefined ? undefined : cells.id(raw, c.series, line, rejects)
        if (id !== undefined) {
          target = splitSeriesId(id)
          if (!target) rejects.push({ line, column: 'series_id', code: 'SERIES_ID_INVALID', reason: `${JSON.stringify(clip(id))} is not domain:source_id:stream_id` })
          else if (target.domain !== domain || (sourceId !== undefined && target.sourceId !== sourceId)) {
            rejects.push({ line, column: 'series_id', code: 'SERIES_OUTSIDE_IMPORT', reason: `${JSON.stringify(clip(id))} is outside the import's ${domain}${sourceId === undefined ? '' : `:${sourceId}`}` })
            target = undefined
          }
        }
      } else {
        const raw = cells.field(fields, c.stream, line, rejects)
        const streamId = raw === undefined ? undefined : cells.id(raw, c.stream, line, rejects)
        if (streamId !== undefined) target = { domain, sourceId: sourceId as string, streamId }
      }
      const tsText = cells.field(fields, c.ts, line, rejects)
      const time = tsText === undefined ? undefined : cells.time(tsText, c.ts, line, rejects)
      const valueText = cells.field(fields, c.value, line, rejects)
      const value = valueText === undefined ? undefined : cells.number(valueText, c.value, line, rejects)
      const sequence = cells.optionalInt(fields, c.seq, line, rejects)
      if (rejects.length > before || !target || time === undefined || value === undefined || sequence === undefined) return 0
      points.push({ kind: 'universal', line, column: null, domain: target.domain, sourceId: target.sourceId, streamId: target.streamId, time, value, sequence })
      return 1
    },
  }
}

function widePlan(header: readonly string[], domain: string, sourceId: string, ts: number, seq: number, columns: readonly string[], indexes: readonly number[], prefix: string): CsvPlan {
  const cells = new Cells(header)
  const streamIds = columns.map((c) => `${prefix}${c}`)
  return {
    layout: 'universal-wide',
    domain,
    header,
    map(fields, line, points, rejects) {
      const before = rejects.length
      const tsText = cells.field(fields, ts, line, rejects)
      const time = tsText === undefined ? undefined : cells.time(tsText, ts, line, rejects)
      const sequence = cells.optionalInt(fields, seq, line, rejects)
      // A bad time or sequence rejects the whole line: none of its cells can be placed.
      if (rejects.length > before || time === undefined || sequence === undefined) return 0
      let added = 0
      for (let k = 0; k < indexes.length; k++) {
        const i = indexes[k] as number
        const text = fields[i]
        // An empty (or absent) cell is a gap in a sparse wide file, not a bad value.
        if (text === undefined || text.trim() === '') continue
        const value = cells.number(text, i, line, rejects)
        if (value === undefined) continue
        points.push({ kind: 'universal', line, column: columns[k] as string, domain, sourceId, streamId: streamIds[k] as string, time, value, sequence })
        added++
      }
      return added
    },
  }
}
