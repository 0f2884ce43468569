import { createServer } from 'node:net'

import sql from 'mssql'
import type { IRecordSet } from 'mssql'
import { describe, expect, it, vi } from 'vitest'

import {
  bindParams,
  buildInsertSql,
  buildMssqlConfig,
  decodeRows,
  describeMssqlTarget,
  isMssqlTransient,
  MssqlPool,
  mssqlDialect,
  prepareRequest,
  resolveMssqlConnection,
  splitBatches,
  toMssqlPlaceholders,
  wrapMssqlError,
} from '../../../../src/lib/adapters/storage/sqlserver/connection.js'
import type { Param, Row } from '../../../../src/lib/adapters/storage/sql/executor.js'
import type { SqlServerConfig } from '../../../../src/lib/config/types.js'
import { AppError, BugError, isUniqueViolation, UnavailableError } from '../../../../src/lib/errors/index.js'

const PASSWORD = 'Pa55:w@rd/;?#%'

function cfg(overrides: Partial<SqlServerConfig> = {}): SqlServerConfig {
  return {
    url: undefined,
    host: 'db.example.internal',
    port: 1434,
    user: 'ingest_user',
    password: PASSWORD,
    database: 'iot_monitoring_system',
    encrypt: true,
    trustServerCertificate: false,
    useProcedure: false,
    ...overrides,
  }
}

function recordset(rows: Row[], columns: Record<string, typeof sql.Int | typeof sql.NVarChar>): IRecordSet<Row> {
  const rs = rows as IRecordSet<Row>
  rs.columns = Object.fromEntries(Object.entries(columns).map(([name, type], index) => [name, { index, name, length: 8, type, nullable: true, caseSensitive: false, identity: false, readOnly: false }]))
  return rs
}

describe('mssqlDialect', () => {
  it('speaks T-SQL', () => {
    expect(mssqlDialect.engine).toBe('sqlserver')
    expect(mssqlDialect.now).toBe('SYSUTCDATETIME()')
    expect(mssqlDialect.limit(25)).toBe('OFFSET 0 ROWS FETCH NEXT 25 ROWS ONLY')
    expect(mssqlDialect.limit(2.9)).toBe('OFFSET 0 ROWS FETCH NEXT 2 ROWS ONLY')
    expect(mssqlDialect.bool(true)).toBe('1')
    expect(mssqlDialect.bool(false)).toBe('0')
  })
})

describe('toMssqlPlaceholders', () => {
  it('numbers the placeholders in order', () => {
    expect(toMssqlPlaceholders('SELECT * FROM "sensors" WHERE "id" = ? AND "device_id" IN (?, ?)')).toEqual({
      sql: 'SELECT * FROM "sensors" WHERE "id" = @p1 AND "device_id" IN (@p2, @p3)',
      count: 3,
    })
  })

  it.each([
    ["a string literal, with an escaped quote", "SELECT 'what?', 'it''s ?' WHERE a = ?", "SELECT 'what?', 'it''s ?' WHERE a = @p1"],
    ['a quoted identifier', 'SELECT "odd?col" FROM t WHERE a = ?', 'SELECT "odd?col" FROM t WHERE a = @p1'],
    ['a bracketed identifier', 'SELECT [odd?]]col] FROM t WHERE a = ?', 'SELECT [odd?]]col] FROM t WHERE a = @p1'],
    ['a line comment', 'SELECT 1 -- why?\nWHERE a = ?', 'SELECT 1 -- why?\nWHERE a = @p1'],
    ['a block comment', 'SELECT /* a? b? */ 1 WHERE a = ?', 'SELECT /* a? b? */ 1 WHERE a = @p1'],
  ])('leaves a ? inside %s alone', (_what, input, output) => {
    expect(toMssqlPlaceholders(input)).toEqual({ sql: output, count: 1 })
  })
})

