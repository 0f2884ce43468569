import sql from 'mssql'
import type { config as MssqlConfig, ConnectionPool, IRecordSet, IResult, ISqlType, Request, Transaction } from 'mssql'

import type { SqlServerConfig } from '../../../config/types.js'
import { AppError, BugError, CommitUnknownError, ConfigError, type PermanentErrorClass, PermanentStoreError, TransientStoreError, UnavailableError } from '../../../errors/index.js'
import type { Dialect, Param, Row, SqlExecutor } from '../sql/executor.js'
import { toNumber } from '../sql/row.js'

/** Pool settings beside the SqlServerConfig (config.storage.poolMax, connectTimeoutMs, statementTimeoutMs). */
export interface MssqlPoolOptions {
  max: number
  connectTimeoutMs: number
  /** mssql's request timeout: SQL Server has no server-side statement timeout, so this is config.storage.statementTimeoutMs. */
  requestTimeoutMs: number
  applicationName?: string
}

export const mssqlDialect: Dialect = {
  engine: 'sqlserver',
  now: 'SYSUTCDATETIME()',
  limit: (n) => `OFFSET 0 ROWS FETCH NEXT ${Math.trunc(n)} ROWS ONLY`,
  bool: (v) => (v ? '1' : '0'),
}

// ---------------------------------------------------------------- placeholders and parameters

/**
 * Rewrites `?` placeholders to `@p1..@pn`. Unlike the PostgreSQL rewrite it skips string literals,
 * quoted and bracketed identifiers and comments, because T-SQL scripts of the other team (and
 * `sp_getapplock` resource names) may hold a literal `?`.
 */
export function toMssqlPlaceholders(text: string): { sql: string; count: number } {
  let out = ''
  let count = 0
  let i = 0
  const n = text.length
  const skipTo = (close: string, from: number): number => {
    // A doubled closing quote ('' "" ]]) is an escaped one and does not end the token.
    let j = from
    for (;;) {
      const k = text.indexOf(close, j)
      if (k < 0) return n
      if (close.length === 1 && text[k + 1] === close) {
        j = k + 2
        continue
      }
      return k + close.length
    }
  }
  while (i < n) {
    const c = text[i]
    const next = text[i + 1]
    let end = -1
    if (c === "'") end = skipTo("'", i + 1)
    else if (c === '"') end = skipTo('"', i + 1)
    else if (c === '[') end = skipTo(']', i + 1)
    else if (c === '-' && next === '-') {
      const k = text.indexOf('\n', i)
      end = k < 0 ? n : k
    } else if (c === '/' && next === '*') end = skipTo('*/', i + 2)
    if (end >= 0) {
      out += text.slice(i, end)
      i = end
    } else if (c === '?') {
      out += `@p${++count}`
      i++
    } else {
      out += c
      i++
    }
  }
  return { sql: out, count }
}

const INT32_MIN = -2_147_483_648
const INT32_MAX = 2_147_483_647

export type MssqlParamKind = 'Int' | 'BigInt' | 'Float' | 'NVarChar(max)' | 'Bit' | 'DateTime2' | 'VarBinary(max)' | 'Null'

export interface BoundParam {
  /** Without the `@` (mssql adds it). */
  name: string
  kind: MssqlParamKind
  /** A type factory (sql.Int) or a sized type (sql.NVarChar(sql.MAX)): what Request.input accepts. */
  type: (() => ISqlType) | ISqlType
  value: Param
}

/**
 * Chooses each parameter's SQL Server type explicitly. Left to mssql, every JS number that is an
 * integer becomes `int` and overflows above 2^31 (bigint ids), and every other number `float`.
 */
export function bindParam(value: Param, index: number): BoundParam {
  const name = `p${index + 1}`
  if (value === null) {
    // NVarChar converts implicitly to every column type we write (not to varbinary; we have no such column).
    return { name, kind: 'Null', type: sql.NVarChar, value: null }
  }
  if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) {
      return value >= INT32_MIN && value <= INT32_MAX ? { name, kind: 'Int', type: sql.Int, value } : { name, kind: 'BigInt', type: sql.BigInt, value }
    }
    return { name, kind: 'Float', type: sql.Float, value }
  }
  if (typeof value === 'string') return { name, kind: 'NVarChar(max)', type: sql.NVarChar(sql.MAX), value }
  if (typeof value === 'boolean') return { name, kind: 'Bit', type: sql.Bit, value }
  if (value instanceof Date) return { name, kind: 'DateTime2', type: sql.DateTime2, value }
  if (Buffer.isBuffer(value)) return { name, kind: 'VarBinary(max)', type: sql.VarBinary(sql.MAX), value }
  throw new BugError(`unsupported SQL parameter ${index + 1}: ${typeof value}`)
}

