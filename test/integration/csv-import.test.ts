import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import { type CsvImportOptions, importCsv } from '../../src/lib/app/csv/import-csv.js'
import { csvImportEnv, pointServiceWriter } from '../../src/lib/app/csv/run-import.js'
import { IngestService } from '../../src/lib/app/ingest/ingest-service.js'
import type { CsvPlan } from '../../src/lib/csv/formats.js'
import { engineList, type Harness, startHarness } from '../helpers/http-harness.js'
import { tempDir } from '../helpers/services.js'

const engines = await engineList()

/** A time in the file: hours before the harness clock (well inside the age window: live and backfill alike). */
const iso = (ms: number): string => new Date(ms).toISOString()

describe.each(engines)('ingest csv (IoT) on %s', (engine) => {
  let h: Harness
  let sensorId: number
  const dir = tempDir()
  const count = async (where = '') => Number((await h.sql(`SELECT count(*) AS n FROM sensor_readings ${where}`))[0]?.['n'])
  const run = (file: string, extra: Partial<CsvImportOptions> = {}, alerts = false) =>
    importCsv(csvImportEnv(h.ctx, { ingest: h.rt.ingest }, { alerts }), { input: { kind: 'file', path: file }, format: { domain: 'iot' }, delimiter: ',', alerts, dryRun: false, ...extra })

  beforeAll(async () => {
    h = await startHarness(engine, { RATE_LIMIT_ENABLED: '0' })
    sensorId = Number((await h.sql('SELECT id FROM sensors ORDER BY id'))[0]?.['id'])
  })
  afterAll(async () => {
    await h.close()
    dir.remove()
  })
  beforeEach(() => h.reset())

  it('stores every good row of a messy file, lists every bad line by number, and a re-run stores nothing new', async () => {
    const t0 = h.clock.now() - 3600_000
    const lines = [
      '\ufeffsensor_id,timestamp,value,note', // 1: BOM + header
      `${sensorId},${iso(t0)},21.5,ok`, // 2
      `${sensorId},${iso(t0 + 1000)},abc,"bad, value"`, // 3: non-numeric
      '', // 4: empty line
      `${sensorId},yesterday,22,bad time`, // 5
      `${sensorId},${iso(t0 + 3000)}`, // 6: missing column
      `${sensorId},${iso(t0 + 4000)},22.5,"quoted, comma"`, // 7
      `${sensorId},${iso(t0 + 5000)},23,"two`, // 8: a quoted newline...
      `lines"`, // 9
      `999999,${iso(t0 + 6000)},23,unknown sensor`, // 10
      `${sensorId},${iso(t0 + 7000)},,empty value`, // 11
      `${sensorId},${iso(t0 + 8000)},24`, // 12 (fewer columns than the header, but all needed ones)
      '', // 13
    ]
    const file = join(dir.path, `messy-${engine}.csv`)
    writeFileSync(file, lines.join('\r\n'))
    const r = await run(file)
    expect(r).toMatchObject({ status: 'completed', rows: 9, stored: 4, duplicates: 0, rejected: 5 })
    expect(r.rejects.map((x) => [x.line, x.column, x.code])).toEqual([
      [3, 'value', 'VALUE_NOT_NUMERIC'],
      [5, 'timestamp', 'TIMESTAMP_INVALID'],
      [6, 'value', 'MISSING_COLUMN'],
      [10, null, 'UNKNOWN_SENSOR'],
      [11, 'value', 'VALUE_MISSING'],
    ])
    expect(await count()).toBe(4)
    const stored = (await h.sql('SELECT value FROM sensor_readings ORDER BY device_timestamp')).map((x) => Number(x['value']))
    expect(stored).toEqual([21.5, 22.5, 23, 24])
    // The rejects file next to the input lists the same lines.
    const rejectsFile = join(dir.path, `messy-${engine}.rejects.csv`)
    expect(r.rejectsFile).toBe(rejectsFile)
    const fileLines = readFileSync(rejectsFile, 'utf8').trim().split('\r\n')
    expect(fileLines[0]).toBe('line,column,code,reason')
    expect(fileLines.slice(1).map((l) => Number(l.split(',')[0])).sort((a, b) => a - b)).toEqual(r.rejects.map((x) => x.line))

    const again = await run(file)
    expect(again).toMatchObject({ stored: 0, duplicates: 4, rejected: r.rejected })
    expect(await count()).toBe(4)
    const job = await h.ctx.universal.csvImports.get(r.jobId as string)
    expect(job).toMatchObject({ status: 'completed', totalRows: 9, processedRows: 9 })
    expect(again.jobId).toBe(r.jobId)
  })

  it('a run that fails half way resumes from its checkpoint and ends with exactly the good rows', async () => {
    const t0 = h.clock.now() - 7200_000
    const rows = ['sensor_id,timestamp,value']
    for (let i = 0; i < 5000; i++) rows.push(i % 97 === 5 ? `${sensorId},${iso(t0 + i * 1000)},bad` : `${sensorId},${iso(t0 + i * 1000)},${(i % 50) + 20}`)
    const file = join(dir.path, `resume-${engine}.csv`)
    writeFileSync(file, `${rows.join('\n')}\n`)
    const bad = rows.filter((l) => l.endsWith(',bad')).length
    // The sink fails on its 4th write: three writes (300 points each) committed before it.
    let writes = 0
    const base = csvImportEnv(h.ctx, { ingest: h.rt.ingest }, { alerts: false })
    const failing = {
      ...base,
      sinkFor(plan: CsvPlan) {
        const sink = base.sinkFor(plan)
        return { ...sink, write: (points: Parameters<typeof sink.write>[0]) => (++writes === 4 ? Promise.reject(new Error('store went away')) : sink.write(points)) }
      },
    }
    const options: CsvImportOptions = { input: { kind: 'file', path: file }, format: { domain: 'iot' }, delimiter: ',', alerts: false, dryRun: false, batchSize: 300, maxInFlight: 1, checkpointRows: 1, checkpointMs: 0 }
    await expect(importCsv(failing, options)).rejects.toThrow('store went away')
    const afterFail = await count()
    expect(afterFail).toBeGreaterThan(0)
    expect(afterFail).toBeLessThan(5000 - bad)
    const jobs = await h.ctx.universal.csvImports.listByStatus(['failed'])
    const job = jobs.find((j) => j.filename === file)
    expect(job?.processedRows).toBeGreaterThan(0)

    const resumed = await importCsv(base, options)
    expect(resumed.resumedFrom).toBe(job?.processedRows)
    expect(resumed.status).toBe('completed')
    expect(await count()).toBe(5000 - bad)
    expect(resumed.rejected).toBe(bad)
    // Rows the failed run committed after its last checkpoint come back as already stored.
    expect(resumed.stored + resumed.duplicates).toBe(5000 - bad)
    // The rejects file lists every bad line once, those before the checkpoint included.
    const listed = readFileSync(join(dir.path, `resume-${engine}.rejects.csv`), 'utf8').trim().split('\r\n').slice(1)
    expect(listed).toHaveLength(bad)
  })

  it('--dry-run validates (unknown sensors too) and writes nothing', async () => {
    const t0 = h.clock.now() - 3600_000
    const file = join(dir.path, `dry-${engine}.csv`)
    writeFileSync(file, `sensor_id,timestamp,value\n${sensorId},${iso(t0)},1\n424242,${iso(t0)},2\n${sensorId},${iso(t0)},x\n`)
    const r = await run(file, { dryRun: true })
    expect(r).toMatchObject({ dryRun: true, jobId: null, rows: 3, stored: 0, rejected: 2 })
    expect(r.rejects.map((x) => x.code)).toEqual(['UNKNOWN_SENSOR', 'VALUE_NOT_NUMERIC'])
    expect(await count()).toBe(0)
    expect(existsSync(join(dir.path, `dry-${engine}.rejects.csv`))).toBe(false)
  })

  it('device_uuid + sensor_uuid rows, and --max-errors stops early keeping what was read', async () => {
    const t0 = h.clock.now() - 3600_000
    const uuids = (await h.sql('SELECT d.device_uuid AS d, s.sensor_uuid AS s FROM sensors s JOIN devices d ON d.id = s.device_id ORDER BY s.id'))[0] as { d: string; s: string }
    const file = join(dir.path, `uuid-${engine}.csv`)
    const body = ['device_uuid;sensor_uuid;timestamp;value']
    for (let i = 0; i < 20; i++) body.push(`${String(uuids.d).toUpperCase()};${String(uuids.s)};${iso(t0 + i * 1000)};${i === 10 || i === 12 ? 'x' : i}`)
    writeFileSync(file, body.join('\n'))
    const r = await run(file, { delimiter: ';', maxErrors: 2 })
    expect(r).toMatchObject({ status: 'stopped', rejected: 2, rows: 13, stored: 11 })
    expect(await count()).toBe(11)
  })

  it('backfills 100 000 readings over thresholds without an alert or a rule-state change; with alerts, the alerts a live stream in time order raises', async () => {
    // Some live readings first: the sensor is past warm-up with a rule state to keep.
    const now = h.clock.now()
    await h.rt.ingest.ingestById(Array.from({ length: 12 }, (_, i) => ({ sensorId, value: 40, timestamp: now - 60_000 + i * 1000 })), 'http')
    const state = async () => (await h.sql('SELECT state FROM sensor_rule_state WHERE sensor_id = ?', [sensorId]))[0]?.['state']
    const sensorRow = async () => (await h.sql('SELECT operational_state, valid_readings_count FROM sensors WHERE id = ?', [sensorId]))[0]
    const stateBefore = await state()
    const sensorBefore = await sensorRow()
    const t0 = now - 20 * 86_400_000 // 20 days of history, some of it older than any live window
    const values = (i: number): number => (i % 1000 < 5 ? 95 : i % 777 < 3 ? 75 : 40 + (i % 7)) // critical and warning runs
    const rows = ['sensor_id,timestamp,value']
    for (let i = 0; i < 100_000; i++) rows.push(`${sensorId},${iso(t0 + i * 10_000)},${values(i)}`)
    const big = join(dir.path, `big-${engine}.csv`)
    writeFileSync(big, `${rows.join('\n')}\n`)
    const r = await run(big)
    expect(r).toMatchObject({ stored: 100_000, rejected: 0 })
    expect(await count(`WHERE classification = 'ALERT'`)).toBeGreaterThan(0)
    expect(Number((await h.sql('SELECT count(*) AS n FROM alerts'))[0]?.['n'])).toBe(0)
    expect(Number((await h.sql('SELECT count(*) AS n FROM ml_events'))[0]?.['n'])).toBe(0)
    expect(Number((await h.sql('SELECT count(*) AS n FROM alert_notifications'))[0]?.['n'])).toBe(0)
    expect(await state()).toEqual(stateBefore)
    expect(await sensorRow()).toEqual(sensorBefore)

    // --alerts vs the same readings posted live in time order (a live stream may not be older than the age window: recent times).
    const n = 3000
    const recent = ['sensor_id,timestamp,value']
    const t1 = now - 3 * 86_400_000
    for (let i = 0; i < n; i++) recent.push(`${sensorId},${iso(t1 + i * 10_000)},${values(i)}`)
    const small = join(dir.path, `alerts-${engine}.csv`)
    writeFileSync(small, `${recent.join('\n')}\n`)
    const snapshot = async () => ({
      classes: (await h.sql('SELECT classification FROM sensor_readings ORDER BY device_timestamp, id')).map((x) => x['classification']),
      alerts: await h.sql('SELECT severity, status, triggered_value, triggered_at, resolved_at FROM alerts ORDER BY id'),
      events: await h.sql('SELECT event_code, status, created_at FROM ml_events ORDER BY id').catch(() => []),
      notifications: Number((await h.sql('SELECT count(*) AS n FROM alert_notifications'))[0]?.['n']),
      state: await state(),
    })
    await h.reset()
    const viaCsv = await run(small, {}, true)
    expect(viaCsv).toMatchObject({ stored: n, rejected: 0 })
    const csvSnapshot = await snapshot()
    await h.reset()
    // A service of its own: the runtime's dedup pre-filter remembers the CSV's keys.
    const live = new IngestService({ config: h.ctx.config, logger: h.ctx.logger, clock: h.clock, store: h.ctx.iot.ingest, metrics: h.rt.metrics })
    for (let i = 0; i < n; i += 100) {
      const batch = Array.from({ length: Math.min(100, n - i) }, (_, k) => ({ sensorId, value: values(i + k), timestamp: t1 + (i + k) * 10_000 }))
      await live.ingestById(batch, 'http')
    }
    await live.close()
    const liveSnapshot = await snapshot()
    expect(csvSnapshot.alerts.length).toBeGreaterThan(1)
    expect(csvSnapshot).toEqual(liveSnapshot)
  }, 180_000)
})

