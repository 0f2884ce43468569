import { hostname, userInfo } from 'node:os'

import type { JobRunStore } from '../ports/job-run-store.js'
import type { AppContext } from './context.js'

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

function jobRunStore(ctx: AppContext): JobRunStore {
  return ctx.universal.jobRuns
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err)).slice(0, 2000)

/** Starts a `job_runs` row for `job` in the universal store. */
export async function startJobRun(ctx: AppContext, job: string, options: Record<string, unknown>): Promise<JobRun> {
  const store = jobRunStore(ctx)
  const id = await store.startJobRun({ job, options, host: safeHostname(), startedAt: ctx.clock.now() })
  return {
    id,
    succeed: (counts) => store.finishJobRun(id, { status: 'succeeded', counts, error: null, endedAt: ctx.clock.now() }),
    fail: (error, counts = {}) => store.finishJobRun(id, { status: 'failed', counts, error: message(error), endedAt: ctx.clock.now() }),
  }
}
