import pg from 'pg'

import { parseIsoMicros, splitMicros } from '../../../domain/time.js'
import { AppError, CommitUnknownError, type PermanentErrorClass, PermanentStoreError, TransientStoreError, UnavailableError } from '../../../errors/index.js'
import type { Dialect, Param, Row, SqlExecutor } from '../sql/executor.js'
import { toNumber } from '../sql/row.js'
import { PipelinedCopyIn } from './copy-in.js'

export interface PgPoolOptions {
  url: string
  max: number
  connectTimeoutMs: number
  queryTimeoutMs: number
  statementTimeoutMs: number
  applicationName?: string
}

export const postgresDialect: Dialect = {
  engine: 'postgres',
  now: 'now()',
  limit: (n) => `LIMIT ${Math.trunc(n)}`,
  bool: (v) => (v ? 'true' : 'false'),
}

// 64-bit ids come back as JS numbers (with a safe-integer check), like the other engines.
const INT8 = 20
const TIMESTAMP = 1114
const TIMESTAMPTZ = 1184

/**
 * timestamp(tz) text as a Date that keeps its microseconds (as tedious's `nanosecondsDelta`, read by
 * toMsOrNull): pg's own parser drops them. Anything else (infinity, BC dates) goes to pg's parser.
 */
function parseTimestamp(fallback: (v: string) => unknown): (v: string) => unknown {
  return (v) => {
    const ms = parseIsoMicros(v)
    if (Number.isNaN(ms)) return fallback(v)
    const { wholeMs, micros } = splitMicros(ms)
    const d = new Date(wholeMs)
    if (micros !== 0) Object.defineProperty(d, 'nanosecondsDelta', { value: micros / 1e6, enumerable: false })
    return d
  }
}

const types = {
  getTypeParser: ((oid: number, format?: string) => {
    if (oid === INT8) return (v: string) => toNumber(v)
    const parser = pg.types.getTypeParser(oid, format as 'text') as (v: string) => unknown
    return oid === TIMESTAMPTZ || oid === TIMESTAMP ? parseTimestamp(parser) : parser
  }) as typeof pg.types.getTypeParser,
}

/** Rewrites `?` placeholders (never inside quotes in our SQL) to `$1..$n`. */
export function toPgPlaceholders(sql: string): string {
  let i = 0
  return sql.replace(/\?/g, () => `$${++i}`)
}

/** `postgres://user:secret@host:5432/db` -> `postgres host:5432/db` (no credentials). */
export function describePgTarget(url: string): string {
  try {
    const u = new URL(url)
    return `${u.hostname}:${u.port || '5432'}${u.pathname}`
  } catch {
    return 'postgres'
  }
}

type Queryable = Pick<pg.Pool | pg.PoolClient, 'query'>

const guarded = new WeakSet<pg.PoolClient>()

export class PgPool implements SqlExecutor {
  readonly engine = 'postgres' as const
  readonly dialect = postgresDialect
  readonly pool: pg.Pool
  readonly target: string

  constructor(options: PgPoolOptions) {
    this.target = describePgTarget(options.url)
    this.pool = new pg.Pool({
      connectionString: options.url,
      max: options.max,
      connectionTimeoutMillis: options.connectTimeoutMs,
      query_timeout: options.queryTimeoutMs,
      statement_timeout: options.statementTimeoutMs,
      idleTimeoutMillis: 30_000,
      application_name: options.applicationName ?? 'ingest',
      types,
    })
    // An idle client's error (server restart) must not crash the process; the next query reconnects.
    this.pool.on('error', () => undefined)
  }

