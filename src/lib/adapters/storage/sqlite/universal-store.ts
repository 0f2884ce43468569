import type { UniversalStore } from '../../../ports/universal-store.js'
import { createSqlUniversalTx, insertAuditSql, seriesStatusSql } from '../sql/universal-tx.js'
import type { SqliteConnection } from './connection.js'

/** The embedded universal store: BEGIN IMMEDIATE holds the write lock for the whole flush (the series lock). */
export function createSqliteUniversalStore(conn: SqliteConnection): UniversalStore {
  return {
    flushConcurrency: 1,
    optimisticInsert: false,
    transaction: (fn) => conn.transaction((exec) => fn(createSqlUniversalTx(exec, { lockClause: '' }))),
    audit: async (rows) => {
      if (rows.length > 0) await conn.transaction((exec) => insertAuditSql(exec, rows))
    },
    seriesStatus: (s) => seriesStatusSql(conn, s),
  }
}
