import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { importCsv } from '../../src/lib/app/csv/import-csv.js'
import { csvImportEnv, pointServiceWriter } from '../../src/lib/app/csv/run-import.js'
import { createKey } from '../../src/lib/app/keys.js'
import { engineList, type Harness, startHarness } from '../helpers/http-harness.js'
import { tempDir } from '../helpers/services.js'

const engines = await engineList()

/** CSV_UPLOAD_MAX_BYTES of the harness: the 2 500-row body of the tests is under it. */
const UPLOAD_MAX = 512 * 1024

function multipart(fields: Record<string, string>, file: { name: string; body: string }): { payload: Buffer; headers: Record<string, string> } {
  const boundary = '----ingest-test-boundary'
  const parts = Object.entries(fields).map(([k, v]) => `--${boundary}\r\nContent-Disposition: form-data; name="${k}"\r\n\r\n${v}\r\n`)
  parts.push(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${file.name}"\r\nContent-Type: text/csv\r\n\r\n${file.body}\r\n`)
  parts.push(`--${boundary}--\r\n`)
  return { payload: Buffer.from(parts.join('')), headers: { 'content-type': `multipart/form-data; boundary=${boundary}` } }
}

describe.each(engines)('POST /ingest/csv on %s', (engine) => {
  let h: Harness
  let admin: string
  let reader: string
  const dir = tempDir()

  beforeAll(async () => {
    h = await startHarness(engine, { RATE_LIMIT_ENABLED: '0', CSV_UPLOAD_MAX_BYTES: String(UPLOAD_MAX) })
    admin = (await createKey(h.ctx, { role: 'admin' })).key
    reader = (await createKey(h.ctx, { role: 'read_only' })).key
  })
  afterAll(async () => {
    await h.close()
    dir.remove()
  })

  const body = (t0: number): string => {
    const rows = ['stream_id,timestamp,value']
    for (let i = 0; i < 2500; i++) rows.push(`s${i % 5},${new Date(t0 + i * 1000).toISOString()},${i % 101 === 7 ? 'NaN?' : i / 10}`)
    rows.push('s1,bad-time,1')
    return `\ufeff${rows.join('\r\n')}\r\n`
  }

  it('a job reaches completed with the same counts as the command, and its status is readable by any role key', async () => {
    const t0 = h.clock.now() - 86_400_000
    const { payload, headers } = multipart({ source_id: 'up-http', domain: 'finance' }, { name: 'feed.csv', body: body(t0) })
    const res = await h.app.inject({ method: 'POST', url: '/ingest/csv', headers: { ...headers, 'x-api-key': admin }, payload })
    expect(res.statusCode, res.body).toBe(202)
    const { job_id: jobId, status } = res.json<{ job_id: string; status: string }>()
    expect(status).toBe('processing')
    let job: Record<string, unknown> = {}
    for (let i = 0; i < 200; i++) {
      const r = await h.app.inject({ method: 'GET', url: `/ingest/csv/jobs/${jobId}`, headers: { 'x-api-key': reader } })
      expect(r.statusCode).toBe(200)
      job = r.json()
      if (job['status'] === 'completed' || job['status'] === 'failed') break
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    // The same rows through the command's code (another source, so nothing is a duplicate).
    const file = join(dir.path, 'feed.csv')
    writeFileSync(file, body(t0))
    const cli = await importCsv(csvImportEnv(h.ctx, { ingest: h.rt.ingest, universal: pointServiceWriter(h.rt.points) }, { alerts: false }), { input: { kind: 'file', path: file }, format: { domain: 'finance', sourceId: 'up-cli' }, delimiter: ',', alerts: false, dryRun: false })
    expect(job).toMatchObject({ job_id: jobId, status: 'completed', error: null, total_rows: cli.rows, processed_rows: cli.rows, inserted_rows: cli.stored, rejected_rows: cli.rejected })
    expect(cli.rejected).toBe(26)
    expect(Number((await h.sql("SELECT count(*) AS n FROM data_points WHERE source_id = 'up-http'"))[0]?.['n'])).toBe(cli.stored)
  })

  it('refuses without a key, a read-only key, the iot domain and bad value_columns; unknown jobs are 404', async () => {
    const { payload, headers } = multipart({ source_id: 'x', domain: 'finance' }, { name: 'a.csv', body: 'stream_id,timestamp,value\n' })
    expect((await h.app.inject({ method: 'POST', url: '/ingest/csv', headers, payload })).statusCode).toBe(401)
    expect((await h.app.inject({ method: 'POST', url: '/ingest/csv', headers: { ...headers, 'x-api-key': reader }, payload })).statusCode).toBe(403)
    const iot = multipart({ source_id: 'x', domain: 'IoT' }, { name: 'a.csv', body: 'a\n' })
    const r = await h.app.inject({ method: 'POST', url: '/ingest/csv', headers: { ...iot.headers, 'x-api-key': admin }, payload: iot.payload })
    expect([r.statusCode, r.json()]).toEqual([400, { detail: "domain='iot' not allowed in CSV import" }])
    const bad = multipart({ source_id: 'x', domain: 'finance', value_columns: 'open' }, { name: 'a.csv', body: 'a\n' })
    const b = await h.app.inject({ method: 'POST', url: '/ingest/csv', headers: { ...bad.headers, 'x-api-key': admin }, payload: bad.payload })
    expect(b.statusCode).toBe(400)
    expect(b.json<{ detail: string }>().detail).toMatch(/^Invalid value_columns: /)
    const missing = await h.app.inject({ method: 'GET', url: '/ingest/csv/jobs/00000000-0000-4000-8000-000000000000', headers: { 'x-api-key': reader } })
    expect([missing.statusCode, missing.json()]).toEqual([404, { detail: 'Job 00000000-0000-4000-8000-000000000000 not found' }])
    expect((await h.app.inject({ method: 'GET', url: '/ingest/csv/jobs/not-a-uuid', headers: { 'x-api-key': reader } })).statusCode).toBe(404)
  })
  it('an upload over CSV_UPLOAD_MAX_BYTES is refused with 413 and leaves no job and no file', async () => {
    const jobs = async () => Number((await h.sql('SELECT count(*) AS n FROM csv_import_jobs'))[0]?.['n'])
    const before = await jobs()
    const uploads = () => (existsSync(h.rt.csvJobs.dir) ? readdirSync(h.rt.csvJobs.dir).sort() : [])
    const filesBefore = uploads()
    const line = `s0,${new Date(h.clock.now() - 60_000).toISOString()},1.5\n`
    const big = `stream_id,timestamp,value\n${line.repeat(Math.ceil((UPLOAD_MAX * 1.5) / line.length))}`
    expect(big.length).toBeGreaterThan(UPLOAD_MAX)
    const { payload, headers } = multipart({ source_id: 'too-big', domain: 'finance' }, { name: 'big.csv', body: big })
    const res = await h.app.inject({ method: 'POST', url: '/ingest/csv', headers: { ...headers, 'x-api-key': admin }, payload })
    expect([res.statusCode, res.json()]).toEqual([413, { detail: `the upload is larger than ${UPLOAD_MAX} bytes` }])
    expect(await jobs()).toBe(before)
    expect(uploads()).toEqual(filesBefore)
    expect(Number((await h.sql("SELECT count(*) AS n FROM data_points WHERE source_id = 'too-big'"))[0]?.['n'])).toBe(0)
  })
})
