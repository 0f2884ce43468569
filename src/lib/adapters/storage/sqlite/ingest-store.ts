import { isoMicros } from '../../../domain/time.js'
import type { IngestStore, ReadingRow } from '../../../ports/ingest-store.js'
import { createSqlIngestTx, createSqlSensorDirectory } from '../sql/ingest-tx.js'
import type { SqliteConnection } from './connection.js'

// Plain INSERT: the pre-check under the write lock already dedups; anything else failing must not be
// ignored silently (OR IGNORE would also swallow NOT NULL and CHECK violations).
const INSERT_READING = `INSERT INTO sensor_readings (sensor_id, value, "timestamp", device_timestamp, dedup_key, sequence, classification, reason_codes, transport) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
const FIND_KEY = 'SELECT 1 FROM sensor_readings WHERE sensor_id = ? AND dedup_key = ?'

// Six fraction digits: device times keep their microseconds (text of one width sorts as time).
const iso = (ms: number | null): string | null => (ms === null ? null : isoMicros(ms))

/**
 * The embedded write path. BEGIN IMMEDIATE holds the database's write lock for the whole flush,
 * which is the sensor lock; the hot loops call prepared statements directly.
 */
export function createSqliteIngestStore(conn: SqliteConnection): IngestStore {
  return {
    capabilities: { flushConcurrency: 1, optimisticInsert: false, classifiesItself: false },
    sensors: createSqlSensorDirectory(conn),
    valueGuard: () => null,
    transaction: (fn) =>
      conn.transaction((exec) =>
        fn(
          createSqlIngestTx(exec, {
            // Synchronous driver calls; a SQLite error rejects, as from the async engines.
            existing: (pairs) =>
              new Promise<Set<string>>((resolve) => {
                const stmt = conn.prepare(FIND_KEY).pluck()
                const found = new Set<string>()
                for (const p of pairs) if (stmt.get(p.sensorId, p.dedupKey) !== undefined) found.add(`${p.sensorId}:${p.dedupKey}`)
                resolve(found)
              }),
            insert: (rows: readonly ReadingRow[]) =>
              new Promise<number>((resolve) => {
                const stmt = conn.prepare(INSERT_READING)
                let n = 0
                for (const r of rows) n += stmt.run(r.sensorId, r.value, iso(r.ingestTime), iso(r.deviceTime), r.dedupKey, r.sequence, r.classification, r.reasons, r.transport).changes
                resolve(n)
              }),
          }),
        ),
      ),
  }
}
