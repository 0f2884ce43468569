/** The states of a `csv_import_jobs` row (reference §1.13): pending -> processing -> completed | failed. */
export type CsvJobStatus = 'pending' | 'processing' | 'completed' | 'failed'

/** A `csv_import_jobs` row. Times are epoch ms. */
export interface CsvImportJob {
  id: string
  sourceId: string | null
  domain: string | null
  filename: string | null
  status: CsvJobStatus
  /** Records of the file (set when the job completes). */
  totalRows: number
  /** The checkpoint: records read and committed (or rejected), from the start of the file. */
  processedRows: number
  /** Points stored. */
  insertedRows: number
  /** Bad lines and cells, plus points the ingest path refused. */
  rejectedRows: number
  error: string | null
  createdAt: number
  startedAt: number | null
  completedAt: number | null
}

export interface CsvJobCounts {
  processedRows: number
  insertedRows: number
  rejectedRows: number
}

/**
 * The `csv_import_jobs` table of the universal store: one row per imported file (its id is derived
 * from the file's identity, so a re-run finds its checkpoint) or per upload.
 */
export interface CsvImportStore {
  get(id: string): Promise<CsvImportJob | null>
  /** Inserts a `pending` row; an existing row with that id is left as it is. */
  create(job: { id: string; sourceId: string | null; domain: string | null; filename: string | null; createdAt: number }): Promise<void>
  /** `processing`, started now; the error and end time of an earlier attempt are cleared. */
  start(id: string, startedAt: number): Promise<void>
  /** Writes the checkpoint and its counts. */
  checkpoint(id: string, counts: CsvJobCounts): Promise<void>
  finish(id: string, end: { status: 'completed' | 'failed'; totalRows: number | null; counts: CsvJobCounts | null; error: string | null; completedAt: number }): Promise<void>
  /** Jobs in one of the states, oldest first (a restarted `serve` looks for `pending`/`processing`). */
  listByStatus(statuses: readonly CsvJobStatus[]): Promise<CsvImportJob[]>
}
