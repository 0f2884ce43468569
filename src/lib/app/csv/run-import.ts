import type { CsvPlan, CsvPoint, IotCsvPoint, UniversalCsvPoint } from '../../csv/formats.js'
import { UsageError } from '../../errors/index.js'
import type { AppContext } from '../context.js'
import type { IngestService } from '../ingest/ingest-service.js'
import { createIngestRuntime } from '../ingest/runtime.js'
import { startJobRun } from '../job-runs.js'
import { type CsvImportEnv, type CsvImportOptions, type CsvImportResult, type CsvProgress, importCsv } from './import-csv.js'
import { createIotCsvSink, createUniversalCsvSink, type CsvRowSink, type UniversalPointWriter } from './sink.js'

/** What an import runs on: the app context and the ingest paths of a runtime. */
export interface CsvPaths {
  ingest: IngestService
  /** The universal ingest path; undefined until it is wired (universal files are then refused). */
  universal?: UniversalPointWriter | undefined
}

/** The import's environment over an app context and its ingest paths (the command and the job runner share it). */
export function csvImportEnv(ctx: AppContext, paths: CsvPaths, options: { alerts: boolean }): CsvImportEnv {
  return {
    clock: ctx.clock,
    logger: ctx.logger,
    jobs: ctx.universal.csvImports,
    startJobRun: (runOptions) => startJobRun(ctx, 'csv', runOptions),
    sinkFor(plan: CsvPlan): CsvRowSink<CsvPoint> {
      if (plan.domain === 'iot') return createIotCsvSink(paths.ingest, options)
      if (!paths.universal) throw new UsageError(`universal CSV import (--domain ${plan.domain}) is not available yet: the multi-domain ingest path is not wired; IoT files (--domain iot) are`)
      return createUniversalCsvSink(paths.universal, options)
    },
  }
}

/** `ingest csv`: one import on an ingest runtime of its own (closed, after committing, at the end). */
export async function importCsvWithRuntime(ctx: AppContext, options: CsvImportOptions, onProgress?: (p: CsvProgress) => void): Promise<CsvImportResult> {
  const runtime = await createIngestRuntime(ctx, { autoReplay: false })
  try {
    return await importCsv(csvImportEnv(ctx, { ingest: runtime.ingest }, { alerts: options.alerts }), options, onProgress)
  } finally {
    await runtime.close()
  }
}

export type { IotCsvPoint, UniversalCsvPoint }
