import { existsSync } from 'node:fs'
import { join } from 'node:path'

import { UsageError } from '../../errors/index.js'
import type { Clock } from '../../ports/clock.js'
import {
  type DeadLetterEntry,
  type DeadLetterInput,
  type DeadLetterQueue,
  type DlqFilter,
  DlqFullError,
  type DlqStage,
  type DlqStats,
  type DlqStatus,
} from '../../ports/dead-letter-queue.js'
import type { Param, Row } from '../storage/sql/executor.js'
import { toIsoOrNull, toNumber, toNumberOrNull, toStringOrNull } from '../storage/sql/row.js'
import { SqliteConnection } from '../storage/sqlite/connection.js'
import { createEntryIdGenerator } from './entry-id.js'
import { decodePayload, encodePayload } from './payload.js'

export const LOCAL_DLQ_FILE = 'dlq.db'

// The DLQ file is the DLQ's own (not a migrated database): the same columns as `dead_letters` in
// migrations/*/0001_initial.sql, created on first use.
const SCHEMA = `
CREATE TABLE IF NOT EXISTS dead_letters (
  id              INTEGER PRIMARY KEY,
  entry_id        TEXT NOT NULL UNIQUE,
  transport       TEXT NOT NULL,
  stage           TEXT NOT NULL,
  error_class     TEXT NOT NULL,
  error           TEXT NOT NULL,
  payload         TEXT NOT NULL,
  sensor_id       INTEGER,
  series_id       TEXT,
  msg_id          TEXT,
  status          TEXT NOT NULL DEFAULT 'pending',
  attempts        INTEGER NOT NULL DEFAULT 0,
  first_failed_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  last_failed_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
  replayed_at     TEXT
);
CREATE INDEX IF NOT EXISTS idx_dead_letters_status ON dead_letters (status, first_failed_at);
CREATE INDEX IF NOT EXISTS idx_dead_letters_first ON dead_letters (first_failed_at, entry_id);
CREATE INDEX IF NOT EXISTS idx_dead_letters_sensor ON dead_letters (sensor_id) WHERE sensor_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS idx_dead_letters_series ON dead_letters (series_id) WHERE series_id IS NOT NULL;
`

const COLUMNS = `"entry_id", "transport", "stage", "error_class", "error", "payload", "sensor_id", "series_id", "msg_id", "status", "attempts", "first_failed_at", "last_failed_at"`
const INSERT = `INSERT INTO dead_letters (${COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`
const COUNT = 'SELECT COUNT(*) AS n FROM dead_letters'
const ORDER = 'ORDER BY first_failed_at, entry_id'
const RECORD_FAILURE = `UPDATE dead_letters SET attempts = attempts + 1, error = ?, last_failed_at = ?,
  status = CASE WHEN attempts + 1 >= ? THEN 'parked' ELSE status END WHERE entry_id = ?`
const STATS = `SELECT COUNT(*) AS depth, COALESCE(SUM(status = 'pending'), 0) AS pending, COALESCE(SUM(status = 'parked'), 0) AS parked,
  MIN(first_failed_at) AS oldest FROM dead_letters`
const BY_STAGE = 'SELECT stage AS k, COUNT(*) AS n FROM dead_letters GROUP BY stage'
const BY_CLASS = 'SELECT error_class AS k, COUNT(*) AS n FROM dead_letters GROUP BY error_class'

/** Entry ids per DELETE (SQLite's default limit is 32766 parameters; json_each takes one). */
const REMOVE_CHUNK = 5000

export interface LocalDlqOptions {
  /** INGEST_DATA_DIR: the file is `<dataDir>/dlq.db`. */
  dataDir: string
  /** DLQ_MAX_LEN: `add` refuses beyond it; nothing is ever trimmed. */
  maxLen: number
  clock: Clock
  /** Create the file when missing (default true: the ingest path). The dlq commands refuse a missing file instead. */
  create?: boolean
  busyRetryMs?: number
}

export interface LocalDeadLetterQueue extends DeadLetterQueue {
  readonly path: string
}

function where(f: DlqFilter): { sql: string; params: Param[] } {
  const conds: string[] = []
  const params: Param[] = []
  const add = (cond: string, value: Param): void => {
    conds.push(cond)
    params.push(value)
  }
  if (f.since !== undefined) add('first_failed_at >= ?', new Date(f.since).toISOString())
  if (f.until !== undefined) add('first_failed_at <= ?', new Date(f.until).toISOString())
  if (f.stage !== undefined) add('stage = ?', f.stage)
  if (f.errorClass !== undefined) add('error_class = ?', f.errorClass)
  if (f.sensorId !== undefined) add('sensor_id = ?', f.sensorId)
  if (f.seriesId !== undefined) add('series_id = ?', f.seriesId)
  if (f.status !== undefined) add('status = ?', f.status)
  if (f.entryIds !== undefined) add('entry_id IN (SELECT value FROM json_each(?))', [...f.entryIds])
  return { sql: conds.length === 0 ? '' : `WHERE ${conds.join(' AND ')}`, params }
}

const limitSql = (f: DlqFilter): string => (f.limit === undefined ? '' : `LIMIT ${Math.max(0, Math.trunc(f.limit))}`)

