import { isUniqueViolation } from '../../../errors/index.js'
import type { CsvImportJob, CsvImportStore, CsvJobStatus } from '../../../ports/csv-import-store.js'
import type { Row, SqlExecutor } from './executor.js'
import { toMsOrNull, toNumber, toStringOrNull } from './row.js'

const COLUMNS = '"id", "source_id", "domain", "filename", "status", "total_rows", "processed_rows", "inserted_rows", "rejected_rows", "error", "created_at", "started_at", "completed_at"'
const STATUSES: ReadonlySet<string> = new Set<CsvJobStatus>(['pending', 'processing', 'completed', 'failed'])

function toJob(r: Row): CsvImportJob {
  const status = String(r['status'])
  return {
    id: String(r['id']).toLowerCase(),
    sourceId: toStringOrNull(r['source_id']),
    domain: toStringOrNull(r['domain']),
    filename: toStringOrNull(r['filename']),
    status: (STATUSES.has(status) ? status : 'failed') as CsvJobStatus,
    totalRows: toNumber(r['total_rows']),
    processedRows: toNumber(r['processed_rows']),
    insertedRows: toNumber(r['inserted_rows']),
    rejectedRows: toNumber(r['rejected_rows']),
    error: toStringOrNull(r['error']),
    createdAt: toMsOrNull(r['created_at']) ?? 0,
    startedAt: toMsOrNull(r['started_at']),
    completedAt: toMsOrNull(r['completed_at']),
  }
}

/** `csv_import_jobs` over the universal engine's executor (PostgreSQL uuid ids, SQLite text). */
export function createSqlCsvImportStore(exec: SqlExecutor): CsvImportStore {
  return {
    async get(id) {
      const rows = await exec.all(`SELECT ${COLUMNS} FROM "csv_import_jobs" WHERE "id" = ?`, [id])
      return rows[0] ? toJob(rows[0]) : null
    },
    async create(job) {
      try {
        await exec.run(`INSERT INTO "csv_import_jobs" ("id", "source_id", "domain", "filename", "status", "created_at") VALUES (?, ?, ?, ?, 'pending', ?)`, [job.id, job.sourceId, job.domain, job.filename, new Date(job.createdAt)])
      } catch (err) {
        // The file's job already exists (a re-run): its checkpoint is what the caller wants.
        if (!isUniqueViolation(err)) throw err
      }
    },
    async start(id, startedAt) {
      await exec.run(`UPDATE "csv_import_jobs" SET "status" = 'processing', "started_at" = ?, "completed_at" = NULL, "error" = NULL WHERE "id" = ?`, [new Date(startedAt), id])
    },
    async checkpoint(id, c) {
      await exec.run('UPDATE "csv_import_jobs" SET "processed_rows" = ?, "inserted_rows" = ?, "rejected_rows" = ? WHERE "id" = ?', [c.processedRows, c.insertedRows, c.rejectedRows, id])
    },
    async finish(id, end) {
      const sets = ['"status" = ?', '"completed_at" = ?', '"error" = ?']
      const params: Array<string | number | Date | null> = [end.status, new Date(end.completedAt), end.error]
      if (end.totalRows !== null) {
        sets.push('"total_rows" = ?')
        params.push(end.totalRows)
      }
      if (end.counts) {
        sets.push('"processed_rows" = ?', '"inserted_rows" = ?', '"rejected_rows" = ?')
        params.push(end.counts.processedRows, end.counts.insertedRows, end.counts.rejectedRows)
      }
      await exec.run(`UPDATE "csv_import_jobs" SET ${sets.join(', ')} WHERE "id" = ?`, [...params, id])
    },
    async listByStatus(statuses) {
      if (statuses.length === 0) return []
      const rows = await exec.all(`SELECT ${COLUMNS} FROM "csv_import_jobs" WHERE "status" IN (${statuses.map(() => '?').join(', ')}) ORDER BY "created_at"`, [...statuses])
      return rows.map(toJob)
    },
  }
}
