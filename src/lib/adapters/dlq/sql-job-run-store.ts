import type { JobRunEnd, JobRunStart, JobRunStore } from '../../app/job-runs.js'
import type { SqlExecutor } from '../storage/sql/executor.js'

// TODO(wire): belongs in adapters/storage/sql/job-run-store.ts, exposed as `Database.jobRuns` by the
// SQLite and PostgreSQL adapters (the universal store holds `job_runs`); it lives here until then.

const FINISH = `UPDATE "job_runs" SET "status" = ?, "ended_at" = ?, "counts" = ?, "error" = ? WHERE "id" = ?`

/** `job_runs` rows over any universal engine's SqlExecutor (JSON columns are written as text). */
export function createSqlJobRunStore(exec: SqlExecutor): JobRunStore {
  return {
    startJobRun(run: JobRunStart) {
      return exec.insert('job_runs', {
        job: run.job,
        status: 'running',
        started_at: new Date(run.startedAt),
        options: JSON.stringify(run.options),
        counts: '{}',
        host: run.host,
      })
    },
    async finishJobRun(id: number, end: JobRunEnd) {
      await exec.run(FINISH, [end.status, new Date(end.endedAt), JSON.stringify(end.counts), end.error, id])
    },
  }
}
