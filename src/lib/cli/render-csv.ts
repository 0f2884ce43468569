import type { CsvImportResult, CsvProgress } from '../app/csv/import-csv.js'
import { withJobProgress } from './progress.js'

const n = (x: number): string => x.toLocaleString('en-US')

/** One progress line: rows/s, stored, rejected, and an ETA from the bytes read when the size is known. */
export function progressLine(p: CsvProgress): string {
  const seconds = p.elapsedMs / 1000
  const rate = seconds > 0 ? Math.round(p.rows / seconds) : 0
  const parts = [`${n(p.rows)} rows`, `${n(rate)} rows/s`, `${n(p.stored)} stored`, `${n(p.rejected)} rejected`]
  if (p.duplicates > 0) parts.push(`${n(p.duplicates)} already stored`)
  if (p.totalBytes !== null && p.totalBytes > 0 && p.bytes > 0) {
    const done = Math.min(1, p.bytes / p.totalBytes)
    const eta = done > 0 ? (seconds / done) * (1 - done) : 0
    parts.push(`${Math.floor(done * 100)}%`, `ETA ${eta < 60 ? `${Math.ceil(eta)}s` : `${Math.floor(eta / 60)}m${String(Math.ceil(eta % 60)).padStart(2, '0')}s`}`)
  }
  return parts.join(' · ')
}

/** Runs an import under a listr2 task showing its progress line (see withJobProgress). */
export function withCsvProgress<T>(title: string, options: { json: boolean; tty: boolean }, fn: (onProgress: (p: CsvProgress) => void) => Promise<T>): Promise<T> {
  return withJobProgress(title, options, progressLine, fn)
}

/** The human summary: counts, where the rejects are, and the first bad lines. */
export function renderCsvImport(r: CsvImportResult, maxLines = 20): string[] {
  const lines: string[] = []
  const head = r.dryRun ? 'dry run (nothing written)' : r.status === 'stopped' ? 'stopped early (--max-errors)' : 'completed'
  lines.push(`${r.file}: ${head} in ${r.seconds.toFixed(1)} s${r.jobId ? ` (job ${r.jobId})` : ''}`)
  if (r.resumedFrom > 0) lines.push(`  resumed after row ${n(r.resumedFrom)} (an earlier run's checkpoint)`)
  lines.push(`  rows ${n(r.rows)}, points ${n(r.points)}: ${r.dryRun ? 'valid' : 'stored'} ${n(r.dryRun ? r.points - r.rejected : r.stored)}, already stored ${n(r.duplicates)}, rejected ${n(r.rejected)}${r.deadLettered > 0 ? ` (${n(r.deadLettered)} dead-lettered)` : ''}`)
  if (r.rejected > 0) {
    if (r.rejectsFile) lines.push(`  every rejected line is in ${r.rejectsFile}`)
    for (const x of r.rejects.slice(0, maxLines)) lines.push(`  line ${x.line}${x.column ? ` (${x.column})` : ''}: ${x.code}: ${x.reason}`)
    if (r.rejected > maxLines) lines.push(`  ... and ${n(r.rejected - Math.min(maxLines, r.rejects.length))} more`)
  }
  return lines
}