describe('bindParams: the SQL Server type of each parameter', () => {
  const when = new Date('2025-06-01T12:00:00.123Z')
  const buf = Buffer.from([1, 2, 3])
  it.each<[string, Param, string]>([
    ['zero', 0, 'Int'],
    ['a small integer', 42, 'Int'],
    ['int32 max', 2_147_483_647, 'Int'],
    ['int32 min', -2_147_483_648, 'Int'],
    ['just above int32', 2_147_483_648, 'BigInt'],
    ['just below int32', -2_147_483_649, 'BigInt'],
    ['the largest safe integer', Number.MAX_SAFE_INTEGER, 'BigInt'],
    ['an integer beyond the safe range', 2 ** 53, 'Float'],
    ['a fraction', 23.5, 'Float'],
    ['a value beyond decimal(15,5)', 1e12, 'BigInt'],
    ['a huge float', 1e300, 'Float'],
    ['a string', 'héllo', 'NVarChar(max)'],
    ['the empty string', '', 'NVarChar(max)'],
    ['true', true, 'Bit'],
    ['false', false, 'Bit'],
    ['a Date', when, 'DateTime2'],
    ['a Buffer', buf, 'VarBinary(max)'],
    ['null', null, 'Null'],
  ])('%s -> %s', (_what, value, kind) => {
    const [p] = bindParams([value])
    expect(p?.kind).toBe(kind)
    expect(p?.name).toBe('p1')
    expect(p?.value).toBe(value)
  })

  it('hands mssql the matching type objects, named p1..pn', () => {
    const bound = bindParams([1, 2 ** 40, 0.5, 's', true, new Date(0), null])
    expect(bound.map((b) => b.name)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7'])
    expect(bound[0]?.type).toBe(sql.Int)
    expect(bound[1]?.type).toBe(sql.BigInt)
    expect(bound[2]?.type).toBe(sql.Float)
    expect(bound[3]?.type).toEqual({ type: sql.NVarChar, length: sql.MAX })
    expect(bound[4]?.type).toBe(sql.Bit)
    expect(bound[5]?.type).toBe(sql.DateTime2)
    expect(bound[6]?.type).toBe(sql.NVarChar)
  })
})

describe('prepareRequest on a real mssql Request (no pool needed)', () => {
  it('rewrites the placeholders and declares each input with its type and value', () => {
    const when = new Date('2025-01-02T03:04:05.678Z')
    const { request, sql: text, batch } = prepareRequest(new sql.Request(), 'INSERT INTO t (a, b, c, d, e, f) VALUES (?, ?, ?, ?, ?, ?)', [7, 9_007_199_254_740_991, 21.25, 'x', false, when])
    expect(batch).toBe(false)
    expect(text).toBe('INSERT INTO t (a, b, c, d, e, f) VALUES (@p1, @p2, @p3, @p4, @p5, @p6)')
    const p = request.parameters
    expect(Object.keys(p)).toEqual(['p1', 'p2', 'p3', 'p4', 'p5', 'p6'])
    expect(p['p1']).toMatchObject({ type: sql.Int, value: 7, io: 1 })
    expect(p['p2']).toMatchObject({ type: sql.BigInt, value: 9_007_199_254_740_991 })
    expect(p['p3']).toMatchObject({ type: sql.Float, value: 21.25 })
    expect(p['p4']).toMatchObject({ type: sql.NVarChar, length: sql.MAX, value: 'x' })
    expect(p['p5']).toMatchObject({ type: sql.Bit, value: false })
    expect(p['p6']).toMatchObject({ type: sql.DateTime2, value: when })
  })

  it('sends SQL without parameters verbatim as a batch (migration scripts)', () => {
    const script = "IF 1 = 1 PRINT 'what?'"
    const out = prepareRequest(new sql.Request(), script, [])
    expect(out).toMatchObject({ sql: script, batch: true })
    expect(out.request.parameters).toEqual({})
  })

  it('refuses a placeholder/parameter count mismatch', () => {
    expect(() => prepareRequest(new sql.Request(), 'SELECT ? , ?', [1])).toThrow(BugError)
    expect(() => prepareRequest(new sql.Request(), "SELECT '?'", [1])).toThrow(/0 placeholder/)
  })
})

describe('decodeRows: 64-bit ids', () => {
  it('turns bigint columns (strings from tedious) into numbers and leaves other columns alone', () => {
    const rows = decodeRows(recordset([{ id: '42', sensor_id: null, name: '7' }], { id: sql.BigInt, sensor_id: sql.BigInt, name: sql.NVarChar }))
    expect(rows).toEqual([{ id: 42, sensor_id: null, name: '7' }])
  })

  it('refuses an id beyond the safe integer range instead of rounding it', () => {
    expect(() => decodeRows(recordset([{ id: '9007199254740993' }], { id: sql.BigInt }))).toThrow(BugError)
    expect(decodeRows(recordset([{ id: '9007199254740991' }], { id: sql.BigInt }))[0]?.['id']).toBe(9_007_199_254_740_991)
  })

  it('returns no rows for a statement without a result set', () => {
    expect(decodeRows(undefined)).toEqual([])
  })
})

describe('buildInsertSql', () => {
  it('returns the id through OUTPUT ... INTO (allowed on tables with triggers)', () => {
    const text = buildInsertSql('devices', ['device_uuid', 'name'])
    expect(text).toBe('DECLARE @inserted TABLE (id bigint); INSERT INTO "devices" ("device_uuid", "name") OUTPUT INSERTED.id INTO @inserted VALUES (?, ?); SELECT id FROM @inserted')
    expect(toMssqlPlaceholders(text).count).toBe(2)
  })

  it('handles a schema-qualified table and no columns', () => {
    expect(buildInsertSql('dbo.job_runs', [])).toBe('DECLARE @inserted TABLE (id bigint); INSERT INTO "dbo"."job_runs" OUTPUT INSERTED.id INTO @inserted DEFAULT VALUES; SELECT id FROM @inserted')
  })
})

describe('splitBatches', () => {
  it('splits on lines holding only GO, in any case, with CRLF or LF', () => {
    const script = 'CREATE TABLE a (x int);\r\nGO\r\nALTER TABLE a ADD y int NULL;\n  go  \nSELECT 1\nGo\n'
    expect(splitBatches(script)).toEqual(['CREATE TABLE a (x int);', 'ALTER TABLE a ADD y int NULL;', 'SELECT 1'])
  })

  it('does not split on GO inside a line or on other words', () => {
    const script = "SELECT 'GO' AS go_col\nGOTO done\n-- GO team\nGO\nSELECT 2"
    expect(splitBatches(script)).toEqual(["SELECT 'GO' AS go_col\nGOTO done\n-- GO team", 'SELECT 2'])
  })

  it('drops empty and comment-only batches', () => {
    expect(splitBatches('-- header\n\nGO\nGO\n/* nothing */\nGO\nSELECT 1\nGO\n')).toEqual(['SELECT 1'])
    expect(splitBatches('')).toEqual([])
  })
})

describe('connection settings', () => {
  it('builds from the DB_* settings', () => {
    expect(resolveMssqlConnection(cfg())).toEqual({
      server: 'db.example.internal',
      port: 1434,
      instanceName: undefined,
      user: 'ingest_user',
      password: PASSWORD,
      database: 'iot_monitoring_system',
      encrypt: true,
      trustServerCertificate: false,
    })
  })

  it('parses an mssql:// URL with an encoded password, and lets its query override encrypt/trust', () => {
    const url = `mssql://sa:${encodeURIComponent(PASSWORD)}@sql1:1500/iot?encrypt=false&trustServerCertificate=true`
    expect(resolveMssqlConnection(cfg({ url }))).toMatchObject({ server: 'sql1', port: 1500, user: 'sa', password: PASSWORD, database: 'iot', encrypt: false, trustServerCertificate: true })
  })

  it('defaults a URL without a port to 1433 and keeps DB_NAME when the URL has no database', () => {
    expect(resolveMssqlConnection(cfg({ url: 'sqlserver://u:p@sql2' }))).toMatchObject({ server: 'sql2', port: 1433, database: 'iot_monitoring_system' })
  })

  it('parses the JDBC form', () => {
    const url = 'sqlserver://sql3:1401;databaseName=iot;user=sa;password=secret;encrypt=true;trustServerCertificate=true'
    expect(resolveMssqlConnection(cfg({ url }))).toMatchObject({ server: 'sql3', port: 1401, user: 'sa', password: 'secret', database: 'iot', encrypt: true, trustServerCertificate: true })
  })

  it('uses a named instance instead of a port', () => {
    expect(resolveMssqlConnection(cfg({ host: 'sql4\\LEGACY' }))).toMatchObject({ server: 'sql4', instanceName: 'LEGACY', port: undefined })
    expect(resolveMssqlConnection(cfg({ url: 'mssql://u:p@sql5/iot?instanceName=SQLEXPRESS' }))).toMatchObject({ server: 'sql5', instanceName: 'SQLEXPRESS', port: undefined })
    expect(resolveMssqlConnection(cfg({ url: 'mssql://u:p@sql6\\LEGACY/iot' }))).toMatchObject({ server: 'sql6', instanceName: 'LEGACY', port: undefined, database: 'iot' })
    expect(resolveMssqlConnection(cfg({ url: 'sqlserver://sql7\\LEGACY;databaseName=x' }))).toMatchObject({ server: 'sql7', instanceName: 'LEGACY', port: undefined, database: 'x' })
  })

  it('hands tedious a bare IPv6 address', () => {
    expect(resolveMssqlConnection(cfg({ url: 'mssql://u:p@[::1]:1500/iot' }))).toMatchObject({ server: '::1', port: 1500 })
    expect(describeMssqlTarget(cfg({ url: 'mssql://u:p@[::1]:1500/iot' }))).toBe('[::1]:1500/iot')
  })

  it('refuses a URL flag that is not a boolean', () => {
    expect(() => resolveMssqlConnection(cfg({ url: 'mssql://u:p@h/db?encrypt=maybe' }))).toThrow(/encrypt=maybe/)
  })

  it('hands mssql the pool size, timeouts, TLS settings and UTC dates', () => {
    const c = buildMssqlConfig(cfg({ trustServerCertificate: true }), { max: 7, connectTimeoutMs: 1500, requestTimeoutMs: 9000 })
    expect(c).toMatchObject({
      server: 'db.example.internal',
      port: 1434,
      database: 'iot_monitoring_system',
      connectionTimeout: 1500,
      requestTimeout: 9000,
      pool: { max: 7, min: 0 },
      options: { encrypt: true, trustServerCertificate: true, useUTC: true, enableArithAbort: true, appName: 'ingest' },
    })
  })
})

describe('describeMssqlTarget', () => {
  // null: no exact expectation, only that no credential shows.
  it.each<[string, Partial<SqlServerConfig>, string | null]>([
    ['DB_* settings', {}, 'db.example.internal:1434/iot_monitoring_system'],
    ['an mssql:// URL', { url: `mssql://sa:${encodeURIComponent(PASSWORD)}@sql1:1500/iot` }, 'sql1:1500/iot'],
    ['a URL without a port', { url: `mssql://sa:${encodeURIComponent(PASSWORD)}@sql1/iot` }, 'sql1:1433/iot'],
    ['a JDBC URL', { url: `sqlserver://sql3:1401;databaseName=iot;user=sa;password=${PASSWORD.replace(/;/g, '')}` }, 'sql3:1401/iot'],
    ['a named instance', { host: 'sql4\\LEGACY' }, 'sql4\\LEGACY/iot_monitoring_system'],
    ['a URL it cannot parse', { url: 'mssql://sa:Pa55word@[bad/iot' }, 'sqlserver'],
    ['a bad %-escape in the password', { url: 'mssql://sa:Pa55%zz@sql1/iot' }, 'sqlserver'],
    ['a password left unencoded', { url: `mssql://sa:${PASSWORD}@sql1/iot` }, null],
    ['a JDBC-looking URL with credentials before the ;', { url: 'sqlserver://sa:Pa55;x@sql1/iot' }, null],
  ])('%s -> %s, without credentials', (_what, overrides, expected) => {
    const text = describeMssqlTarget(cfg(overrides))
    if (expected !== null) expect(text).toBe(expected)
    expect(text).not.toContain('Pa55')
    expect(text).not.toContain('ingest_user')
    expect(text).not.toContain('sa:')
  })
})

describe('isMssqlTransient', () => {
  const withNumber = (number: number): Error => Object.assign(new Error(`error ${number}`), { code: 'EREQUEST', number })
  it.each<[string, unknown, boolean]>([
    ['socket error', Object.assign(new Error('x'), { code: 'ESOCKET' }), true],
    ['connection/request timeout', Object.assign(new Error('x'), { code: 'ETIMEOUT' }), true],
    ['connection closed', Object.assign(new Error('x'), { code: 'ECONNCLOSED' }), true],
    ['timeout (-2)', withNumber(-2), true],
    ['deadlock victim (1205)', withNumber(1205), true],
    ...[40613, 40197, 40501, 49918, 49919, 49920, 233, 10053, 10054, 10060, 64].map((n): [string, unknown, boolean] => [`error ${n}`, withNumber(n), true]),
    ['tedious info.number', Object.assign(new Error('x'), { info: { number: 40613 } }), true],
    ['a transient cause behind a wrapper', Object.assign(new Error('wrapped'), { code: 'EREQUEST', originalError: Object.assign(new Error('inner'), { code: 'ESOCKET' }) }), true],
    ['a transient error among precedingErrors', Object.assign(new Error('x'), { precedingErrors: [withNumber(1205)] }), true],
    ['an AggregateError of refused connections', new AggregateError([Object.assign(new Error('r'), { code: 'ECONNREFUSED' })]), true],
    ['unique violation (2627)', withNumber(2627), false],
    ['duplicate key in unique index (2601)', withNumber(2601), false],
    ['foreign key violation (547)', withNumber(547), false],
    ['arithmetic overflow (8115)', withNumber(8115), false],
    ['RAISERROR (50000)', withNumber(50000), false],
    ['login failed', Object.assign(new Error('Login failed'), { code: 'ELOGIN' }), false],
    ['a plain error', new Error('boom'), false],
    ['null', null, false],
    ['a string', 'ESOCKET', false],
  ])('%s -> %s', (_what, err, expected) => {
    expect(isMssqlTransient(err)).toBe(expected)
  })

  it('does not loop on a cyclic cause chain', () => {
    const a = new Error('a') as Error & { originalError?: unknown }
    const b = Object.assign(new Error('b'), { originalError: a })
    a.originalError = b
    expect(isMssqlTransient(a)).toBe(false)
  })
})

describe('wrapMssqlError', () => {
  it('turns outages into UnavailableError SQLSERVER_UNAVAILABLE naming the target', () => {
    const err = wrapMssqlError(Object.assign(new Error('Connection lost - read ECONNRESET'), { code: 'ESOCKET' }), 'sql1:1433/iot')
    expect(err).toBeInstanceOf(UnavailableError)
    expect(err).toMatchObject({ code: 'SQLSERVER_UNAVAILABLE', httpStatus: 503 })
    expect((err as Error).message).toContain('sql1:1433/iot')
  })

  it('files the server\'s other answers as permanent by their number, and leaves AppErrors and non-driver errors as they are', () => {
    const unique = Object.assign(new Error('Violation of UNIQUE KEY'), { number: 2627 })
    expect(wrapMssqlError(unique, 't')).toMatchObject({ errorClass: 'unique', driverCode: '2627', message: '2627: Violation of UNIQUE KEY', cause: unique })
    expect(isUniqueViolation(wrapMssqlError(unique, 't'))).toBe(true)
    expect(wrapMssqlError(Object.assign(new Error('FK'), { number: 547 }), 't')).toMatchObject({ errorClass: 'constraint' })
    expect(wrapMssqlError(Object.assign(new Error('overflow'), { number: 8115 }), 't')).toMatchObject({ errorClass: 'data' })
    expect(wrapMssqlError(Object.assign(new Error('raised'), { number: 50000 }), 't')).toMatchObject({ errorClass: 'store_error', driverCode: '50000' })
    const app = new AppError('X', 'x')
    expect(wrapMssqlError(app, 't')).toBe(app)
    const plain = new Error('boom')
    expect(wrapMssqlError(plain, 't')).toBe(plain)
  })
})

describe('MssqlPool without a server', () => {
  it('reports a refused connection as SQLSERVER_UNAVAILABLE without the password, and connects again on the next call', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const address = s.address()
        s.close(() => resolve(typeof address === 'object' && address ? address.port : 1))
      })
    })
    const pool = new MssqlPool(cfg({ host: '127.0.0.1', port, encrypt: false }), { max: 1, connectTimeoutMs: 2000, requestTimeoutMs: 2000 })
    expect(pool.target).toBe(`127.0.0.1:${port}/iot_monitoring_system`)
    try {
      const first = await pool.all('SELECT 1').catch((e: unknown) => e)
      expect(first).toBeInstanceOf(UnavailableError)
      expect(first).toMatchObject({ code: 'SQLSERVER_UNAVAILABLE' })
      expect((first as Error).message).not.toContain(PASSWORD)
      await expect(pool.transaction(() => Promise.resolve(1))).rejects.toMatchObject({ code: 'SQLSERVER_UNAVAILABLE' })
    } finally {
      await pool.close().catch(() => undefined)
    }
  })
})

