import { hostname, userInfo } from 'node:os'

import type { SqlExecutor } from '../adapters/storage/sql/executor.js'
import { BugError } from '../errors/index.js'
import type { Database } from '../ports/storage.js'
import type { AppContext } from './context.js'

export type JobRunStatus = 'running' | 'succeeded' | 'failed'

export interface JobRunStart {
  /** `dlq replay`, `dlq purge`, `batch predict`, `csv`, ... */
  job: string
  /** The run's options (filters, limits): allow-listed, never a secret. */
  options: Record<string, unknown>
  host: string | null
  startedAt: number
}

export interface JobRunEnd {
  status: Exclude<JobRunStatus, 'running'>
  counts: Record<string, number>
  error: string | null
  endedAt: number
}

/** The `job_runs` table of the universal store (DESIGN §2): one row per run, started then finished. */
export interface JobRunStore {
  /** Inserts a `running` row; returns its id. */
  startJobRun(run: JobRunStart): Promise<number>
  finishJobRun(id: number, end: JobRunEnd): Promise<void>
}

/** A started run: finish it exactly once. */
export interface JobRun {
  readonly id: number
  succeed(counts: Record<string, number>): Promise<void>
  fail(error: unknown, counts?: Record<string, number>): Promise<void>
}

/** Who runs a CLI command, for audit rows: `cli:<user>`. */
export function cliActor(): string {
  try {
    return `cli:${userInfo().username}`
  } catch {
    // No passwd entry (containers running under an arbitrary uid).
    return `cli:uid-${process.getuid?.() ?? 'unknown'}`
  }
}

function safeHostname(): string | null {
  try {
    return hostname()
  } catch {
    return null
  }
}

async function jobRunStore(ctx: AppContext): Promise<JobRunStore> {
  const db = ctx.universal as Database & { jobRuns?: JobRunStore }
  if (db.jobRuns) return db.jobRuns
  // TODO(wire): remove once Database.jobRuns exists; until then reach the universal store's executor.
  const handle = ctx.universal as unknown as { connection?: unknown; pool?: unknown }
  const exec = (handle.connection ?? handle.pool) as SqlExecutor | undefined
  if (!exec) throw new BugError(`the ${ctx.universal.engine} universal store has no job_runs support`)
  const { createSqlJobRunStore } = await import('../adapters/dlq/sql-job-run-store.js')
  return createSqlJobRunStore(exec)
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 2000)

/** Starts a `job_runs` row for `job` in the universal store. */
export async function startJobRun(ctx: AppContext, job: string, options: Record<string, unknown>): Promise<JobRun> {
  const store = await jobRunStore(ctx)
  const id = await store.startJobRun({ job, options, host: safeHostname(), startedAt: ctx.clock.now() })
  return {
    id,
    succeed: (counts) => store.finishJobRun(id, { status: 'succeeded', counts, error: null, endedAt: ctx.clock.now() }),
    fail: (error, counts = {}) => store.finishJobRun(id, { status: 'failed', counts, error: message(error), endedAt: ctx.clock.now() }),
  }
}
