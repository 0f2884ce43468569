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