  private executor(client: Queryable, inTx: boolean): SqlExecutor {
    const exec: SqlExecutor = {
      engine: 'postgres',
      dialect: postgresDialect,
      all: async <R extends Row>(sql: string, params: readonly Param[] = []) => (await wrap(client.query(toPgPlaceholders(sql), params as Param[]))).rows as R[],
      run: async (sql, params = []) => (await wrap(client.query(toPgPlaceholders(sql), params as Param[]))).rowCount ?? 0,
      insert: async (table, values) => {
        const cols = Object.keys(values)
        const sql = `INSERT INTO "${table}" (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) RETURNING id`
        const res = await wrap(client.query<Row>(sql, cols.map((c) => values[c])))
        return toNumber(res.rows[0]?.['id'])
      },
      transaction: (fn) => (inTx ? fn(exec) : this.transaction(fn)),
    }
    return exec
  }

  all<R extends Row = Row>(sql: string, params?: readonly Param[]): Promise<R[]> {
    return this.executor(this.pool, false).all<R>(sql, params)
  }

  run(sql: string, params?: readonly Param[]): Promise<number> {
    return this.executor(this.pool, false).run(sql, params)
  }

  insert(table: string, values: Readonly<Record<string, Param>>): Promise<number> {
    return this.executor(this.pool, false).insert(table, values)
  }

  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.clientTransaction((_client, tx) => fn(tx))
  }

  /** A transaction that also exposes its client: BEGIN first, COMMIT at the end (see batchedTransaction). */
  async clientTransaction<T>(fn: (client: pg.PoolClient, tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.batchedTransaction(async (batch, tx) => {
      await batch.begin()
      return fn(batch.client, tx)
    })
  }

  /**
   * A transaction for the ingest hot path, where every round trip waits behind the HTTP work in the
   * event loop: BEGIN rides on the first statement batch and COMMIT on the last one (see PgBatchTx).
   * Statements sent through `tx` or `client` before the first batch get a BEGIN of their own first.
   */
  async batchedTransaction<T>(fn: (batch: PgBatchTx, tx: SqlExecutor) => Promise<T>): Promise<T> {
    const client = await this.connect()
    const batch = new PgBatchTx(client)
    const inner = this.executor(client, true)
    const tx: SqlExecutor = {
      ...inner,
      all: async (sql, params) => (await batch.begin(), inner.all(sql, params)),
      run: async (sql, params) => (await batch.begin(), inner.run(sql, params)),
      insert: async (table, values) => (await batch.begin(), inner.insert(table, values)),
      transaction: (f) => f(tx),
    }
    let committing = false
    try {
      const out = await fn(batch, tx)
      // A COPY still waiting goes with the COMMIT.
      if (batch.hasDeferredCopy) await batch.run([], { commit: true, afterCopy: true })
      if (batch.state === 'open') {
        committing = true
        await client.query('COMMIT')
      }
      client.release()
      return out
    } catch (err) {
      try {
        if (batch.state === 'open' || batch.state === 'committing') await client.query('ROLLBACK')
        client.release()
      } catch {
        client.release(true)
      }
      // A failure during COMMIT leaves the outcome unknown (the server may have committed): it must not
      // be retried as if nothing was written. Neither may a failure after the COMMIT batch (a bug).
      if (committing || batch.state === 'committed' || (batch.state === 'committing' && !isServerAnswer(err)))
        throw new CommitUnknownError(`PostgreSQL commit outcome unknown: ${(err as Error).message}`, { cause: err })
      throw wrapPgError(err)
    }
  }

  /** A dedicated client (hot paths: COPY). Connection failures become UnavailableError. */
  async connect(): Promise<pg.PoolClient> {
    try {
      const client = await this.pool.connect()
      // A checked-out client whose connection dies emits 'error'; its query rejects anyway, so the
      // event only needs a listener (without one it would crash the process).
      if (!guarded.has(client)) {
        guarded.add(client)
        client.on('error', () => undefined)
      }
      return client
    } catch (err) {
      throw new UnavailableError(`cannot connect to PostgreSQL at ${this.target}: ${(err as Error).message}`, { cause: err, code: 'POSTGRES_UNAVAILABLE' })
    }
  }

  async close(): Promise<void> {
    await this.pool.end()
  }
}

