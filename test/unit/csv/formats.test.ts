import { describe, expect, it } from 'vitest'

import { type CsvPoint, type CsvReject, planCsvFormat } from '../../../src/lib/csv/formats.js'
import { UsageError } from '../../../src/lib/errors/index.js'

const T = '2026-03-01T12:00:00Z'
const MS = Date.parse(T)

function mapAll(plan: ReturnType<typeof planCsvFormat>, rows: string[][]): { points: CsvPoint[]; rejects: CsvReject[] } {
  const points: CsvPoint[] = []
  const rejects: CsvReject[] = []
  rows.forEach((r, i) => plan.map(r, i + 2, points, rejects))
  return { points, rejects }
}

function usageProblems(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError)
    return [...(err as UsageError).problems]
  }
  throw new Error('no UsageError')
}

describe('planCsvFormat: layouts from the header', () => {
  it('chooses the layout from the columns (headers trimmed)', () => {
    expect(planCsvFormat([' sensor_id', 'timestamp ', 'value'], { domain: 'iot' }).layout).toBe('iot-by-id')
    expect(planCsvFormat(['device_uuid', 'sensor_uuid', 'timestamp', 'value'], { domain: 'IoT' }).layout).toBe('iot-by-uuid')
    expect(planCsvFormat(['series_id', 'timestamp', 'value'], { domain: 'finance' }).layout).toBe('universal-series')
    expect(planCsvFormat(['stream_id', 'timestamp', 'value'], { domain: 'finance', sourceId: 'nyse' }).layout).toBe('universal-stream')
    expect(planCsvFormat(['time', 'open', 'close'], { domain: 'finance', sourceId: 'nyse', timestampColumn: 'time', valueColumns: ['open'] }).layout).toBe('universal-wide')
  })

  it('lists every header problem at once, as a usage error', () => {
    expect(usageProblems(() => planCsvFormat(['sensor', 'when', 'when'], { domain: 'iot' }))).toEqual([
      'the header repeats the column "when"',
      'the header has no "timestamp" column (columns: "sensor", "when", "when")',
      'the header has no "value" column (columns: "sensor", "when", "when")',
      'an IoT file needs a sensor_id column, or device_uuid and sensor_uuid columns',
    ])
    expect(usageProblems(() => planCsvFormat(['stream_id', 'timestamp', 'value'], { domain: 'finance' }))).toEqual(['stream_id rows need --source-id'])
    expect(usageProblems(() => planCsvFormat(['timestamp', 'a'], { domain: 'finance', valueColumns: ['a', 'b'] }))).toEqual(['the header has no "b" column (columns: "timestamp", "a")', 'the wide format needs --source-id'])
    expect(usageProblems(() => planCsvFormat(['sensor_id', 'timestamp', 'value'], { domain: 'iot', valueColumns: ['value'] }))[0]).toMatch(/^the wide format \(--value-columns\) is for universal domains/)
    expect(usageProblems(() => planCsvFormat(['timestamp', 'value'], { domain: 'finance', sourceId: 's' }))[0]).toMatch(/needs a series_id or stream_id column/)
  })
})

