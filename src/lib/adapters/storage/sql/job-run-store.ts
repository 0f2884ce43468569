import type { JobRunEnd, JobRunStart, JobRunStore } from '../../../ports/job-run-store.js'
import type { SqlExecutor } from './executor.js'

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