/**
 * Driver errors at the adapter boundary: connection-class failures (SQLSTATE 08, 53, 57, socket
 * errors, timeouts) become UnavailableError; deadlocks and serialization failures (class 40) become
 * TransientStoreError; any other answer of the server (bad data, constraints) is a PermanentStoreError
 * classed by its SQLSTATE. Errors that are not the driver's (ours, bugs) pass through unchanged.
 */
export function wrapPgError(err: unknown): unknown {
  if (err instanceof AppError) return err
  if (isPgOutage(err)) return new UnavailableError(`PostgreSQL unavailable: ${(err as Error).message}`, { cause: err, code: 'POSTGRES_UNAVAILABLE' })
  const code = (err as { code?: unknown } | null | undefined)?.code
  if (typeof code === 'string' && code.startsWith('40')) return new TransientStoreError(`PostgreSQL ${code}: ${(err as Error).message}`, { cause: err, code: `PG_${code}` })
  if (err instanceof pg.DatabaseError && typeof code === 'string') return new PermanentStoreError(pgErrorClass(code), code, err.message, { cause: err })
  return err
}

/** The permanent class of a SQLSTATE: 23505 unique, other 23 integrity, 22 data exceptions. */
export function pgErrorClass(sqlstate: string): PermanentErrorClass {
  if (sqlstate === '23505') return 'unique'
  if (sqlstate.startsWith('23')) return 'constraint'
  if (sqlstate.startsWith('22')) return 'data'
  return 'store_error'
}

/**
 * Whether the server itself answered with this error (its SQLSTATE), so a transaction it ended has
 * certainly rolled back. Connection-class codes (08, 57: shutdown, termination) and socket errors or
 * client timeouts leave a COMMIT's outcome unknown.
 */
export function isServerAnswer(err: unknown): boolean {
  // A wrapper of our own (DuplicateKeyError) keeps the server's error as its cause.
  const e = err instanceof pg.DatabaseError ? err : (err as { cause?: unknown } | null | undefined)?.cause
  const code = (e as { code?: unknown } | null | undefined)?.code
  if (!(e instanceof pg.DatabaseError) || typeof code !== 'string' || !/^[0-9A-Z]{5}$/.test(code)) return false
  // 57014 (statement timeout, cancel) is raised before a COMMIT completes: a certain rollback. Shutdown
  // and termination (57P01..) may hit a transaction that has already committed.
  if (code === '57014') return true
  return !code.startsWith('08') && !code.startsWith('57')
}

/** A SQL literal of a bigint array, from checked integers (a simple-query batch has no parameters). */
export function bigintArrayLiteral(ids: readonly number[]): string {
  for (const id of ids) if (!Number.isSafeInteger(id)) throw new TypeError(`not an integer id: ${String(id)}`)
  return `'{${ids.join(',')}}'::bigint[]`
}

/** A dollar-quoted SQL literal of any text: no escaping, the tag is chosen so it cannot occur inside. */
export function dollarQuoted(text: string): string {
  let tag = 'q'
  // Nor may the text end in `$tag` (its closing `$tag$` would start inside the text).
  while (text.includes(`$${tag}$`) || text.endsWith(`$${tag}`)) tag += 'q'
  return `$${tag}$${text}$${tag}$`
}

/**
 * One transaction sent as simple-query batches (`a; b; c` in one message, one round trip): the first
 * batch starts with BEGIN, the last may end with COMMIT, and a deferred COPY rides in front of the next
 * batch that allows it (`COPY ... FROM STDIN; a; COMMIT` with the copy data right behind: PostgreSQL
 * runs the COPY, then the rest of the string). Only literals in the SQL (see bigintArrayLiteral,
 * dollarQuoted): the simple protocol has no parameters.
 * state: idle (nothing sent) -> open -> committing (the COMMIT batch was sent) -> committed.
 */