function decode(r: Row): DeadLetterEntry {
  return {
    entryId: String(r['entry_id']),
    transport: String(r['transport']),
    stage: String(r['stage']) as DlqStage,
    errorClass: String(r['error_class']),
    error: String(r['error']),
    payload: decodePayload(String(r['payload'])),
    sensorId: toNumberOrNull(r['sensor_id']),
    seriesId: toStringOrNull(r['series_id']),
    msgId: toStringOrNull(r['msg_id']),
    status: String(r['status']) as DlqStatus,
    attempts: toNumber(r['attempts']),
    firstFailedAt: toIsoOrNull(r['first_failed_at']) ?? '',
    lastFailedAt: toIsoOrNull(r['last_failed_at']) ?? '',
  }
}

/**
 * The `local` DLQ backend (DESIGN §6): a SQLite file of its own, `$INGEST_DATA_DIR/dlq.db`, so it
 * keeps accepting dead letters while the main database (PostgreSQL or `ingest.db`) is down. WAL and
 * synchronous=FULL (an entry acknowledged is on disk), BEGIN IMMEDIATE, the shared connection's
 * async mutex and busy retry: several processes (serve, mqtt listen, dlq replay) may use it at once.
 * `add` is one transaction for the whole batch and refuses with DlqFullError when the depth would
 * pass `maxLen`; entries are never trimmed.
 */
export async function openLocalDlq(options: LocalDlqOptions): Promise<LocalDeadLetterQueue> {
  const path = join(options.dataDir, LOCAL_DLQ_FILE)
  if (options.create === false && !existsSync(path)) {
    throw new UsageError(`no dead-letter queue at ${path}`, {
      suggestions: ['nothing has been dead-lettered with this INGEST_DATA_DIR yet: check INGEST_DATA_DIR (and DLQ_BACKEND)'],
    })
  }
  const conn = SqliteConnection.open({ path, create: true, ...(options.busyRetryMs === undefined ? {} : { busyRetryMs: options.busyRetryMs }) })
  try {
    await conn.retryBusy(() => conn.db.exec(SCHEMA))
  } catch (err) {
    await conn.close()
    throw err
  }
  const { clock, maxLen } = options
  const nextId = createEntryIdGenerator()

  const dlq: LocalDeadLetterQueue = {
    backend: 'local',
    path,

    add(entries: readonly DeadLetterInput[]) {
      if (entries.length === 0) return Promise.resolve([])
      return conn.transaction(async (tx) => {
        const [row] = await tx.all(COUNT)
        const depth = toNumber(row?.['n'] ?? 0)
        if (depth + entries.length > maxLen) throw new DlqFullError(maxLen)
        const now = clock.now()
        const at = new Date(now).toISOString()
        const ids: string[] = []
        for (const e of entries) {
          const entryId = nextId(now)
          await tx.run(INSERT, [entryId, e.transport, e.stage, e.errorClass, e.error, encodePayload(e.payload), e.sensorId ?? null, e.seriesId ?? null, e.msgId ?? null, at, at])
          ids.push(entryId)
        }
        return ids
      })
    },

    async list(filter: DlqFilter = {}) {
      const w = where(filter)
      const rows = await conn.all(`SELECT * FROM dead_letters ${w.sql} ${ORDER} ${limitSql(filter)}`, w.params)
      return rows.map(decode)
    },

    async get(entryId: string) {
      const [row] = await conn.all('SELECT * FROM dead_letters WHERE entry_id = ?', [entryId])
      return row ? decode(row) : null
    },

    async remove(entryIds: readonly string[]) {
      let removed = 0
      for (let i = 0; i < entryIds.length; i += REMOVE_CHUNK) {
        removed += await conn.run('DELETE FROM dead_letters WHERE entry_id IN (SELECT value FROM json_each(?))', [entryIds.slice(i, i + REMOVE_CHUNK)])
      }
      return removed
    },

    recordFailure(entryId: string, error: string, atMs: number, maxRetries: number) {
      return conn.transaction(async (tx) => {
        const changed = await tx.run(RECORD_FAILURE, [error, new Date(atMs).toISOString(), maxRetries, entryId])
        if (changed === 0) return null
        const [row] = await tx.all('SELECT * FROM dead_letters WHERE entry_id = ?', [entryId])
        return row ? decode(row) : null
      })
    },

    purge(filter: DlqFilter) {
      const w = where(filter)
      if (filter.limit === undefined) return conn.run(`DELETE FROM dead_letters ${w.sql}`, w.params)
      return conn.run(`DELETE FROM dead_letters WHERE id IN (SELECT id FROM dead_letters ${w.sql} ${ORDER} ${limitSql(filter)})`, w.params)
    },

    async stats(): Promise<DlqStats> {
      const [totals] = await conn.all(STATS)
      const group = async (sql: string): Promise<Record<string, number>> => Object.fromEntries((await conn.all(sql)).map((r) => [String(r['k']), toNumber(r['n'])]))
      return {
        backend: 'local',
        depth: toNumber(totals?.['depth'] ?? 0),
        pending: toNumber(totals?.['pending'] ?? 0),
        parked: toNumber(totals?.['parked'] ?? 0),
        capacity: maxLen,
        oldestFailedAt: toIsoOrNull(totals?.['oldest']),
        byStage: await group(BY_STAGE),
        byErrorClass: await group(BY_CLASS),
      }
    },

    close: () => conn.close(),
  }
  return dlq
}