describe('CsvPlan.map: points and rejects by line and column', () => {
  it('IoT by id: good rows give readings; each bad cell a reject naming its column', () => {
    const plan = planCsvFormat(['sensor_id', 'timestamp', 'value', 'sequence'], { domain: 'iot' })
    const { points, rejects } = mapAll(plan, [
      ['7', T, '21.5', ''],
      ['7', '1772366400', ' 300 ', '12'],
      ['0', T, '1', ''],
      ['7', 'soon', 'x', ''],
      ['7', T],
      ['7', T, '', ''],
      ['7', T, '1', '1.5'],
    ])
    expect(points).toEqual([
      { kind: 'iot', line: 2, sensorId: 7, deviceUuid: null, sensorUuid: null, time: MS, value: 21.5, sequence: null },
      { kind: 'iot', line: 3, sensorId: 7, deviceUuid: null, sensorUuid: null, time: 1772366400_000, value: 300, sequence: 12 },
    ])
    expect(rejects.map((r) => [r.line, r.column, r.code])).toEqual([
      [4, 'sensor_id', 'SENSOR_ID_INVALID'],
      [5, 'timestamp', 'TIMESTAMP_INVALID'],
      [5, 'value', 'VALUE_NOT_NUMERIC'],
      [6, 'value', 'MISSING_COLUMN'],
      [7, 'value', 'VALUE_MISSING'],
      [8, 'sequence', 'SEQUENCE_INVALID'],
    ])
    expect(rejects[3]?.reason).toBe('the line has 2 fields, no "value" column')
  })

  it('IoT by uuid: uuids normalised to lower case, a bad one rejected', () => {
    const plan = planCsvFormat(['device_uuid', 'sensor_uuid', 'timestamp', 'value'], { domain: 'iot' })
    const d = '3F0E8D5C-2B1A-4C1E-9A57-1D2F3E4A5B6C'
    const { points, rejects } = mapAll(plan, [
      [d, '8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d', T, '1'],
      [d, 'not-a-uuid', T, '1'],
    ])
    expect(points).toMatchObject([{ deviceUuid: d.toLowerCase(), sensorUuid: '8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d', sensorId: null }])
    expect(rejects.map((r) => [r.line, r.column, r.code])).toEqual([[3, 'sensor_uuid', 'UUID_INVALID']])
  })

  it('series_id rows: domain:source:stream (colons allowed in the stream), inside the import only', () => {
    const plan = planCsvFormat(['series_id', 'timestamp', 'value'], { domain: 'finance', sourceId: 'nyse' })
    const { points, rejects } = mapAll(plan, [
      ['finance:nyse:px:open', T, '1'],
      ['finance:lse:px', T, '2'],
      ['health:nyse:bpm', T, '3'],
      ['finance:nyse', T, '4'],
      ['', T, '5'],
    ])
    expect(points).toMatchObject([{ kind: 'universal', domain: 'finance', sourceId: 'nyse', streamId: 'px:open', column: null, value: 1, sequence: null }])
    expect(rejects.map((r) => [r.line, r.code])).toEqual([
      [3, 'SERIES_OUTSIDE_IMPORT'],
      [4, 'SERIES_OUTSIDE_IMPORT'],
      [5, 'SERIES_ID_INVALID'],
      [6, 'ID_INVALID'],
    ])
  })

  it('wide rows: one point per non-empty cell; a bad cell rejects that cell, a bad time the whole line', () => {
    const plan = planCsvFormat(['time', 'open', 'close', 'note'], { domain: 'finance', sourceId: 'nyse', timestampColumn: 'time', valueColumns: ['open', 'close'], streamIdPrefix: 'px_' })
    const { points, rejects } = mapAll(plan, [
      [T, '1.5', '2.5', 'x'],
      [T, '', '3.5'],
      [T, 'abc', '4.5'],
      ['never', '1', '2'],
    ])
    expect(points.map((p) => (p.kind === 'universal' ? [p.line, p.column, p.streamId, p.value] : null))).toEqual([
      [2, 'open', 'px_open', 1.5],
      [2, 'close', 'px_close', 2.5],
      [3, 'close', 'px_close', 3.5],
      [4, 'close', 'px_close', 4.5],
    ])
    expect(rejects.map((r) => [r.line, r.column, r.code])).toEqual([
      [4, 'open', 'VALUE_NOT_NUMERIC'],
      [5, 'time', 'TIMESTAMP_INVALID'],
    ])
  })
})

describe('the time column', () => {
  it('gives exactly what datetimeField gives, for machine-written and other forms, and refuses what it refuses', async () => {
    const { datetimeField } = await import('../../../src/lib/domain/ingest/fields.js')
    const plan = planCsvFormat(['sensor_id', 'timestamp', 'value'], { domain: 'iot' })
    const texts: string[] = []
    let ms = Date.UTC(2023, 11, 31, 23, 58, 0)
    for (let i = 0; i < 400; i++) {
      ms += 997 + (i % 3) * 1234
      const iso = new Date(ms).toISOString()
      texts.push(iso, iso.replace(/\.\d{3}Z$/, 'Z'), iso.replace('Z', '+02:00'), iso.toLowerCase())
    }
    texts.push('2024-02-30T00:00:00Z', '2024-02-29T00:00:60Z', '2024-02-29T24:00:00Z', '2024-13-01T00:00:00.000Z', '2024-01-01T00:00:0xZ', '2024-01-01T00:00:00.0x0Z', '2024-01-01X00:00:00Z', '1700000000', '2024-01-01 10:00')
    for (const text of texts) {
      const points: CsvPoint[] = []
      const rejects: CsvReject[] = []
      plan.map(['1', text, '1'], 2, points, rejects)
      const want = datetimeField(text, [], [])
      expect([text, points[0]?.time]).toEqual([text, want])
      expect(rejects.length).toBe(want === undefined ? 1 : 0)
    }
  })
})
