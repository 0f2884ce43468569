import { randomUUID } from 'node:crypto'
import { createWriteStream } from 'node:fs'
import { rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'

import multipart from '@fastify/multipart'
import type { FastifyInstance } from 'fastify'

import type { CsvUploadOptions } from '../../app/csv/job-runner.js'
import { normaliseUuid } from '../../domain/uuid.js'
import { header, refuse } from '../route-helpers.js'
import type { HttpRuntime } from '../runtime.js'

const TEXT_FIELDS = ['source_id', 'domain', 'timestamp_column', 'value_columns', 'stream_id_prefix', 'delimiter', 'alerts'] as const

/**
 * `POST /ingest/csv` (reference §1.13, role key per DESIGN §7): the upload is streamed to disk under a
 * size limit (CSV_UPLOAD_MAX_BYTES), a `csv_import_jobs` row is created and the job runs in the background on the code of
 * `ingest csv`; 202 with the job id. `GET /ingest/csv/jobs/{id}`: its state and counts.
 */
export function registerCsvRoutes(app: FastifyInstance, rt: HttpRuntime): void {
  // The largest upload (CSV_UPLOAD_MAX_BYTES): streamed to disk, 413 above it with nothing kept.
  const maxBytes = rt.config.csvUpload.maxBytes
  void app.register(async (scope) => {
    await scope.register(multipart, { limits: { fileSize: maxBytes, files: 1, fields: 20, fieldSize: 64 * 1024 } })

    scope.post('/ingest/csv', async (req, reply) => {
      if (!rt.config.features.csv) return reply.code(503).send({ detail: 'CSV import disabled (FF_CSV_ENABLED=false)' })
      const apiKey = header(req, 'x-api-key')
      if (apiKey === undefined) return refuse(rt, reply, { ok: false, reason: 'missing', code: 'MISSING_CREDENTIAL' }, '/ingest/csv')
      if (!req.isMultipart()) return reply.code(400).send({ detail: 'expected a multipart/form-data upload with a file field' })
      const jobId = randomUUID()
      const path = rt.csvJobs.uploadPath(jobId)
      const fields: Partial<Record<(typeof TEXT_FIELDS)[number], string>> = {}
      let filename: string | undefined
      try {
        for await (const part of req.parts()) {
          if (part.type === 'file') {
            if (part.fieldname !== 'file' || filename !== undefined) {
              part.file.resume()
              continue
            }
            filename = part.filename || 'upload.csv'
            await pipeline(part.file, createWriteStream(path))
          } else if ((TEXT_FIELDS as readonly string[]).includes(part.fieldname) && typeof part.value === 'string') {
            fields[part.fieldname as (typeof TEXT_FIELDS)[number]] = part.value
          }
        }
      } catch (err) {
        await rm(path, { force: true })
        if ((err as { code?: string }).code === 'FST_REQ_FILE_TOO_LARGE') return reply.code(413).send({ detail: `the upload is larger than ${maxBytes} bytes` })
        throw err
      }
      const fail = async (status: number, detail: string) => {
        await rm(path, { force: true })
        return reply.code(status).send({ detail })
      }
      if (filename === undefined) return fail(422, 'the form has no file field')
      const domain = fields.domain?.trim()
      const sourceId = fields.source_id?.trim()
      if (!domain || !sourceId) return fail(422, 'the form needs source_id and domain fields')
      if (domain.toLowerCase() === 'iot') return fail(400, "domain='iot' not allowed in CSV import")
      let valueColumns: string[] | undefined
      if (fields.value_columns !== undefined && fields.value_columns.trim() !== '') {
        try {
          const parsed: unknown = JSON.parse(fields.value_columns)
          if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((c) => typeof c === 'string' && c !== '')) throw new Error('expected a non-empty JSON array of column names')
          valueColumns = parsed as string[]
        } catch (err) {
          return fail(400, `Invalid value_columns: ${(err as Error).message}`)
        }
      }
      const auth = await rt.auth.source({ apiKey, sourceIp: req.clientAddress, sourceId, domain, transport: 'csv' })
      if (!auth.ok) {
        await rm(path, { force: true })
        return refuse(rt, reply, auth, '/ingest/csv')
      }
      const options: CsvUploadOptions = {
        format: { domain, sourceId, timestampColumn: fields.timestamp_column?.trim() || undefined, valueColumns, streamIdPrefix: fields.stream_id_prefix ?? '' },
        delimiter: fields.delimiter || ',',
        alerts: fields.alerts === 'true' || fields.alerts === '1',
      }
      await rt.csvJobs.accept(jobId, filename, options)
      return reply.code(202).send({ job_id: jobId, status: 'processing', message: 'CSV import started in background' })
    })

    scope.get<{ Params: { job_id: string } }>('/ingest/csv/jobs/:job_id', async (req, reply) => {
      const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: false, route: '/ingest/csv/jobs/{job_id}' })
      if (!auth.ok) return refuse(rt, reply, auth, '/ingest/csv/jobs/{job_id}')
      const id = normaliseUuid(req.params.job_id)
      const job = id === undefined ? null : await rt.universal.csvImports.get(id)
      if (!job) return reply.code(404).send({ detail: `Job ${req.params.job_id} not found` })
      return {
        job_id: job.id,
        status: job.status,
        total_rows: job.totalRows,
        processed_rows: job.processedRows,
        inserted_rows: job.insertedRows,
        rejected_rows: job.rejectedRows,
        error: job.error,
        created_at: new Date(job.createdAt).toISOString(),
        completed_at: job.completedAt === null ? null : new Date(job.completedAt).toISOString(),
      }
    })
  })
}
