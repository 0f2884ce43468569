/**
 * CSV for exports (DLQ, audit, query results): RFC 4180 with CRLF line ends, plus formula-injection
 * escaping (reliability §3.8, OWASP ASVS V1.2.10, CWE-1236): a text cell that starts with `=`, `+`,
 * `-`, `@`, TAB, CR or NUL would be evaluated by Excel, Calc or Sheets, so it gets a leading `'`.
 * Numbers (JS numbers, never text) are written as they are: `-5` stays a number.
 */

/** The characters that make a spreadsheet treat a cell as a formula. */
export const FORMULA_TRIGGERS: readonly string[] = ['=', '+', '-', '@', '\t', '\r', '\0']

/** Prefixes `'` to text a spreadsheet would evaluate. */
export function escapeFormula(text: string): string {
  return text.length > 0 && FORMULA_TRIGGERS.includes(text.charAt(0)) ? `'${text}` : text
}

/** RFC 4180: a field with a comma, a double quote, CR or LF is quoted, quotes doubled. */
export function quoteField(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text
}

export type CsvValue = string | number | boolean | null | undefined | Date | object

/** One cell: null/undefined empty, finite numbers as is, dates ISO, objects JSON; text escaped then quoted. */
export function csvCell(value: CsvValue): string {
  if (value === null || value === undefined) return ''
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  let text: string
  if (typeof value === 'string') text = value
  else if (value instanceof Date) text = value.toISOString()
  else if (typeof value === 'object') text = JSON.stringify(value) ?? ''
  else text = String(value)
  return quoteField(escapeFormula(text))
}

export function csvRow(values: readonly CsvValue[]): string {
  return values.map(csvCell).join(',')
}

/** A whole document: the header row, then one row per record, each line ended by CRLF. */
export function toCsv(header: readonly string[], rows: ReadonlyArray<readonly CsvValue[]>): string {
  return [csvRow(header), ...rows.map(csvRow)].map((line) => `${line}\r\n`).join('')
}
