/**
 * The error hierarchy. Every error the product raises on purpose is an AppError with a stable
 * `code`; the two mappers (the CLI base command and the HTTP error handler) turn it into an exit
 * code or an HTTP answer. Driver errors are wrapped at the adapter boundary with `{ cause }`.
 */
export interface AppErrorOptions {
  cause?: unknown
  suggestions?: readonly string[]
  /** One line per problem, for errors that carry several (configuration, `apply` files). */
  problems?: readonly string[]
  details?: Record<string, unknown>
}

export class AppError extends Error {
  readonly code: string
  readonly exitCode: number = 1
  readonly httpStatus: number = 500
  readonly suggestions: readonly string[]
  readonly problems: readonly string[]
  readonly details: Record<string, unknown> | undefined

  constructor(code: string, message: string, options: AppErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.suggestions = options.suggestions ?? []
    this.problems = options.problems ?? []
    this.details = options.details
  }
}

/** The user can fix it: bad flags, bad configuration, an invalid file. Exit 2. */
export class UserError extends AppError {
  override readonly exitCode = 2
  override readonly httpStatus: number = 422
}

export class ConfigError extends UserError {
  constructor(problems: readonly string[], options: Omit<AppErrorOptions, 'problems'> = {}) {
    super('CONFIG_INVALID', problems.length === 1 ? (problems[0] ?? 'invalid configuration') : `invalid configuration (${problems.length} problems)`, { ...options, problems })
  }
}

export class UsageError extends UserError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('USAGE', message, options)
  }
}

export class ValidationError extends UserError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('VALIDATION', message, options)
  }
}

export class NotFoundError extends AppError {
  override readonly httpStatus = 404
  constructor(message: string, options: AppErrorOptions = {}) {
    super('NOT_FOUND', message, options)
  }
}

export class ConflictError extends AppError {
  override readonly httpStatus = 409
  constructor(message: string, options: AppErrorOptions = {}) {
    super('CONFLICT', message, options)
  }
}

/** A dependency (database, Redis, broker, explainer) cannot be reached or timed out. Exit 1, HTTP 503. */
export class UnavailableError extends AppError {
  override readonly httpStatus = 503
  constructor(message: string, options: AppErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'UNAVAILABLE', message, options)
  }
}

/** The schema of a server database is behind the code. */
export class SchemaBehindError extends AppError {
  constructor(store: string, pending: readonly string[]) {
    super('SCHEMA_BEHIND', `the ${store} database schema is behind (${pending.length} pending migration${pending.length === 1 ? '' : 's'}): run "ingest db migrate"`, {
      suggestions: ['ingest db migrate'],
      details: { pending },
    })
  }
}

/** An invariant broke: a bug. Exit 1, HTTP 500. */
export class BugError extends AppError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super('BUG', message, options)
  }
}

/** Normalises anything thrown into an AppError (unknown errors become BugErrors). */
export function coerceError(err: unknown): AppError {
  if (err instanceof AppError) return err
  if (err instanceof Error) return new BugError(err.message, { cause: err })
  return new BugError(String(err))
}

/** A store error worth retrying that is not an outage (deadlock, serialization failure, busy). */
export class TransientStoreError extends AppError {
  override readonly httpStatus = 503
  constructor(message: string, options: AppErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'STORE_TRANSIENT', message, options)
  }
}

export type StoreErrorClass = 'outage' | 'transient' | 'permanent'

/**
 * How the ingest path treats a store error (DESIGN §6): outages (connection, timeout) are retried and
 * count for the circuit breaker; transient errors are retried; permanent ones (bad data, constraint)
 * are not retried: the row is isolated and dead-lettered. Adapters wrap driver errors accordingly.
 */
export function classifyStoreError(err: unknown): StoreErrorClass {
  if (err instanceof TransientStoreError) return 'transient'
  if (err instanceof UnavailableError) return 'outage'
  return 'permanent'
}