export function bindParams(params: readonly Param[]): BoundParam[] {
  return params.map(bindParam)
}

/**
 * Puts `sql` and `params` on a request. Without parameters the text is sent as a plain batch
 * (verbatim, not through sp_executesql), which is what migration scripts need.
 */
export function prepareRequest(request: Request, text: string, params: readonly Param[]): { request: Request; sql: string; batch: boolean } {
  if (params.length === 0) return { request, sql: text, batch: true }
  const rewritten = toMssqlPlaceholders(text)
  if (rewritten.count !== params.length) {
    throw new BugError(`SQL has ${rewritten.count} placeholder(s) but ${params.length} parameter(s) were given: ${text.slice(0, 200)}`)
  }
  for (const p of bindParams(params)) request.input(p.name, p.type, p.value)
  return { request, sql: rewritten.sql, batch: false }
}

// ---------------------------------------------------------------- rows

/** tedious returns bigint columns as strings: ids become JS numbers (with a safe-integer check), like the other engines. */
export function decodeRows(recordset: IRecordSet<Row> | undefined): Row[] {
  if (!recordset) return []
  const bigints = Object.values(recordset.columns ?? {})
    .filter((c) => c.type === sql.BigInt)
    .map((c) => c.name)
  // A plain array: the recordset's driver metadata (columns) stays behind the adapter boundary.
  const rows = Array.from(recordset)
  for (const row of rows) {
    for (const name of bigints) {
      const v = row[name]
      if (v !== null && v !== undefined) row[name] = toNumber(v)
    }
  }
  return rows
}

function quoteIdent(name: string): string {
  return name
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.')
}

/**
 * INSERT returning the new id. `OUTPUT ... INTO` a table variable rather than a bare OUTPUT clause:
 * SQL Server refuses a bare OUTPUT on a table with an enabled trigger (error 334), and the legacy
 * tables belong to another team who may add triggers at any time.
 */
export function buildInsertSql(table: string, columns: readonly string[]): string {
  const target = `${quoteIdent(table)}${columns.length === 0 ? '' : ` (${columns.map(quoteIdent).join(', ')})`}`
  const values = columns.length === 0 ? 'DEFAULT VALUES' : `VALUES (${columns.map(() => '?').join(', ')})`
  return `DECLARE @inserted TABLE (id bigint); INSERT INTO ${target} OUTPUT INSERTED.id INTO @inserted ${values}; SELECT id FROM @inserted`
}

// ---------------------------------------------------------------- configuration

export interface MssqlConnectionSettings {
  server: string
  port: number | undefined
  instanceName: string | undefined
  user: string
  password: string
  database: string
  encrypt: boolean
  trustServerCertificate: boolean
}

const TRUE_WORDS = new Set(['true', 'yes', '1', 'on'])
const FALSE_WORDS = new Set(['false', 'no', '0', 'off'])

function parseFlag(key: string, value: string): boolean {
  const v = value.trim().toLowerCase()
  if (TRUE_WORDS.has(v)) return true
  if (FALSE_WORDS.has(v)) return false
  throw new ConfigError([`MSSQL_URL: ${key}=${value} is not a boolean (true/false)`])
}

function decodeUrlPart(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    // Never echo the part: it may be the password.
    throw new ConfigError(['MSSQL_URL: a malformed %-escape (percent-encode special characters in the user and password)'])
  }
}

/** `host\instance` names a SQL Server instance (found through the browser service, so no port). */
function splitInstance(host: string): { server: string; instanceName: string | undefined } {
  const k = host.indexOf('\\')
  return k < 0 ? { server: host, instanceName: undefined } : { server: host.slice(0, k), instanceName: host.slice(k + 1) || undefined }
}

/**
 * Where and how to connect, from MSSQL_URL (`mssql://user:password@host:port/database?encrypt=true`,
 * also `sqlserver://host:port;databaseName=db;user=u;password=p` as JDBC writes it) or the DB_* settings.
 * Query or JDBC properties `encrypt` and `trustServerCertificate` override DB_ENCRYPT/DB_TRUST_SERVER_CERTIFICATE.
 */
