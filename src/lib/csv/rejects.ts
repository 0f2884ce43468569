import { createReadStream, createWriteStream, existsSync, renameSync, type WriteStream } from 'node:fs'
import { createInterface } from 'node:readline'

import { csvRow } from '../domain/csv-export.js'
import type { CsvReject } from './formats.js'

export const REJECTS_HEADER = ['line', 'column', 'code', 'reason'] as const

/** One rejects-file row (RFC 4180, formula-escaped: the file is meant to be opened in a spreadsheet). */
export function rejectRow(r: CsvReject): string {
  return csvRow([r.line, r.column, r.code, r.reason])
}

/** The default rejects file of an input: next to it, `<name>.rejects.csv`. */
export function defaultRejectsPath(inputPath: string): string {
  return `${inputPath.replace(/\.csv$/i, '')}.rejects.csv`
}

/** The line number a rejects-file row starts with (its first cell), or NaN. */
function lineOf(row: string): number {
  const comma = row.indexOf(',')
  return Number(comma === -1 ? row : row.slice(0, comma))
}

export interface RejectsWriter {
  readonly path: string
  /** Appends one reject; resolves at once unless the file's buffer is full (then when it drained). */
  write(r: CsvReject): Promise<void> | undefined
  close(): Promise<void>
}

/**
 * Opens the rejects file. A resumed import keeps the rows of the lines it already checkpointed
 * (`keepThroughLine`) and drops the rest (the resumed run reports those lines again), so the file
 * lists every bad line once. Returns the writer and the kept rows' count.
 */
export async function openRejectsWriter(path: string, keepThroughLine = 0): Promise<{ writer: RejectsWriter; kept: number }> {
  let kept = 0
  if (keepThroughLine > 0 && existsSync(path)) {
    const tmp = `${path}.${process.pid}.tmp`
    const out = createWriteStream(tmp)
    const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
    let first = true
    // Rows are single-line unless a reason held a newline (never: reasons are ours).
    for await (const row of rl) {
      if (first) {
        first = false
        continue
      }
      if (lineOf(row) <= keepThroughLine) {
        if (kept === 0) out.write(`${REJECTS_HEADER.join(',')}\r\n`)
        out.write(`${row}\r\n`)
        kept++
      }
    }
    if (kept === 0) out.write(`${REJECTS_HEADER.join(',')}\r\n`)
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
    renameSync(tmp, path)
    return { writer: writer(createWriteStream(path, { flags: 'a' }), path), kept }
  }
  const stream = createWriteStream(path)
  stream.write(`${REJECTS_HEADER.join(',')}\r\n`)
  return { writer: writer(stream, path), kept }
}

function writer(stream: WriteStream, path: string): RejectsWriter {
  let failed: Error | undefined
  stream.on('error', (err) => (failed = err))
  return {
    path,
    write(r) {
      if (failed) throw failed
      if (stream.write(`${rejectRow(r)}\r\n`)) return undefined
      return new Promise<void>((resolve) => stream.once('drain', resolve))
    },
    close() {
      return new Promise<void>((resolve, reject) => stream.end((err?: Error | null) => (err ? reject(err) : failed ? reject(failed) : resolve())))
    },
  }
}

/** Reads the first `max` rows of a rejects file back (a resumed run's summary). */
export async function readRejects(path: string, max: number): Promise<CsvReject[]> {
  const out: CsvReject[] = []
  if (!existsSync(path)) return out
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
  let first = true
  for await (const row of rl) {
    if (first) {
      first = false
      continue
    }
    if (out.length >= max) break
    const cells = splitRow(row)
    out.push({ line: Number(cells[0]), column: cells[1] === '' ? null : (cells[1] ?? null), code: cells[2] ?? '', reason: cells[3] ?? '' })
  }
  rl.close()
  return out
}

/** Splits one RFC 4180 row written by rejectRow (quoted cells, doubled quotes; a formula escape stays). */
function splitRow(row: string): string[] {
  const cells: string[] = []
  let i = 0
  while (i <= row.length) {
    if (row[i] === '"') {
      let j = i + 1
      let text = ''
      for (;;) {
        const q = row.indexOf('"', j)
        if (q === -1) {
          text += row.slice(j)
          j = row.length
          break
        }
        text += row.slice(j, q)
        if (row[q + 1] === '"') {
          text += '"'
          j = q + 2
        } else {
          j = q + 1
          break
        }
      }
      cells.push(text)
      i = j + 1
    } else {
      const comma = row.indexOf(',', i)
      const end = comma === -1 ? row.length : comma
      cells.push(row.slice(i, end))
      i = end + 1
    }
  }
  return cells
}
