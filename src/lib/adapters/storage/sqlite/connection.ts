import { existsSync, mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

import BetterSqlite3 from 'better-sqlite3'

import { AppError, type PermanentErrorClass, PermanentStoreError, TransientStoreError, UnavailableError, UsageError } from '../../../errors/index.js'
import type { Dialect, Param, Row, SqlExecutor } from '../sql/executor.js'
import { microsOf, toNumber } from '../sql/row.js'
import { isoMicros } from '../../../domain/time.js'

export type SqliteDb = BetterSqlite3.Database

export interface OpenSqliteOptions {
  path: string
  /** Only serve, db migrate, apply and keys create may create a new database file. */
  create: boolean
  /** Milliseconds the synchronous busy wait may block the event loop before the async retry takes over. */
  busyTimeoutMs?: number
  /** Total time to keep retrying a busy database before giving up. */
  busyRetryMs?: number
}

export const sqliteDialect: Dialect = {
  engine: 'sqlite',
  now: "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
  limit: (n) => `LIMIT ${Math.trunc(n)}`,
  bool: (v) => (v ? '1' : '0'),
}

/** better-sqlite3 takes no Date or boolean: times are ISO text, booleans 0/1. */
export function encodeSqliteParam(p: Param | undefined): string | number | bigint | Buffer | null {
  if (p === undefined || p === null) return null
  // Times are stored as ISO text; a Date carrying microseconds (timeParam) keeps them: six digits.
  if (p instanceof Date) {
    const micros = microsOf(p)
    return micros === 0 ? p.toISOString() : isoMicros(p.getTime() + micros / 1000)
  }
  if (typeof p === 'boolean') return p ? 1 : 0
  // SQLite has no arrays: they travel as JSON (read with json_each).
  if (Array.isArray(p)) return JSON.stringify(p)
  return p as string | number | Buffer
}

const OUTAGE_CODES = /^SQLITE_(IOERR|FULL|READONLY|CANTOPEN|NOMEM|CORRUPT|NOTADB|PROTOCOL)/

/**
 * Driver errors at the adapter boundary: a disk or file failure is an outage of the store (retried, opens
 * the breaker), not a bad row; any other SQLite refusal is a PermanentStoreError classed by its code.
 * Errors that are not the driver's (ours, bugs) pass through unchanged.
 */
export function wrapSqliteError(err: unknown, path: string): unknown {
  if (err instanceof AppError) return err
  const code = (err as { code?: unknown } | null)?.code
  if (typeof code === 'string' && OUTAGE_CODES.test(code)) return new UnavailableError(`the embedded database ${path} failed: ${(err as Error).message}`, { cause: err, code })
  if (err instanceof BetterSqlite3.SqliteError && typeof code === 'string') return new PermanentStoreError(sqliteErrorClass(code), code, err.message, { cause: err })
  return err
}

/** The permanent class of a SQLite extended result code. */
export function sqliteErrorClass(code: string): PermanentErrorClass {
  if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') return 'unique'
  if (code.startsWith('SQLITE_CONSTRAINT')) return 'constraint'
  if (code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG' || code === 'SQLITE_RANGE') return 'data'
  return 'store_error'
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code
  return code === 'SQLITE_BUSY' || code === 'SQLITE_BUSY_SNAPSHOT' || code === 'SQLITE_LOCKED'
}

/**
 * An async mutex: better-sqlite3 has one connection, so another request's statements must never
 * run inside an open transaction. Every statement outside a transaction also takes it.
 */
class Mutex {
  private tail: Promise<void> = Promise.resolve()
  async lock<T>(fn: () => Promise<T>): Promise<T> {
    let release!: () => void
    const next = new Promise<void>((r) => (release = r))
    const prev = this.tail
    this.tail = prev.then(() => next)
    await prev
    try {
      return await fn()
    } finally {
      release()
    }
  }
}

export class SqliteConnection implements SqlExecutor {
  readonly engine = 'sqlite' as const
  readonly dialect = sqliteDialect
  readonly db: SqliteDb
  private readonly mutex = new Mutex()
  private readonly busyRetryMs: number
  private readonly statements = new Map<string, BetterSqlite3.Statement>()

  constructor(readonly path: string, db: SqliteDb, busyRetryMs: number) {
    this.db = db
    this.busyRetryMs = busyRetryMs
  }

  static open(options: OpenSqliteOptions): SqliteConnection {
    if (!existsSync(options.path)) {
      if (!options.create) {
        throw new UsageError(`no ingest database at ${options.path}`, {
          suggestions: ['run "ingest db migrate" (or "ingest serve") first, or set INGEST_DATA_DIR to the folder that holds ingest.db'],
        })
      }
      mkdirSync(dirname(options.path), { recursive: true, mode: 0o700 })
    }
    const db = new BetterSqlite3(options.path, { fileMustExist: !options.create })
    db.pragma(`busy_timeout = ${options.busyTimeoutMs ?? 20}`)
    db.pragma('journal_mode = WAL')
    // An ack means on disk.
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    return new SqliteConnection(options.path, db, options.busyRetryMs ?? 10_000)
  }

  prepare(sql: string): BetterSqlite3.Statement {
    let stmt = this.statements.get(sql)
    if (!stmt) {
      stmt = this.db.prepare(sql)
      this.statements.set(sql, stmt)
    }
    return stmt
  }

  /**
   * Retries a busy database asynchronously with backoff, so the event loop is never blocked for long.
   * With `locked`, each attempt takes the mutex and the wait between attempts happens outside it:
   * another process holding the write lock never stalls this process's other statements.
   */
  async retryBusy<T>(fn: () => T, locked = false): Promise<T> {
    const deadline = Date.now() + this.busyRetryMs
    let delay = 2
    for (;;) {
      try {
        return locked ? await this.mutex.lock(() => Promise.resolve(fn())) : fn()
      } catch (err) {
        if (!isBusy(err)) throw wrapSqliteError(err, this.path)
        if (Date.now() > deadline) throw new TransientStoreError(`the embedded database ${this.path} stayed busy for ${this.busyRetryMs} ms`, { cause: err, code: 'SQLITE_BUSY' })
        await new Promise((r) => setTimeout(r, Math.random() * delay))
        delay = Math.min(delay * 2, 100)
      }
    }
  }

  private direct(inTx: boolean): SqlExecutor {
    // Outside a transaction every statement takes the mutex per attempt (see retryBusy).
    const go = <T>(fn: () => T): Promise<T> => (inTx ? Promise.resolve(fn()) : this.retryBusy(fn, true))
    const exec: SqlExecutor = {
      engine: 'sqlite',
      dialect: sqliteDialect,
      all: <R extends Row>(sql: string, params: readonly Param[] = []) => go(() => this.prepare(sql).all(...params.map(encodeSqliteParam)) as R[]),
      run: (sql, params = []) => go(() => this.prepare(sql).run(...params.map(encodeSqliteParam)).changes),
      insert: (table, values) => {
        const cols = Object.keys(values)
        const sql = `INSERT INTO "${table}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`
        return go(() => toNumber(this.prepare(sql).run(...cols.map((c) => encodeSqliteParam(values[c]))).lastInsertRowid))
      },
      transaction: (fn) => (inTx ? fn(exec) : this.transaction(fn)),
    }
    return exec
  }

  all<R extends Row = Row>(sql: string, params?: readonly Param[]): Promise<R[]> {
    return this.direct(false).all<R>(sql, params)
  }

  run(sql: string, params?: readonly Param[]): Promise<number> {
    return this.direct(false).run(sql, params)
  }

  insert(table: string, values: Readonly<Record<string, Param>>): Promise<number> {
    return this.direct(false).insert(table, values)
  }

  /**
   * One write transaction: BEGIN IMMEDIATE (takes the write lock up front, so it never deadlocks on
   * upgrade). While another process holds the lock, this waits outside the mutex.
   */
  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.busyRetryMs
    let delay = 2
    for (;;) {
      const attempt = await this.mutex.lock(async (): Promise<{ done: true; value: T } | { done: false; err: unknown }> => {
        try {
          this.db.exec('BEGIN IMMEDIATE')
        } catch (err) {
          if (isBusy(err)) return { done: false, err }
          throw err
        }
        return { done: true, value: await this.inTransaction(fn) }
      })
      if (attempt.done) return attempt.value
      if (Date.now() > deadline) throw new TransientStoreError(`the embedded database ${this.path} stayed busy for ${this.busyRetryMs} ms`, { cause: attempt.err, code: 'SQLITE_BUSY' })
      await new Promise((r) => setTimeout(r, Math.random() * delay))
      delay = Math.min(delay * 2, 100)
    }
  }

  private async inTransaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    {
      try {
        const out = await fn(this.direct(true))
        await this.retryBusy(() => this.db.exec('COMMIT'))
        return out
      } catch (err) {
        try {
          if (this.db.inTransaction) this.db.exec('ROLLBACK')
        } catch {
          // the original error matters more
        }
        throw wrapSqliteError(err, this.path)
      }
    }
  }

  /** Runs synchronous work on the raw handle inside the mutex and one IMMEDIATE transaction (hot paths). */
  writeSync<T>(fn: (db: SqliteDb) => T): Promise<T> {
    return this.transaction(() => Promise.resolve(fn(this.db)))
  }

  async close(): Promise<void> {
    await this.mutex.lock(() => {
      if (this.db.open) this.db.close()
      return Promise.resolve()
    })
  }
}
