import { AppError, type AppErrorOptions, UnavailableError } from './app-error.js'

/**
 * How a permanent store error is filed (DESIGN §6): `unique` (a unique key already holds the row),
 * `constraint` (another integrity rule), `data` (a value the column cannot take), `store_error` (any other
 * refusal). Adapters decide it from their driver's codes; nothing above them reads a driver code.
 */
export type PermanentErrorClass = 'unique' | 'constraint' | 'data' | 'store_error'

/**
 * The database refused a statement for a reason a retry cannot clear (bad data, a constraint). Not
 * retried: the ingest path isolates the row and dead-letters it. The message starts with the driver's
 * code (SQLSTATE, SQL Server error number, SQLite code) so a DLQ entry keeps it.
 */
export class PermanentStoreError extends AppError {
  constructor(
    readonly errorClass: PermanentErrorClass,
    readonly driverCode: string,
    message: string,
    options: AppErrorOptions = {},
  ) {
    super(`STORE_${errorClass.toUpperCase()}`, message.startsWith(`${driverCode}:`) ? message : `${driverCode}: ${message}`, options)
  }
}

/** Whether the store refused a row because its unique key is already taken (a lost race on a key). */
export function isUniqueViolation(err: unknown): boolean {
  return err instanceof PermanentStoreError && err.errorClass === 'unique'
}

/** A COMMIT whose outcome is unknown (the connection died while it ran): never retried, never dead-lettered. */
export class CommitUnknownError extends UnavailableError {
  constructor(message: string, options: AppErrorOptions = {}) {
    super(message, { ...options, code: 'COMMIT_UNKNOWN' })
  }
}

export function isCommitUnknown(err: unknown): boolean {
  return err instanceof AppError && err.code === 'COMMIT_UNKNOWN'
}
