import { createHash, randomUUID } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, stat } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { Readable } from 'node:stream'

import { type CsvFormatOptions, type CsvLayout, type CsvPlan, type CsvPoint, type CsvReject, planCsvFormat } from '../../csv/formats.js'
import { defaultRejectsPath, openRejectsWriter, readRejects, type RejectsWriter } from '../../csv/rejects.js'
import { UsageError } from '../../errors/index.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import type { CsvImportStore, CsvJobCounts } from '../../ports/csv-import-store.js'
import type { JobRun } from '../job-runs.js'
import type { CsvRowSink, SinkOutcome } from './sink.js'

/** Where the CSV comes from: a file (resumable: its identity names its job), or a stream (stdin, once). */
export type CsvInput = { kind: 'file'; path: string } | { kind: 'stream'; stream: Readable; name: string }

export interface CsvImportOptions {
  input: CsvInput
  format: CsvFormatOptions
  delimiter: string
  /** Backfill with alerts and rule-state movement, in time order per sensor/series (DESIGN §3). */
  alerts: boolean
  /** Validate and report; write nothing (no rows, no job, no rejects file unless one is named). */
  dryRun: boolean
  /** Stop reading once this many lines/cells were rejected (what was read is still committed). */
  maxErrors?: number | undefined
  /** The rejects file; undefined: next to a file input (none for a stream); null: none. */
  rejectsPath?: string | null | undefined
  /** An upload's job (HTTP); else the file's identity names it. */
  jobId?: string | undefined
  /** Start from the first row even when the file's job has a checkpoint. */
  restart?: boolean
  /** Points per write (a group-commit flush's worth). */
  batchSize?: number
  /** Writes in flight at once (memory stays flat: at most batchSize x maxInFlight points). */
  maxInFlight?: number
  /** Records between checkpoints (also written at least every checkpointMs). */
  checkpointRows?: number
  checkpointMs?: number
}

export interface CsvImportEnv {
  clock: Clock
  logger: Logger
  jobs: CsvImportStore
  /** Builds the sink for the plan's domain once the header is read. */
  sinkFor(plan: CsvPlan): CsvRowSink<CsvPoint>
  /** Starts the `job_runs` row (not in a dry run). */
  startJobRun(options: Record<string, unknown>): Promise<JobRun>
  /**
   * Claims the job for this run (one run of a file at a time): a release function, or who holds it.
   * Absent: no claim (tests driving importCsv directly).
   */
  claimRun?(jobId: string): { ok: true; release: () => void } | { ok: false; holder: { pid: number; startedAt: number } }
}

export interface CsvProgress {
  bytes: number
  /** File size when known (ETA), else null. */
  totalBytes: number | null
  rows: number
  stored: number
  duplicates: number
  rejected: number
  elapsedMs: number
}

export interface CsvImportResult {
  jobId: string | null
  jobRunId: number | null
  file: string
  layout: CsvLayout | null
  dryRun: boolean
  alerts: boolean
  status: 'completed' | 'stopped'
  /** Records skipped because an earlier run had committed them (its checkpoint). */
  resumedFrom: number
  /** Data records in the file (header and empty lines excluded) read up to where the run ended. */
  rows: number
  points: number
  stored: number
  duplicates: number
  rejected: number
  deadLettered: number
  /** The first rejects (every one is in the rejects file). */
  rejects: CsvReject[]
  rejectsFile: string | null
  seconds: number
}

const MAX_LISTED_REJECTS = 1000
const IDENTITY_PREFIX_BYTES = 1 << 20