describe('MssqlPool transactions: a COMMIT whose outcome is unknown', () => {
  // No server here: the pool's connection and the driver's Transaction are stubbed; only our handling runs.
  async function commitFailing(err: unknown): Promise<unknown> {
    const pool = new MssqlPool(cfg(), { max: 1, connectTimeoutMs: 1000, requestTimeoutMs: 1000 })
    const spies = [
      vi.spyOn(pool, 'connect').mockResolvedValue({} as never),
      vi.spyOn(sql.Transaction.prototype, 'begin').mockResolvedValue(undefined as never),
      vi.spyOn(sql.Transaction.prototype, 'commit').mockRejectedValue(err),
      vi.spyOn(sql.Transaction.prototype, 'rollback').mockRejectedValue(new Error('no transaction')),
    ]
    try {
      return await pool.transaction(() => Promise.resolve('done')).catch((e: unknown) => e)
    } finally {
      for (const s of spies) s.mockRestore()
    }
  }

  // The shapes mssql raises from Transaction.commit(): a TransactionError wrapping the driver's error.
  const txError = (inner: Error, code?: string): Error => new (sql.TransactionError as unknown as new (e: Error, code?: string) => Error)(inner, code)

  it('a lost connection or a timeout during COMMIT is COMMIT_UNKNOWN (never retried as if nothing was written)', async () => {
    expect(await commitFailing(txError(new Error('Connection lost - read ECONNRESET'), 'ECONNCLOSED'))).toMatchObject({ code: 'COMMIT_UNKNOWN' })
    expect(await commitFailing(txError(new Error('Timeout: Request failed to complete in 1000ms'), 'ETIMEOUT'))).toMatchObject({ code: 'COMMIT_UNKNOWN' })
  })

  it("the server's own answer to COMMIT is a known outcome: the driver's error as it was", async () => {
    const answer = txError(Object.assign(new Error('The COMMIT TRANSACTION request has no corresponding BEGIN TRANSACTION.'), { number: 3902 }))
    expect((answer as { originalError?: { number?: number } }).originalError?.number).toBe(3902)
    expect(await commitFailing(answer)).toMatchObject({ errorClass: 'store_error', driverCode: '3902', cause: answer })
  })
})
