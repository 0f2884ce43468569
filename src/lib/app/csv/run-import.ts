import { setFlagsFromString } from 'node:v8'

import type { CsvPlan, CsvPoint, IotCsvPoint, UniversalCsvPoint } from '../../csv/formats.js'
import { acquireCsvRunLock } from '../../adapters/csv/run-lock.js'
import { UsageError } from '../../errors/index.js'
import type { AppContext } from '../context.js'
import type { IngestService } from '../ingest/ingest-service.js'
import { createIngestRuntime } from '../ingest/runtime.js'
import { startJobRun } from '../job-runs.js'
import { type CsvImportEnv, type CsvImportOptions, type CsvImportResult, type CsvProgress, importCsv } from './import-csv.js'
import type { PointService } from '../universal/point-service.js'
import { createIotCsvSink, createUniversalCsvSink, type CsvRowSink, type SinkOutcome, type UniversalPointWriter } from './sink.js'

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
    // The database the job lives in names the claim with the job (two databases may import one file at once).
    claimRun: (jobId) => acquireCsvRunLock(jobId, `${ctx.config.storage.universal}|${ctx.config.storage.postgresUrl ?? ctx.config.dataDir}`, ctx.clock.now()),
    sinkFor(plan: CsvPlan): CsvRowSink<CsvPoint> {
      if (plan.domain === 'iot') return createIotCsvSink(paths.ingest, options)
      if (!paths.universal) throw new UsageError(`universal CSV import (--domain ${plan.domain}) is not available yet: the multi-domain ingest path is not wired; IoT files (--domain iot) are`)
      return createUniversalCsvSink(paths.universal, options)
    },
  }
}

const VALID: SinkOutcome = Object.freeze({ status: 'stored' })

/**
 * Universal points through the point service (one packet per source of the chunk), with backfill
 * semantics and the legacy metadata (`csv_line`, `csv_column`). A dry run has nothing more to check
 * before writing than the file's own validation.
 */
export function pointServiceWriter(points: PointService): UniversalPointWriter {
  return {
    async ingestCsvPoints(chunk, options) {
      if (options.dryRun) return chunk.map(() => VALID)
      const out = new Array<SinkOutcome>(chunk.length)
      const bySource = new Map<string, number[]>()
      chunk.forEach((p, i) => {
        const key = `${p.domain}\u0000${p.sourceId}`
        const list = bySource.get(key)
        if (list) list.push(i)
        else bySource.set(key, [i])
      })
      for (const indexes of bySource.values()) {
        const first = chunk[indexes[0] as number] as UniversalCsvPoint
        const packet = {
          domain: first.domain,
          sourceId: first.sourceId,
          points: indexes.map((i) => {
            const p = chunk[i] as UniversalCsvPoint
            return { streamId: p.streamId, value: p.value, timestamp: p.time, sequence: p.sequence, streamType: null, metadata: p.column === null ? { csv_line: p.line } : { csv_line: p.line, csv_column: p.column } }
          }),
        }
        const receipt = await points.ingestPoints(packet, { transport: 'csv', credential: null, clientIp: null, backfill: true, alerts: options.alerts })
        indexes.forEach((i, k) => {
          const r = receipt.receipts[k]
          out[i] = r ? { status: r.status, code: r.code } : { status: 'rejected', code: 'INTERNAL' }
        })
      }
      return out
    },
  }
}

/** `ingest csv`: one import on an ingest runtime of its own (closed, after committing, at the end). */
export async function importCsvWithRuntime(ctx: AppContext, options: CsvImportOptions, onProgress?: (p: CsvProgress) => void): Promise<CsvImportResult> {
  // Memory flat in the file's size: V8 grows the old space by up to 4x the live heap between full
  // collections, and a long import promotes a steady stream of short-lived rows (held across writes), so
  // the process would sit at 300-400 MB for ~40 MB live. A 25 % growth step keeps it near 200 MB for
  // ~15 % more CPU (measured on 1 M and 30 M-row files, bench/csv.mjs --rss-mb). The flag is read at
  // every heap-limit computation, so setting it here takes effect; this process only imports.
  setFlagsFromString('--heap-growing-percent=25')
  const runtime = await createIngestRuntime(ctx, { autoReplay: false })
  try {
    return await importCsv(csvImportEnv(ctx, { ingest: runtime.ingest, universal: pointServiceWriter(runtime.points) }, { alerts: options.alerts }), options, onProgress)
  } finally {
    await runtime.close()
  }
}

export type { IotCsvPoint, UniversalCsvPoint }
