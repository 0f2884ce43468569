import type { Readable } from 'node:stream'

import { parse } from 'csv-parse'

/** Records of one parse step, with the physical line each starts on (1-based) and the bytes read so far. */
export interface CsvRecordBatch {
  readonly records: string[][]
  readonly lines: number[]
  /** Bytes of the input consumed so far (progress and ETA). */
  readonly bytes: number
}

/** A record csv-parse could not read (an unclosed quote runs to the end of the input). */
export interface CsvSyntaxProblem {
  line: number
  reason: string
}

export interface CsvRecordSourceOptions {
  delimiter?: string
  /** Records per batch handed to the caller. */
  batchSize?: number
}

export interface CsvRecordSource extends AsyncIterable<CsvRecordBatch> {
  /** Syntax problems met so far (read them after the iteration ended). */
  readonly problems: readonly CsvSyntaxProblem[]
}

/** Newlines inside a quoted field: the record spans that many more physical lines. */
function extraLines(fields: readonly string[]): number {
  let n = 0
  for (const f of fields) {
    let i = f.indexOf('\n')
    while (i !== -1) {
      n++
      i = f.indexOf('\n', i + 1)
    }
  }
  return n
}

/**
 * Streams CSV records with csv-parse (the only csv-parse import: DESIGN §1): a BOM is dropped, CRLF
 * and LF both end records, quoted fields may hold delimiters and newlines, ragged rows are kept (the
 * caller reports a missing column by line), stray quotes inside a field are kept as text (the caller
 * reports the value). Empty lines are skipped. Memory is bounded by the stream's buffers and one batch.
 *
 * Line numbers are counted here instead of with csv-parse's `info` (which doubles the parse cost):
 * empty lines are not skipped by the parser (they come back as one empty field), so every physical
 * line belongs to exactly one record, and a record spans one line plus the newlines in its fields.
 */
export function csvRecordSource(input: Readable, options: CsvRecordSourceOptions = {}): CsvRecordSource {
  const problems: CsvSyntaxProblem[] = []
  const batchSize = options.batchSize ?? 2000
  let bytes = 0
  input.on('data', (chunk: Buffer | string) => {
    bytes += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length
  })
  const parser = input.pipe(
    parse({
      bom: true,
      delimiter: options.delimiter ?? ',',
      relax_column_count: true,
      relax_quotes: true,
      skip_records_with_error: true,
    }),
  )
  input.on('error', (err) => parser.destroy(err))
  parser.on('skip', (err: Error & { lines?: number }) => {
    problems.push({ line: err.lines ?? 0, reason: err.message })
  })
  return {
    problems,
    async *[Symbol.asyncIterator]() {
      let line = 1
      let records: string[][] = []
      let lines: number[] = []
      for await (const chunk of parser as AsyncIterable<string[]>) {
        const record = chunk
        const start = line
        line += 1 + extraLines(record)
        // An empty line: one empty field and nothing else.
        if (record.length === 1 && record[0] === '') continue
        records.push(record)
        lines.push(start)
        if (records.length >= batchSize) {
          yield { records, lines, bytes }
          records = []
          lines = []
        }
      }
      if (records.length > 0) yield { records, lines, bytes }
    },
  }
}