/** A UUID made from a digest (version 8, RFC 9562: custom), stable for the same input. */
function uuidFromDigest(hex: string): string {
  const h = hex.slice(0, 32).split('')
  h[12] = '8'
  h[16] = ((parseInt(h[16] as string, 16) & 0x3) | 0x8).toString(16)
  const s = h.join('')
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`
}

/**
 * The job of a file: its absolute path, size and the hash of its first MB, plus the options that
 * change what is stored. The same file imported the same way finds the same job (and its checkpoint).
 */
export async function csvFileJobId(path: string, size: number, options: Pick<CsvImportOptions, 'format' | 'delimiter' | 'alerts'>): Promise<string> {
  const fh = await open(path, 'r')
  try {
    const buf = Buffer.alloc(Math.min(size, IDENTITY_PREFIX_BYTES))
    await fh.read(buf, 0, buf.length, 0)
    const f = options.format
    const hash = createHash('sha256')
    hash.update(JSON.stringify([resolve(path), size, f.domain, f.sourceId ?? null, f.timestampColumn ?? null, f.valueColumns ?? null, f.streamIdPrefix ?? null, options.delimiter, options.alerts]))
    hash.update(buf)
    return uuidFromDigest(hash.digest('hex'))
  } finally {
    await fh.close()
  }
}

/** Text for a code the ingest path gave (the rejects file and summary say why in words). */
function reasonOf(o: SinkOutcome): string {
  switch (o.code) {
    case 'UNKNOWN_SENSOR':
      return 'no such sensor'
    case 'SENSOR_INACTIVE':
      return 'the sensor is inactive or deleted'
    case 'TIMESTAMP_IN_FUTURE':
      return 'the time is too far in the future'
    default:
      return o.status === 'dead_lettered' ? 'the store refused the row: dead-lettered' : `refused by the ingest path (${o.code ?? 'unknown'})`
  }
}

/** One write: a run of consecutive records and the points they gave. */
interface Batch {
  points: CsvPoint[]
  /** Data records through this batch's last, counted from the start of the file. */
  endRecord: number
  /** Rejects found while parsing its records (written already; counted when the batch completes). */
  parseRejects: number
  outcomes?: Promise<SinkOutcome[]>
}

/**
 * `ingest csv` and `POST /ingest/csv` (DESIGN §3, §6): streams a CSV through the format plan into the
 * ingest path of its domain in batches, several writes in flight, with a checkpoint in
 * `csv_import_jobs` after the writes before it committed. A re-run of the same file resumes after its
 * checkpoint; a re-run of a finished file reads it again and stores nothing new (the database keys
 * decide). Bad lines never stop the run: each is reported with its line, column and reason.
 */
export async function importCsv(env: CsvImportEnv, options: CsvImportOptions, onProgress?: (p: CsvProgress) => void): Promise<CsvImportResult> {
  const started = env.clock.now()
  const batchSize = options.batchSize ?? 5000
  const maxInFlight = options.maxInFlight ?? 4
  const checkpointRows = options.checkpointRows ?? 50_000
  const checkpointMs = options.checkpointMs ?? 2000
  const input = options.input
  let totalBytes: number | null = null
  let jobId: string | null = null
  if (input.kind === 'file') {
    const st = await stat(input.path).catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`cannot read ${input.path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`)
    })
    if (!st.isFile()) throw new UsageError(`${input.path} is not a file`)
    totalBytes = st.size
  }
  const fileName = input.kind === 'file' ? input.path : input.name
  const rejectsPath = options.rejectsPath === null ? null : (options.rejectsPath ?? (input.kind === 'file' && !options.dryRun ? defaultRejectsPath(input.path) : null))

  // The job and its checkpoint (a dry run has neither).
  let resumeFrom = 0
  const counts: CsvJobCounts = { processedRows: 0, insertedRows: 0, rejectedRows: 0 }
  let jobRun: JobRun | undefined
  let release: (() => void) | undefined
  if (!options.dryRun) {
    jobId = options.jobId ?? (input.kind === 'file' ? await csvFileJobId(input.path, totalBytes ?? 0, options) : randomUUID())
    const claim = env.claimRun?.(jobId)
    if (claim && !claim.ok) {
      const who = claim.holder.pid > 0 ? `process ${claim.holder.pid}, started ${new Date(claim.holder.startedAt).toISOString()}` : 'a run starting at the same moment'
      throw new UsageError(`${fileName} is being imported by another run (${who}; job ${jobId}): wait for it to finish or stop it, then run again (it resumes from its checkpoint)`, { details: { jobId, pid: claim.holder.pid } })
    }
    release = claim?.ok ? claim.release : undefined
    await env.jobs.create({ id: jobId, sourceId: options.format.sourceId ?? null, domain: options.format.domain, filename: fileName, createdAt: started })
    const job = await env.jobs.get(jobId)
    if (job && job.status !== 'completed' && !options.restart && job.processedRows > 0) {
      resumeFrom = job.processedRows
      counts.processedRows = job.processedRows
      counts.insertedRows = job.insertedRows
      counts.rejectedRows = job.rejectedRows
    }
    await env.jobs.start(jobId, started)
    jobRun = await env.startJobRun({ file: fileName, job_id: jobId, domain: options.format.domain, source_id: options.format.sourceId ?? null, alerts: options.alerts, resumed_from: resumeFrom })
  }

  const listed: CsvReject[] = []
  let duplicates = 0
  let deadLettered = 0
  let points = 0
  let rejectsWriter: RejectsWriter | undefined
  let plan: CsvPlan | undefined
  let sink: CsvRowSink<CsvPoint> | undefined
  let records = 0
  let stopped = false
  let lastCheckpointRows = counts.processedRows
  let lastCheckpointAt = started
  // Rejects found while reading that belong to batches not yet committed (the live count shows them).
  let pendingRejects = 0
  let bytes = 0

  const progress = (): void => {
    onProgress?.({ bytes, totalBytes, rows: records, stored: counts.insertedRows, duplicates, rejected: counts.rejectedRows + pendingRejects, elapsedMs: env.clock.now() - started })
  }

  const reject = async (r: CsvReject): Promise<void> => {
    if (listed.length < MAX_LISTED_REJECTS) listed.push(r)
    await rejectsWriter?.write(r)
  }

  const inFlight: Batch[] = []
  /** Accounts the oldest write: counts, sink rejects, then a checkpoint when one is due. */
  const settleOldest = async (): Promise<void> => {
    const batch = inFlight.shift() as Batch
    const outcomes = batch.outcomes ? await batch.outcomes : []
    for (let i = 0; i < outcomes.length; i++) {
      const o = outcomes[i] as SinkOutcome
      // A dry run's check says "would be stored": nothing was.
      if (o.status === 'stored') counts.insertedRows += options.dryRun ? 0 : 1
      else if (o.status === 'duplicate') duplicates++
      else {
        if (o.status === 'dead_lettered') deadLettered++
        const p = batch.points[i] as CsvPoint
        counts.rejectedRows++
        await reject({ line: p.line, column: p.kind === 'universal' ? p.column : null, code: o.code ?? o.status.toUpperCase(), reason: reasonOf(o) })
      }
    }
    counts.rejectedRows += batch.parseRejects
    pendingRejects -= batch.parseRejects
    counts.processedRows = batch.endRecord
    const now = env.clock.now()
    if (jobId !== null && (counts.processedRows - lastCheckpointRows >= checkpointRows || now - lastCheckpointAt >= checkpointMs)) {
      await env.jobs.checkpoint(jobId, counts)
      lastCheckpointRows = counts.processedRows
      lastCheckpointAt = now
    }
    progress()
  }

  let batch: Batch = { points: [], endRecord: 0, parseRejects: 0 }
  const dispatch = async (): Promise<void> => {
    const b = batch
    batch = { points: [], endRecord: 0, parseRejects: 0 }
    if (b.points.length > 0 && sink) {
      points += b.points.length
      b.outcomes = options.dryRun ? sink.check(b.points) : sink.write(b.points)
      // Failures surface when the batch is settled; until then nothing may be unhandled.
      b.outcomes.catch(() => undefined)
    }
    inFlight.push(b)
    while (inFlight.length > maxInFlight) await settleOldest()
  }

  const stream = input.kind === 'file' ? createReadStream(input.path, { highWaterMark: 256 * 1024 }) : input.stream
  const { csvRecordSource } = await import('../../adapters/csv/record-source.js')
  const source = csvRecordSource(stream, { delimiter: options.delimiter })
  const parseRejects: CsvReject[] = []
  try {
    let headerSeen = false
    let lastSkippedLine = 0
    reading: for await (const chunk of source) {
      bytes = chunk.bytes
      const recs = chunk.records
      for (let i = 0; i < recs.length; i++) {
        const fields = recs[i] as string[]
        const line = chunk.lines[i] as number
        if (!headerSeen) {
          headerSeen = true
          plan = planCsvFormat(fields, options.format)
          sink = env.sinkFor(plan)
          continue
        }
        records++
        if (records <= resumeFrom) {
          lastSkippedLine = line
          continue
        }
        if (!rejectsWriter && rejectsPath !== null) {
          const opened = await openRejectsWriter(rejectsPath, resumeFrom > 0 ? lastSkippedLine : 0)
          rejectsWriter = opened.writer
          if (opened.kept > 0) listed.push(...(await readRejects(rejectsPath, MAX_LISTED_REJECTS)))
        }
        parseRejects.length = 0
        ;(plan as CsvPlan).map(fields, line, batch.points, parseRejects)
        for (const r of parseRejects) await reject(r)
        batch.parseRejects += parseRejects.length
        pendingRejects += parseRejects.length
        batch.endRecord = records
        if (options.maxErrors !== undefined && counts.rejectedRows + pendingRejects >= options.maxErrors) {
          stopped = true
          break reading
        }
        if (batch.points.length >= batchSize) await dispatch()
      }
      if (inFlight.length === 0) progress()
    }
    if (!headerSeen) throw new UsageError(`${fileName} is empty: no header line`)
    if (batch.endRecord > 0) await dispatch()
    while (inFlight.length > 0) await settleOldest()
    if (!stopped) {
      for (const p of source.problems) {
        counts.rejectedRows++
        await reject({ line: p.line, column: null, code: 'CSV_SYNTAX', reason: p.reason })
      }
    }
    if (stopped) stream.destroy()
    const result: CsvImportResult = {
      jobId,
      jobRunId: jobRun?.id ?? null,
      file: fileName,
      layout: plan?.layout ?? null,
      dryRun: options.dryRun,
      alerts: options.alerts,
      status: stopped ? 'stopped' : 'completed',
      resumedFrom: resumeFrom,
      rows: records,
      points,
      stored: counts.insertedRows,
      duplicates,
      rejected: counts.rejectedRows,
      deadLettered,
      rejects: listed.sort((a, b) => a.line - b.line),
      rejectsFile: rejectsPath,
      seconds: (env.clock.now() - started) / 1000,
    }
    await rejectsWriter?.close()
    rejectsWriter = undefined
    if (jobId !== null) {
      const error = stopped ? `stopped after ${counts.rejectedRows} rejected lines (--max-errors ${options.maxErrors})` : null
      await env.jobs.finish(jobId, { status: stopped ? 'failed' : 'completed', totalRows: stopped ? null : records, counts, error, completedAt: env.clock.now() })
    }
    await jobRun?.succeed({ rows: records, points, stored: counts.insertedRows, duplicates, rejected: counts.rejectedRows, dead_lettered: deadLettered, resumed_from: resumeFrom })
    return result
  } catch (err) {
    stream.destroy()
    // What committed before the failure is checkpointed; the rest is re-read by the next run.
    await Promise.allSettled(inFlight.flatMap((b) => (b.outcomes ? [b.outcomes] : [])))
    await rejectsWriter?.close().catch(() => undefined)
    const message = err instanceof Error ? err.message : String(err)
    if (jobId !== null) await env.jobs.finish(jobId, { status: 'failed', totalRows: null, counts: null, error: message.slice(0, 2000), completedAt: env.clock.now() }).catch((e: unknown) => env.logger.warn({ err: e }, 'could not mark the CSV job failed'))
    await jobRun?.fail(err, { rows: records, stored: counts.insertedRows, rejected: counts.rejectedRows }).catch(() => undefined)
    throw err
  } finally {
    release?.()
  }
}
