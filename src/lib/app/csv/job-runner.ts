import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import type { CsvFormatOptions } from '../../csv/formats.js'
import type { AppContext } from '../context.js'
import { importCsv } from './import-csv.js'
import { type CsvPaths, csvImportEnv } from './run-import.js'

/** What an upload asked for, kept beside its file so a restarted `serve` can resume it. */
export interface CsvUploadOptions {
  format: CsvFormatOptions
  delimiter: string
  alerts: boolean
}

/**
 * `POST /ingest/csv` jobs, run in the background one at a time on the same code as `ingest csv`.
 * Uploads live in `$INGEST_DATA_DIR/csv-uploads/<job id>.csv` with their options in `<id>.json`, so a
 * job left `pending`/`processing` by a crash resumes from its checkpoint at the next start (or is
 * marked `failed` when its upload is gone). Files are removed when the job ends.
 */
export class CsvJobRunner {
  readonly dir: string
  private chain: Promise<void> = Promise.resolve()
  private closed = false

  constructor(
    private readonly ctx: AppContext,
    private readonly paths: CsvPaths,
  ) {
    this.dir = join(ctx.config.dataDir, 'csv-uploads')
  }

  /** Where an upload's file goes before accept(). */
  uploadPath(jobId: string): string {
    mkdirSync(this.dir, { recursive: true })
    return join(this.dir, `${jobId}.csv`)
  }

  /** Records the job (pending) and queues it. */
  async accept(jobId: string, filename: string, options: CsvUploadOptions): Promise<void> {
    writeFileSync(join(this.dir, `${jobId}.json`), JSON.stringify(options))
    await this.ctx.universal.csvImports.create({ id: jobId, sourceId: options.format.sourceId ?? null, domain: options.format.domain, filename, createdAt: this.ctx.clock.now() })
    this.enqueue(jobId, options)
  }

  /** At start: jobs a crash left pending or processing resume, or fail when their upload is gone. */
  async resumeLeftovers(): Promise<number> {
    // A job stopped by a shutdown is `failed` with its upload kept; one that ended on its own has none.
    const jobs = await this.ctx.universal.csvImports.listByStatus(['pending', 'processing', 'failed'])
    let resumed = 0
    for (const job of jobs) {
      const optionsFile = join(this.dir, `${job.id}.json`)
      if (existsSync(optionsFile) && existsSync(join(this.dir, `${job.id}.csv`))) {
        this.enqueue(job.id, JSON.parse(readFileSync(optionsFile, 'utf8')) as CsvUploadOptions)
        resumed++
      } else if (job.status !== 'failed' && existsSync(optionsFile)) {
        // An upload whose file did not survive (a command's own job resumes when the command is re-run).
        await this.ctx.universal.csvImports.finish(job.id, { status: 'failed', totalRows: null, counts: null, error: 'the upload was lost in a restart; upload the file again', completedAt: this.ctx.clock.now() })
      }
    }
    if (resumed > 0) this.ctx.logger.info({ resumed }, 'resuming CSV import jobs')
    return resumed
  }

  private enqueue(jobId: string, options: CsvUploadOptions): void {
    this.chain = this.chain.then(() => this.run(jobId, options))
  }

  private async run(jobId: string, options: CsvUploadOptions): Promise<void> {
    if (this.closed) return
    const file = join(this.dir, `${jobId}.csv`)
    try {
      const result = await importCsv(csvImportEnv(this.ctx, this.paths, { alerts: options.alerts }), { input: { kind: 'file', path: file }, format: options.format, delimiter: options.delimiter, alerts: options.alerts, dryRun: false, jobId, rejectsPath: join(this.dir, `${jobId}.rejects.csv`) })
      this.ctx.logger.info({ jobId, rows: result.rows, stored: result.stored, rejected: result.rejected }, 'CSV import job completed')
    } catch (err) {
      // importCsv marked the job failed with its error.
      this.ctx.logger.warn({ err, jobId }, 'CSV import job failed')
      if (this.closed) return
    }
    for (const ext of ['csv', 'json']) rmSync(join(this.dir, `${jobId}.${ext}`), { force: true })
  }

  /**
   * Stops taking jobs. A job still running fails as soon as the ingest path closes; its upload is kept
   * so the next start resumes it from its checkpoint. settled() waits for it to end.
   */
  stop(): void {
    this.closed = true
  }

  settled(): Promise<void> {
    return this.chain
  }
}
