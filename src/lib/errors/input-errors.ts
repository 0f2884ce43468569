import type { ParseIssue } from '../domain/ingest/issues.js'
import { type AppErrorOptions, UserError } from './app-error.js'

const MAX_ECHO = 1000

/** Inputs are echoed as pydantic does, but never more than MAX_ECHO characters of one (no amplification). */
function clip(input: unknown): unknown {
  if (typeof input === 'string' && input.length > MAX_ECHO) return `${input.slice(0, MAX_ECHO)}...`
  if (typeof input === 'object' && input !== null) {
    const text = JSON.stringify(input)
    return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}...` : input
  }
  return input
}

/** Which part of a request an input came from (the first element of a FastAPI `loc`). */
export type InputLocation = 'body' | 'query' | 'path'

/**
 * An input that does not match its schema, with every issue found (paths relative to `location`).
 * Nothing of it is stored. HTTP answers 422 with the pydantic-style list; the CLI exits 2.
 */
export class InputValidationError extends UserError {
  readonly issues: readonly ParseIssue[]
  constructor(
    code: string,
    readonly location: InputLocation,
    issues: readonly ParseIssue[],
    options: AppErrorOptions = {},
  ) {
    super(code, `invalid ${location}: ${issues.length} problem${issues.length === 1 ? '' : 's'}`, { ...options, problems: issues.map((i) => `${[location, ...i.path].join('.')}: ${i.msg}`) })
    this.issues = issues.map((i) => ({ ...i, input: clip(i.input) }))
  }
}

/** A request body that does not match its schema. */
export class BodyValidationError extends InputValidationError {
  constructor(issues: readonly ParseIssue[]) {
    super('BODY_INVALID', 'body', issues)
  }
}

/** A path or query parameter that does not match its type. */
export class ParamValidationError extends InputValidationError {
  constructor(location: 'path' | 'query', issues: readonly ParseIssue[]) {
    super('PARAM_INVALID', location, issues)
  }
}

/** A body that is not JSON; `position` is the character offset where decoding failed. */
export class BodyJsonError extends UserError {
  constructor(
    readonly position: number,
    readonly reason: string,
  ) {
    super('BODY_JSON_INVALID', 'JSON decode error')
  }
}

/** A JSON body nesting deeper than HTTP_MAX_JSON_DEPTH (refused before any field is read). */
export class BodyTooDeepError extends UserError {
  constructor(readonly limit: number) {
    super('BODY_TOO_DEEP', 'JSON nesting deeper than the limit')
  }
}

/** A body over HTTP_BODY_LIMIT_BYTES. */
export class BodyTooLargeError extends UserError {
  override readonly httpStatus = 413
  constructor() {
    super('BODY_TOO_LARGE', 'Request body too large')
  }
}

/** A JSON body with `__proto__` or `constructor.prototype` keys (prototype poisoning). */
export class BodyForbiddenKeyError extends UserError {
  override readonly httpStatus = 400
  constructor() {
    super('BODY_FORBIDDEN_KEY', 'Object contains forbidden prototype property')
  }
}

/** A body whose length differs from its Content-Length. */
export class BodyLengthError extends UserError {
  override readonly httpStatus = 400
  constructor() {
    super('BODY_LENGTH_INVALID', 'Invalid Content-Length')
  }
}
