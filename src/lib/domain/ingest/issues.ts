/** Where a problem is, from the root of the parsed input: `['readings', 3, 'value']`; `[]` is the input itself. */
export type IssuePath = Array<string | number>

/**
 * One problem found while parsing an input, independent of the transport that carried it. `code` is
 * pydantic's error type (`missing`, `float_parsing`, `uuid_parsing`, ...) so the legacy HTTP 422 list is
 * a 1:1 mapping. Each transport maps issues to its own answer: HTTP to the FastAPI 422 `detail` list
 * (`loc: ['body', ...path]`), CSV to a line and column, MQTT to a dead-letter entry with stage `validation`.
 */
export interface ParseIssue {
  path: IssuePath
  code: string
  msg: string
  /** The offending input, echoed as pydantic does (transports bound its size). */
  input?: unknown
  ctx?: Record<string, unknown>
}

/** A parser's answer: the value, or every issue found (never both). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: ParseIssue[] }