export function resolveMssqlConnection(config: SqlServerConfig): MssqlConnectionSettings {
  const base: MssqlConnectionSettings = {
    ...splitInstance(config.host),
    port: config.port,
    user: config.user,
    password: config.password,
    database: config.database,
    encrypt: config.encrypt,
    trustServerCertificate: config.trustServerCertificate,
  }
  if (config.url === undefined) return base.instanceName === undefined ? base : { ...base, port: undefined }

  const m = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/i.exec(config.url.trim())
  if (!m) throw new ConfigError(['MSSQL_URL: expected mssql://user:password@host:port/database'])
  const rest = m[2] ?? ''
  const out: MssqlConnectionSettings = { ...base, port: 1433 }
  const props = new Map<string, string>()

  const semi = rest.indexOf(';')
  let host: string
  let port: string | undefined
  // JDBC has only host[\instance][:port] before the first `;`. Anything else there (`user:pa;ss@host`) is a
  // URL whose password holds a `;`, and must not be taken for a host (and shown in the target).
  if (semi >= 0 && /^[\w.\-\\]+(?::\d+)?$/.test(rest.slice(0, semi))) {
    // JDBC: sqlserver://host[\instance][:port];key=value;...
    const hp = /^(.*?)(?::(\d+))?$/.exec(rest.slice(0, semi))
    host = hp?.[1] ?? ''
    port = hp?.[2]
    for (const pair of rest.slice(semi + 1).split(';')) {
      const eq = pair.indexOf('=')
      if (eq > 0) props.set(pair.slice(0, eq).trim().toLowerCase(), pair.slice(eq + 1))
    }
  } else {
    let u: URL
    try {
      u = new URL(`mssql://${rest.replace(/\\/g, '%5C')}`)
    } catch {
      throw new ConfigError(['MSSQL_URL: not a valid URL (expected mssql://user:password@host:port/database)'])
    }
    if (u.username !== '') out.user = decodeUrlPart(u.username)
    if (u.password !== '') out.password = decodeUrlPart(u.password)
    const db = decodeUrlPart(u.pathname.replace(/^\//, ''))
    if (db !== '') out.database = db
    // IPv6 literals come bracketed; tedious wants the bare address.
    host = decodeUrlPart(u.hostname).replace(/^\[(.*)\]$/, '$1')
    port = u.port === '' ? undefined : u.port
    for (const [k, v] of u.searchParams) props.set(k.toLowerCase(), v)
  }

  if (host === '') throw new ConfigError(['MSSQL_URL: no host'])
  Object.assign(out, splitInstance(host))
  if (port !== undefined) out.port = Number(port)

  for (const [key, value] of props) {
    if (key === 'databasename' || key === 'database') out.database = value
    else if (key === 'user' || key === 'username') out.user = value
    else if (key === 'password') out.password = value
    else if (key === 'encrypt') out.encrypt = parseFlag(key, value)
    else if (key === 'trustservercertificate') out.trustServerCertificate = parseFlag(key, value)
    else if (key === 'instancename') out.instanceName = value
  }
  if (out.instanceName !== undefined && port === undefined) out.port = undefined
  return out
}

/** `host:port/database` (or `host\instance/database`), never the user or password. */
export function describeMssqlTarget(config: SqlServerConfig): string {
  try {
    const c = resolveMssqlConnection(config)
    const server = c.server.includes(':') ? `[${c.server}]` : c.server
    const where = c.instanceName === undefined ? `${server}:${c.port ?? 1433}` : `${server}\\${c.instanceName}`
    return `${where}/${c.database}`
  } catch {
    return 'sqlserver'
  }
}

export function buildMssqlConfig(config: SqlServerConfig, options: MssqlPoolOptions): MssqlConfig {
  const c = resolveMssqlConnection(config)
  return {
    server: c.server,
    ...(c.port === undefined ? {} : { port: c.port }),
    user: c.user,
    password: c.password,
    database: c.database,
    connectionTimeout: options.connectTimeoutMs,
    requestTimeout: options.requestTimeoutMs,
    pool: { min: 0, max: options.max, idleTimeoutMillis: 30_000 },
    options: {
      encrypt: c.encrypt,
      trustServerCertificate: c.trustServerCertificate,
      appName: options.applicationName ?? 'ingest',
      // datetime2 has no zone: read and write it as UTC (DESIGN §2, times are UTC).
      useUTC: true,
      // Filtered indexes (0002) need ARITHABORT ON in every writing session.
      enableArithAbort: true,
      ...(c.instanceName === undefined ? {} : { instanceName: c.instanceName }),
    },
  }
}

// ---------------------------------------------------------------- errors

const TRANSIENT_CODES = new Set(['ESOCKET', 'ETIMEOUT', 'ECONNCLOSED', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

/**
 * Server error numbers that mean "try again": -2 client timeout, 1205 deadlock victim, 233/10053/10054/10060/64
 * transport failures, 40613/40197/40501/49918-49920 Azure SQL failover and throttling.
 */
export const TRANSIENT_ERROR_NUMBERS: ReadonlySet<number> = new Set([-2, 64, 233, 1205, 10053, 10054, 10060, 40197, 40501, 40613, 49918, 49919, 49920])

function errorNumber(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as { number?: unknown; info?: { number?: unknown } }
  if (typeof e.number === 'number') return e.number
  if (typeof e.info?.number === 'number') return e.info.number
  return undefined
}

/** A driver field that may hold a list of errors, as unknowns (Array.isArray alone would give any[]). */
function listOf(x: unknown): unknown[] {
  return Array.isArray(x) ? (x as unknown[]) : []
}

/**
 * Whether an mssql/tedious error is an outage or a conflict that a retry may clear. Looks through the
 * wrappers mssql and tedious add (originalError, cause, precedingErrors, AggregateError.errors).
 */
export function isMssqlTransient(err: unknown, depth = 0): boolean {
  if (typeof err !== 'object' || err === null || depth > 4) return false
  const n = errorNumber(err)
  if (n !== undefined && TRANSIENT_ERROR_NUMBERS.has(n)) return true
  const e = err as { code?: unknown; originalError?: unknown; cause?: unknown; precedingErrors?: unknown; errors?: unknown }
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true
  const nested: unknown[] = [e.originalError, e.cause, ...listOf(e.precedingErrors), ...listOf(e.errors)]
  return nested.some((x) => x !== err && isMssqlTransient(x, depth + 1))
}

/** Whether SQL Server itself answered with this error (an error number, not an outage), so the transaction it ended is known. */
export function isMssqlServerAnswer(err: unknown): boolean {
  return serverErrorNumber(err) !== undefined && !isMssqlTransient(err)
}

/** The SQL Server error number of an error or of the error it wraps (mssql's TransactionError keeps it in originalError). */
function serverErrorNumber(err: unknown, depth = 0): number | undefined {
  if (typeof err !== 'object' || err === null || depth > 4) return undefined
  const n = errorNumber(err)
  if (n !== undefined) return n
  const e = err as { originalError?: unknown; cause?: unknown }
  return serverErrorNumber(e.originalError, depth + 1) ?? serverErrorNumber(e.cause, depth + 1)
}

/**
 * Driver errors at the adapter boundary: outages become UnavailableError (exit 1, HTTP 503), a deadlock
 * TransientStoreError, and any other error the server answered with its number a PermanentStoreError
 * classed by that number. Errors that are not the driver's (ours, bugs) pass through unchanged.
 */
export function wrapMssqlError(err: unknown, target: string): unknown {
  if (err instanceof AppError) return err
  const number = (err as { number?: unknown; originalError?: { info?: { number?: unknown } } } | null)?.number ?? (err as { originalError?: { info?: { number?: unknown } } } | null)?.originalError?.info?.number
  // A deadlock victim (1205) is worth retrying but is not an outage: it must not open the breaker.
  if (number === 1205) return new TransientStoreError(`SQL Server deadlock: ${err instanceof Error ? err.message : String(err)}`, { cause: err, code: 'SQLSERVER_DEADLOCK' })
  if (isMssqlTransient(err)) {
    return new UnavailableError(`SQL Server at ${target} unavailable: ${err instanceof Error ? err.message : String(err)}`, { cause: err, code: 'SQLSERVER_UNAVAILABLE' })
  }
  const server = serverErrorNumber(err)
  if (server !== undefined) return new PermanentStoreError(mssqlErrorClass(server), String(server), err instanceof Error ? err.message : String(err), { cause: err })
  return err
}

/** The permanent class of a SQL Server error number: 2627/2601 unique, 547/515 constraint, conversion and overflow errors data. */
export function mssqlErrorClass(number: number): PermanentErrorClass {
  if (number === 2627 || number === 2601) return 'unique'
  if (number === 547 || number === 515) return 'constraint'
  if ([220, 232, 241, 242, 245, 8114, 8115, 8152, 2628].includes(number)) return 'data'
  return 'store_error'
}

// ---------------------------------------------------------------- batches

/** Splits a T-SQL script on lines holding only `GO` (any case), as sqlcmd does; drops empty batches. */
export function splitBatches(script: string): string[] {
  const batches: string[] = []
  let current: string[] = []
  const flush = (): void => {
    const text = current.join('\n').trim()
    if (stripComments(text).trim() !== '') batches.push(text)
    current = []
  }
  for (const line of script.split(/\r?\n/)) {
    if (/^\s*go\s*$/i.test(line)) flush()
    else current.push(line)
  }
  flush()
  return batches
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/--[^\n]*/g, '')
}

// ---------------------------------------------------------------- the pool

/** Runs one request at a time: a mssql Transaction has one connection and refuses concurrent requests (EREQINPROG). */
class Serial {
  private tail: Promise<unknown> = Promise.resolve()
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn)
    this.tail = next.catch(() => undefined)
    return next
  }
  /** Resolves when every queued request has finished (rollback refuses to run while one is in progress). */
  idle(): Promise<void> {
    return this.tail.then(() => undefined)
  }
}

export class MssqlPool implements SqlExecutor {
  readonly engine = 'sqlserver' as const
  readonly dialect = mssqlDialect
  readonly pool: ConnectionPool
  readonly target: string
  private connecting: Promise<ConnectionPool> | undefined

  constructor(config: SqlServerConfig, options: MssqlPoolOptions) {
    this.target = describeMssqlTarget(config)
    this.pool = new sql.ConnectionPool(buildMssqlConfig(config, options))
    // An idle connection's error (server restart) must not crash the process; the pool replaces it.
    this.pool.on('error', () => undefined)
  }

  /** Connects once (lazily); a failed attempt is forgotten so the next call tries again. */
  async connect(): Promise<ConnectionPool> {
    this.connecting ??= this.pool.connect().catch((err: unknown) => {
      this.connecting = undefined
      throw new UnavailableError(`cannot connect to SQL Server at ${this.target}: ${err instanceof Error ? err.message : String(err)}`, { cause: err, code: 'SQLSERVER_UNAVAILABLE' })
    })
    return this.connecting
  }

  private async execute(request: () => Promise<Request>, text: string, params: readonly Param[]): Promise<IResult<Row>> {
    try {
      const prepared = prepareRequest(await request(), text, params)
      return prepared.batch ? await prepared.request.batch<Row>(prepared.sql) : await prepared.request.query<Row>(prepared.sql)
    } catch (err) {
      throw wrapMssqlError(err, this.target)
    }
  }

  private executor(request: () => Promise<Request>, serial: Serial | undefined): SqlExecutor {
    const execute = (text: string, params: readonly Param[]): Promise<IResult<Row>> =>
      serial ? serial.run(() => this.execute(request, text, params)) : this.execute(request, text, params)
    const exec: SqlExecutor = {
      engine: 'sqlserver',
      dialect: mssqlDialect,
      all: async <R extends Row>(text: string, params: readonly Param[] = []) => decodeRows((await execute(text, params)).recordset) as R[],
      run: async (text, params = []) => (await execute(text, params)).rowsAffected.reduce((a, b) => a + b, 0),
      insert: async (table, values) => {
        const cols = Object.keys(values)
        const rows = decodeRows((await execute(buildInsertSql(table, cols), cols.map((c) => values[c] ?? null))).recordset)
        return toNumber(rows[0]?.['id'])
      },
      transaction: (fn) => (serial ? fn(exec) : this.transaction(fn)),
    }
    return exec
  }

  private poolExecutor(): SqlExecutor {
    return this.executor(async () => new sql.Request(await this.connect()), undefined)
  }

  all<R extends Row = Row>(text: string, params?: readonly Param[]): Promise<R[]> {
    return this.poolExecutor().all<R>(text, params)
  }

  run(text: string, params?: readonly Param[]): Promise<number> {
    return this.poolExecutor().run(text, params)
  }

  insert(table: string, values: Readonly<Record<string, Param>>): Promise<number> {
    return this.poolExecutor().insert(table, values)
  }

  /** One transaction on one pooled connection (READ COMMITTED); nested calls join it. */
  async transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const tx: Transaction = new sql.Transaction(await this.connect())
    try {
      await tx.begin()
    } catch (err) {
      throw wrapMssqlError(err, this.target)
    }
    const serial = new Serial()
    let committing = false
    try {
      const out = await fn(this.executor(() => Promise.resolve(new sql.Request(tx)), serial))
      await serial.idle()
      committing = true
      await tx.commit()
      return out
    } catch (err) {
      await serial.idle()
      try {
        await tx.rollback()
      } catch {
        // The server already rolled it back (deadlock victim, severe error: mssql reports EABORT) or the connection is gone.
      }
      // A COMMIT that failed without the server's answer (connection lost, timeout) may have committed:
      // it must not be retried as if nothing was written (readings without a dedup key would be stored twice).
      if (committing && !isMssqlServerAnswer(err))
        throw new CommitUnknownError(`SQL Server commit outcome unknown: ${err instanceof Error ? err.message : String(err)}`, { cause: err })
      throw wrapMssqlError(err, this.target)
    }
  }

  async close(): Promise<void> {
    await this.pool.close()
  }
}