export class PgBatchTx {
  state: 'idle' | 'open' | 'committing' | 'committed' = 'idle'
  private deferred: { sql: string; data: Buffer | string; mapError: (err: unknown) => unknown } | null = null
  constructor(readonly client: pg.PoolClient) {}

  /** Sends BEGIN alone if nothing was sent yet, and any deferred COPY (before a statement that cannot carry them). */
  async begin(): Promise<void> {
    // Anything sent after the COMMIT would run outside the transaction (autocommit): a bug, refused.
    if (this.state === 'committing' || this.state === 'committed') throw new Error('the transaction is already committing')
    if (this.state === 'idle') {
      this.state = 'open'
      await this.client.query('BEGIN')
    }
    if (this.deferred) await this.copyThen([], false)
  }

  /** Whether a COPY waits to be sent (with the next batch that allows it, or the COMMIT). */
  get hasDeferredCopy(): boolean {
    return this.deferred !== null
  }

  /** A COPY to send later, in front of the next batch that allows it; its errors go through `mapError`. */
  deferCopy(sql: string, data: Buffer | string, mapError: (err: unknown) => unknown = (err) => err): void {
    if (this.deferred) throw new Error('a COPY is already waiting to be sent')
    this.deferred = { sql, data, mapError }
  }

  /**
   * Runs the statements in one round trip; returns each statement's result (BEGIN/COMMIT excluded).
   * `afterCopy`: a deferred COPY goes in the same round trip, in front (results are then not returned).
   */
  async run(statements: readonly string[], options: { commit?: boolean; afterCopy?: boolean } = {}): Promise<pg.QueryResult<Row>[]> {
    if (this.state === 'committing' || this.state === 'committed') throw new Error('the transaction is already committing')
    if (this.deferred) {
      if (options.afterCopy) {
        await this.copyThen(statements, options.commit === true)
        return []
      }
      await this.begin()
    }
    const opening = this.state === 'idle'
    const commit = options.commit === true
    const res = (await this.client.query(this.frame(statements, commit))) as unknown as pg.QueryResult<Row> | pg.QueryResult<Row>[]
    if (commit) this.state = 'committed'
    const all = Array.isArray(res) ? res : [res]
    return all.slice(opening ? 1 : 0, commit ? all.length - 1 : all.length)
  }

  /** The deferred COPY, then these statements (then COMMIT), in one message and one round trip. */
  private async copyThen(statements: readonly string[], commit: boolean): Promise<void> {
    const copy = this.deferred
    if (!copy) return
    this.deferred = null
    const submittable = new PipelinedCopyIn(this.frame([copy.sql, ...statements], commit), copy.data)
    void this.client.query(submittable)
    try {
      await submittable.done
    } catch (err) {
      throw copy.mapError(err)
    }
    if (commit) this.state = 'committed'
  }

  /** One query string: BEGIN in front when nothing was sent yet, COMMIT behind when asked; moves the state. */
  private frame(statements: readonly string[], commit: boolean): string {
    const parts = this.state === 'idle' ? ['BEGIN', ...statements] : [...statements]
    if (commit) parts.push('COMMIT')
    this.state = commit ? 'committing' : 'open'
    return parts.join(';\n')
  }
}

async function wrap<T>(p: Promise<T>): Promise<T> {
  try {
    return await p
  } catch (err) {
    throw wrapPgError(err)
  }
}

export function isPgOutage(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code
  if (typeof code === 'string') {
    if (code.startsWith('08') || code.startsWith('53') || code.startsWith('57')) return true
    if (['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(code)) return true
    // Any other SQLSTATE is the server answering: not an outage, whatever its message says.
    if (/^[0-9A-Z]{5}$/.test(code)) return false
  }
  const msg = err instanceof Error ? err.message : ''
  return /timeout|terminated|Connection terminated|not queryable|connection closed/i.test(msg)
}