describe.each(engines)('ingest csv (universal) on %s', (engine) => {
  let h: Harness
  const dir = tempDir()
  const points = async () => Number((await h.sql('SELECT count(*) AS n FROM data_points'))[0]?.['n'])
  const run = (file: string, format: CsvImportOptions['format']) =>
    importCsv(csvImportEnv(h.ctx, { ingest: h.rt.ingest, universal: pointServiceWriter(h.rt.points) }, { alerts: false }), { input: { kind: 'file', path: file }, format, delimiter: ',', alerts: false, dryRun: false })

  beforeAll(async () => {
    h = await startHarness(engine, { RATE_LIMIT_ENABLED: '0' })
  })
  afterAll(async () => {
    await h.close()
    dir.remove()
  })

  it('long (stream_id) and wide files store every good point once; re-runs store nothing new', async () => {
    const t0 = h.clock.now() - 86_400_000
    const long = join(dir.path, 'long.csv')
    writeFileSync(long, ['stream_id,timestamp,value', `price,${iso(t0)},10.5`, `price,${iso(t0 + 1000)},oops`, `volume,${iso(t0 + 1000)},300`, `price,not-a-time,1`].join('\n'))
    const a = await run(long, { domain: 'finance', sourceId: 'nyse' })
    expect(a).toMatchObject({ rows: 4, stored: 2, rejected: 2 })
    expect(a.rejects.map((r) => [r.line, r.code])).toEqual([[3, 'VALUE_NOT_NUMERIC'], [5, 'TIMESTAMP_INVALID']])
    const wide = join(dir.path, 'wide.csv')
    writeFileSync(wide, ['time,open,close,note', `${iso(t0 + 5000)},1.5,2.5,x`, `${iso(t0 + 6000)},,3.5,sparse`, `${iso(t0 + 7000)},abc,4.5,bad cell`].join('\r\n'))
    const b = await run(wide, { domain: 'finance', sourceId: 'nyse', timestampColumn: 'time', valueColumns: ['open', 'close'], streamIdPrefix: 'px_' })
    expect(b).toMatchObject({ rows: 3, points: 4, stored: 4, rejected: 1 })
    expect(b.rejects[0]).toMatchObject({ line: 4, column: 'open', code: 'VALUE_NOT_NUMERIC' })
    expect(await points()).toBe(6)
    const streams = (await h.sql("SELECT DISTINCT stream_id FROM data_points WHERE stream_id LIKE 'px_%' ORDER BY stream_id")).map((r) => r['stream_id'])
    expect(streams).toEqual(['px_close', 'px_open'])
    expect(await run(long, { domain: 'finance', sourceId: 'nyse' })).toMatchObject({ stored: 0, duplicates: 2 })
    expect(await run(wide, { domain: 'finance', sourceId: 'nyse', timestampColumn: 'time', valueColumns: ['open', 'close'], streamIdPrefix: 'px_' })).toMatchObject({ stored: 0, duplicates: 4 })
    expect(await points()).toBe(6)
  })
})
