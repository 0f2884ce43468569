import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { epochMicros } from '../../src/lib/domain/time.js'
import { COPY_COLUMNS, encodeReadingsBinary } from '../../src/lib/adapters/storage/postgres/copy-binary.js'
import { copyInMessages, PipelinedCopyIn } from '../../src/lib/adapters/storage/postgres/copy-in.js'
import { createPostgresIngestStore } from '../../src/lib/adapters/storage/postgres/ingest-store.js'
import type { ReadingRow } from '../../src/lib/ports/ingest-store.js'
import { bigintArrayLiteral, dollarQuoted, isServerAnswer, type PgBatchTx, PgPool } from '../../src/lib/adapters/storage/postgres/pool.js'
import type { SqlExecutor } from '../../src/lib/adapters/storage/sql/executor.js'
import { createTestDatabase, postgresAvailable } from '../helpers/services.js'

// The ingest hot path's two protocol shortcuts, on a real server: COPY data sent behind its query
// without waiting for CopyInResponse, and transactions whose BEGIN/COMMIT ride on statement batches.

const pgUp = await postgresAvailable()

describe('SQL literals of the simple-query batches', () => {
  it('the COPY messages are framed as the protocol says', () => {
    const b = copyInMessages('COPY t FROM STDIN', 'ü\n')
    expect(b.subarray(0, 1).toString()).toBe('Q')
    expect(b.readUInt32BE(1)).toBe(4 + 17 + 1)
    expect(b[5 + 17]).toBe(0)
    expect(b.subarray(23, 24).toString()).toBe('d')
    expect(b.readUInt32BE(24)).toBe(4 + 3)
    expect(b.subarray(28, 31).toString('utf8')).toBe('ü\n')
    expect(b.subarray(31).equals(Buffer.from([0x63, 0, 0, 0, 4]))).toBe(true)
    expect(copyInMessages('X', '').equals(Buffer.from([0x51, 0, 0, 0, 6, 0x58, 0, 0x63, 0, 0, 0, 4]))).toBe(true)
  })

  it('bigint arrays only from safe integers', () => {
    expect(bigintArrayLiteral([3, 1, 2])).toBe(`'{3,1,2}'::bigint[]`)
    expect(bigintArrayLiteral([])).toBe(`'{}'::bigint[]`)
    expect(() => bigintArrayLiteral([1.5])).toThrow(TypeError)
    expect(() => bigintArrayLiteral([Number.NaN])).toThrow(TypeError)
    expect(() => bigintArrayLiteral([2 ** 53])).toThrow(TypeError)
  })

  it('dollar quoting picks a tag that does not occur in the text', () => {
    expect(dollarQuoted('{"a":1}')).toBe('$q${"a":1}$q$')
    expect(dollarQuoted('x$q$y')).toBe('$qq$x$q$y$qq$')
    expect(dollarQuoted('$q$ and $qq$')).toBe('$qqq$$q$ and $qq$$qqq$')
    // A text ending in `$q` would let the closing tag start inside it.
    expect(dollarQuoted('abc$q')).toBe('$qq$abc$q$qq$')
  })

  it('only a server SQLSTATE outside the connection classes is a certain answer', () => {
    const server = (code: string): pg.DatabaseError => Object.assign(new pg.DatabaseError('x', 1, 'error'), { code })
    expect(isServerAnswer(server('23505'))).toBe(true)
    expect(isServerAnswer(server('40001'))).toBe(true)
    expect(isServerAnswer(server('57P01'))).toBe(false)
    expect(isServerAnswer(server('08006'))).toBe(false)
    expect(isServerAnswer(Object.assign(new Error('Connection terminated'), { code: 'ECONNRESET' }))).toBe(false)
    expect(isServerAnswer(new Error('Query read timeout'))).toBe(false)
    // A statement timeout or cancel is raised before a COMMIT completes: a certain rollback.
    expect(isServerAnswer(server('57014'))).toBe(true)
    // Our own wrapper keeps the server's error as its cause.
    expect(isServerAnswer(new Error('wrapped', { cause: server('23505') }))).toBe(true)
    expect(isServerAnswer(new Error('wrapped', { cause: server('57P01') }))).toBe(false)
  })
})

describe.skipIf(!pgUp)('PostgreSQL protocol shortcuts (real server)', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let pool: PgPool

  beforeAll(async () => {
    db = await createTestDatabase()
    pool = new PgPool({ url: db.url, max: 3, connectTimeoutMs: 5_000, queryTimeoutMs: 10_000, statementTimeoutMs: 10_000 })
    await pool.run('CREATE TABLE t (id bigint PRIMARY KEY, note text)')
  })

  afterAll(async () => {
    await pool?.close()
    await db?.drop()
  })

  const count = async (): Promise<number> => Number((await pool.all<{ n: number }>('SELECT count(*)::int AS n FROM t'))[0]?.n)

  async function copy(client: pg.PoolClient, text: string, sql = 'COPY t (id, note) FROM STDIN'): Promise<number> {
    const c = new PipelinedCopyIn(sql, text)
    void client.query(c)
    return c.done
  }

  it('copies the rows sent behind the query, and reports their count', async () => {
    const client = await pool.connect()
    try {
      await client.query('TRUNCATE t')
      const rows = Array.from({ length: 5000 }, (_, i) => `${i + 1}\tnote ${i} ünïcode\n`).join('')
      expect(await copy(client, rows)).toBe(5000)
      expect(await copy(client, '')).toBe(0)
    } finally {
      client.release()
    }
    expect(await count()).toBe(5000)
  })

  it('a COPY that fails mid-data stores nothing and leaves the connection usable', async () => {
    const client = await pool.connect()
    try {
      await client.query('TRUNCATE t')
      await client.query(`INSERT INTO t VALUES (2500, 'already here')`)
      const rows = Array.from({ length: 5000 }, (_, i) => `${i + 1}\tx\n`).join('')
      await expect(copy(client, rows)).rejects.toMatchObject({ code: '23505' })
      // The server ignored the rest of the data: the next statements on this connection work.
      expect((await client.query<{ v: number }>('SELECT 41 + 1 AS v')).rows[0]?.v).toBe(42)
      await expect(copy(client, 'x\tnot a number\n')).rejects.toMatchObject({ code: '22P02' })
      await expect(copy(client, '1\tx\n', 'COPY missing_table FROM STDIN')).rejects.toMatchObject({ code: '42P01' })
      expect(await copy(client, '9001\tafter the failures\n')).toBe(1)
    } finally {
      client.release()
    }
    expect(await count()).toBe(2)
  })

  it('a batched transaction commits with its last batch; a later reader sees everything', async () => {
    await pool.run('TRUNCATE t')
    const out = await pool.batchedTransaction(async (batch) => {
      const first = await batch.run([`INSERT INTO t VALUES (1, 'a')`, `SELECT count(*)::int AS n FROM t`])
      expect(batch.state).toBe('open')
      await copy(batch.client, '2\tb\n3\tc\n')
      const last = await batch.run([`INSERT INTO t SELECT id + 10, note FROM t`], { commit: true })
      expect(batch.state).toBe('committed')
      return { n: first[1]?.rows[0]?.n, inserted: last[0]?.rowCount }
    })
    expect(out).toEqual({ n: 1, inserted: 3 })
    expect(await count()).toBe(6)
  })

  it('nothing is visible before the COMMIT batch, and a failing COMMIT batch rolls back (a known outcome)', async () => {
    await pool.run('TRUNCATE t')
    const err = await pool
      .batchedTransaction(async (batch, tx) => {
        await batch.run([`INSERT INTO t VALUES (1, ${dollarQuoted("it's $q$ quoted")})`])
        await tx.run('INSERT INTO t VALUES (?, ?)', [2, 'through the executor'])
        expect(await count()).toBe(0) // another connection: uncommitted
        await batch.run([`INSERT INTO t VALUES (3, 'c')`, `INSERT INTO t VALUES (1, 'duplicate')`], { commit: true })
      })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'STORE_UNIQUE', driverCode: '23505', errorClass: 'unique' })
    expect(await count()).toBe(0)
    // The pool's connection is clean again.
    await pool.batchedTransaction(async (_batch, tx) => {
      await tx.run('INSERT INTO t VALUES (?, ?)', [7, 'executor only: BEGIN of its own, COMMIT at the end'])
    })
    expect((await pool.all<{ note: string }>('SELECT note FROM t'))[0]?.note).toMatch(/^executor only/)
  })

  it('a connection lost during the COMMIT batch leaves the outcome unknown (never retried as failed)', async () => {
    await pool.run('TRUNCATE t')
    const err = await pool
      .batchedTransaction(async (batch) => {
        const pid = (await batch.run(['SELECT pg_backend_pid() AS pid']))[0]?.rows[0]?.pid as number
        await pool.run('SELECT pg_terminate_backend(?)', [pid])
        await batch.run([`INSERT INTO t VALUES (1, 'x')`], { commit: true })
      })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'COMMIT_UNKNOWN' })
  })

  it('binary COPY stores exactly what the text form would, for the awkward values too', async () => {
    await pool.run(`CREATE TABLE r (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, sensor_id bigint NOT NULL, value double precision NOT NULL,
      "timestamp" timestamptz NOT NULL, device_timestamp timestamptz, dedup_key text, sequence bigint, classification varchar(20), reason_codes jsonb, transport varchar(16))`)
    const T = Date.UTC(2026, 10, 27, 1, 2, 3, 456)
    const base: ReadingRow = { sensorId: 1, value: 21.5, ingestTime: T, deviceTime: T - 1000, dedupKey: '1:1.000000:21.500000', sequence: null, classification: 'ML_PREDICTION', reasons: '[{"code":"CLEAN"}]', transport: 'http' }
    const rows: ReadingRow[] = [
      base,
      { ...base, sensorId: 2 ** 40 + 7, value: -0, deviceTime: null, dedupKey: null, sequence: -5 },
      { ...base, sensorId: 3, value: 1e308, deviceTime: T + 0.999, dedupKey: 'tab\there\nnew line \\ back ünï 🚀', sequence: 2 ** 53 - 1 },
      { ...base, sensorId: 4, value: -123.456e-7, deviceTime: Date.parse('0001-01-01T00:00:00.001Z'), ingestTime: Date.UTC(9999, 11, 31, 23, 59, 59, 999), sequence: -(2 ** 40) },
      { ...base, sensorId: 5, value: 5e-324, deviceTime: Date.UTC(1999, 11, 31, 23, 59, 59, 999) + 0.5, classification: 'ALERT', reasons: '[{"code":"THRESHOLD","observed":9.5,"rule":"ünï"}]', transport: 'mqtt' },
    ]
    const client = await pool.connect()
    try {
      const copy = new PipelinedCopyIn(`COPY r (${COPY_COLUMNS}) FROM STDIN WITH (FORMAT binary)`, encodeReadingsBinary(rows))
      void client.query(copy)
      expect(await copy.done).toBe(rows.length)
    } finally {
      client.release()
    }
    const got = await pool.all<Record<string, unknown>>(
      `SELECT sensor_id, value, (extract(epoch from "timestamp") * 1000000)::bigint::text AS ts, (extract(epoch from device_timestamp) * 1000000)::bigint::text AS dts,
         dedup_key, sequence, classification, reason_codes AS reasons, transport FROM r ORDER BY id`,
    )
    expect(Object.is(got[1]?.['value'], 0)).toBe(true) // -0 is stored as 0, as in the text form
    expect(got).toEqual(
      rows.map((r) => ({
        sensor_id: r.sensorId,
        value: r.value === 0 ? 0 : r.value,
        // Microseconds kept, rounded to the nearest (as the text form isoMicros writes them).
        ts: String(epochMicros(r.ingestTime)),
        dts: r.deviceTime === null ? null : String(epochMicros(r.deviceTime)),
        dedup_key: r.dedupKey,
        sequence: r.sequence,
        classification: r.classification,
        reasons: JSON.parse(r.reasons) as unknown,
        transport: r.transport,
      })),
    )
    // An empty batch is a valid file too.
    const c2 = await pool.connect()
    try {
      const empty = new PipelinedCopyIn(`COPY r (${COPY_COLUMNS}) FROM STDIN WITH (FORMAT binary)`, encodeReadingsBinary([]))
      void c2.query(empty)
      expect(await empty.done).toBe(0)
    } finally {
      c2.release()
    }
  })

  it('the last statement of a flush stores latest values and rule states exactly, whatever the state text holds', async () => {
    await pool.run(`CREATE TABLE sensor_readings_latest (sensor_id bigint PRIMARY KEY, latest_value double precision NOT NULL, latest_timestamp timestamptz NOT NULL, reading_id bigint)`)
    await pool.run(`CREATE TABLE sensor_rule_state (sensor_id bigint PRIMARY KEY, state jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`)
    await pool.run(`CREATE TABLE sensors (id bigint PRIMARY KEY, operational_state text, valid_readings_count int, state_changed_at timestamptz)`)
    await pool.run(`INSERT INTO sensors (id) VALUES (1), (2)`)
    const store = createPostgresIngestStore(pool)
    const weird = { note: 'quote " backslash \\ dollar $q$ $$ brace } comma , ünï 🚀 \u0001', n: 1.5e-7 }
    const T = Date.UTC(2026, 10, 27, 1, 2, 3, 456)
    const state = (id: number, extra: object) => ({ sensorId: id, state: JSON.stringify({ operationalState: 'NORMAL', ...extra }), operationalState: 'NORMAL' as const, validReadingsCount: 3, stateChangedAt: T, changed: id === 1 })
    await store.transaction(async (tx) => {
      await tx.lockSensors([1, 2])
      await tx.write({
        rows: [],
        effects: [],
        latest: [
          { sensorId: 1, value: 5e-324, time: T },
          { sensorId: 2, value: -1e308, time: Date.parse('0001-01-01T00:00:00.001Z') },
        ],
        states: [state(1, weird), state(2, {})],
        optimistic: true,
      })
    })
    const latest = await pool.all<{ sensor_id: number; latest_value: number; ms: string }>(`SELECT sensor_id, latest_value, (extract(epoch from latest_timestamp) * 1000)::bigint::text AS ms FROM sensor_readings_latest ORDER BY 1`)
    expect(latest).toEqual([
      { sensor_id: 1, latest_value: 5e-324, ms: String(T) },
      { sensor_id: 2, latest_value: -1e308, ms: String(Date.parse('0001-01-01T00:00:00.001Z')) },
    ])
    const states = await pool.all<{ sensor_id: number; state: unknown }>(`SELECT sensor_id, state FROM sensor_rule_state ORDER BY 1`)
    expect(states).toEqual([
      { sensor_id: 1, state: { operationalState: 'NORMAL', ...weird } },
      { sensor_id: 2, state: { operationalState: 'NORMAL' } },
    ])
    const legacy = await pool.all<{ id: number; operational_state: string | null }>(`SELECT id, operational_state FROM sensors ORDER BY 1`)
    expect(legacy).toEqual([
      { id: 1, operational_state: 'NORMAL' },
      { id: 2, operational_state: null },
    ])
  })

  it('a deferred COPY rides with the last batch and its COMMIT; or is sent before any other statement; or with the COMMIT', async () => {
    await pool.run('TRUNCATE t')
    const sql = 'COPY t (id, note) FROM STDIN'
    let roundTrips = 0
    const counted = async <T>(fn: (batch: PgBatchTx, tx: SqlExecutor) => Promise<T>) =>
      pool.batchedTransaction(async (batch, tx) => {
        const query = batch.client.query.bind(batch.client)
        batch.client.query = ((...args: Parameters<typeof query>) => (roundTrips++, query(...args))) as typeof query
        try {
          return await fn(batch, tx)
        } finally {
          batch.client.query = query
        }
      })
    await counted(async (batch) => {
      await batch.run(['SELECT 1'])
      batch.deferCopy(sql, '1\ta\n2\tb\n')
      expect(await count()).toBe(0)
      await batch.run([`INSERT INTO t VALUES (3, 'c')`], { commit: true, afterCopy: true })
      expect(batch.state).toBe('committed')
    })
    expect(roundTrips).toBe(2) // BEGIN + SELECT; then COPY + INSERT + COMMIT
    expect(await count()).toBe(3)

    roundTrips = 0
    await counted(async (batch, tx) => {
      batch.deferCopy(sql, '4\td\n')
      // A statement that cannot carry it: the COPY goes first (with the BEGIN), then the statement.
      expect(await tx.all<{ n: number }>('SELECT count(*)::int AS n FROM t')).toEqual([{ n: 4 }])
      batch.deferCopy(sql, '5\te\n')
    })
    expect(roundTrips).toBe(3) // BEGIN, COPY, SELECT; then COPY + COMMIT
    expect(await count()).toBe(5)
  })

  it('a deferred COPY hitting a stored key: the mapped error, a certain rollback (not COMMIT_UNKNOWN), nothing of the transaction kept', async () => {
    await pool.run('TRUNCATE t')
    await pool.run(`INSERT INTO t VALUES (2, 'already')`)
    class Mapped extends Error {}
    const err = await pool
      .batchedTransaction(async (batch) => {
        await batch.run([`INSERT INTO t VALUES (10, 'in the same transaction')`])
        batch.deferCopy('COPY t (id, note) FROM STDIN', '1\ta\n2\tb\n3\tc\n', (e) => ((e as { code?: string }).code === '23505' ? new Mapped('dup', { cause: e }) : e))
        await batch.run([`INSERT INTO t VALUES (11, 'x')`], { commit: true, afterCopy: true })
      })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(Mapped)
    expect(isServerAnswer(err)).toBe(true)
    expect((await pool.all<{ id: number }>('SELECT id FROM t ORDER BY id')).map((r) => r.id)).toEqual([2])
  })

  it('nothing can be sent once the COMMIT batch went out (it would run outside the transaction)', async () => {
    await pool.run('TRUNCATE t')
    const err = await pool
      .batchedTransaction(async (batch, tx) => {
        await batch.run([`INSERT INTO t VALUES (1, 'a')`], { commit: true })
        await tx.run(`INSERT INTO t VALUES (2, 'after the commit')`)
      })
      .catch((e: unknown) => e)
    // Committed, then a bug: the caller must not retry as if nothing was written; the stray statement never ran.
    expect(err).toMatchObject({ code: 'COMMIT_UNKNOWN' })
    expect((await pool.all<{ id: number }>('SELECT id FROM t')).map((r) => r.id)).toEqual([1])
  })

  it('the binary encoder refuses a non-integer for a bigint column instead of truncating it', () => {
    const row: ReadingRow = { sensorId: 1, value: 1, ingestTime: 0, deviceTime: null, dedupKey: null, sequence: 1.5, classification: 'ML_PREDICTION', reasons: '[]', transport: 'http' }
    expect(() => encodeReadingsBinary([row])).toThrow(TypeError)
    expect(() => encodeReadingsBinary([{ ...row, sequence: null, sensorId: 2 ** 53 }])).toThrow(TypeError)
  })

  it('a dollar-quoted JSON document round-trips whatever it holds', async () => {
    const doc = JSON.stringify([{ s: "quote ' and $q$ and \\ and \n newline and ünï" }])
    const rows = await pool.batchedTransaction(async (batch) => (await batch.run([`SELECT ${dollarQuoted(doc)}::jsonb AS j`], { commit: true }))[0]?.rows)
    expect(rows?.[0]?.j).toEqual(JSON.parse(doc))
  })
})
