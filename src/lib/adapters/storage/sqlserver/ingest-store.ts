import type { SensorRules } from '../../../domain/rules/index.js'
import { BugError } from '../../../errors/index.js'
import type { EffectWrite, IngestStore, IngestTx, LatestWrite, ReadingRow, StateWrite } from '../../../ports/ingest-store.js'
import type { Param, SqlExecutor } from '../sql/executor.js'
import { applyEffectsSql, chunks, createSqlSensorDirectory, loadRulesSql, selectIn } from '../sql/ingest-tx.js'
import { timeParam, toJson, toNumber, toStringOrNull } from '../sql/row.js'
import { fitsLegacyDecimal } from './value-range.js'

// ---------------------------------------------------------------- limits

/**
 * Parameters per request. SQL Server refuses more than 2100 per RPC, and sp_executesql itself takes two
 * of them (@stmt, @params): every statement below stays at or under 2000.
 */
export const MSSQL_MAX_PARAMS = 2000

/** Rows per statement, each statement's parameters per row times its rows staying under MSSQL_MAX_PARAMS. */
export const SQLSERVER_CHUNKS = {
  /** lockSensors: 1 parameter per sensor. */
  lock: 1000,
  /** existingDedupKeys: 2 per pair. */
  keys: 500,
  /** insertReadings: 9 per row (1800). */
  readings: 200,
  /** moveLatest: 3 per row (1500). */
  latest: 500,
  /** saveStates, sensor_rule_state: 2 per row. */
  states: 500,
  /** saveStates, sensors: 4 per row (1600). */
  sensorStates: 400,
  /** procedure mode, dbo.ingest_reading_keys: 2 per row. */
  readingKeys: 200,
  /** procedure mode, EXECs per request: 3 per row. */
  procedure: 200,
} as const

/** The rejection code of a value the legacy `decimal(15,5)` columns cannot hold (DESIGN §2, §4.1). */
export const VALUE_OUT_OF_STORAGE_RANGE = 'VALUE_OUT_OF_STORAGE_RANGE'

/** Class of a reading handed to the legacy procedure, which classifies it itself (reference §4: the router returned SP_HANDLED). */
export const SP_HANDLED = 'SP_HANDLED'

/**
 * The storage guard of the SQL Server IoT store: `VALUE_OUT_OF_STORAGE_RANGE` for a value that
 * `sensor_readings.value` (decimal(15,5)) cannot hold, else null. The ingest service runs it after the
 * domain guards, so such a reading is rejected per item and never reaches a flush.
 */
export function sqlServerValueGuard(value: number): typeof VALUE_OUT_OF_STORAGE_RANGE | null {
  return fitsLegacyDecimal(value) ? null : VALUE_OUT_OF_STORAGE_RANGE
}

// ---------------------------------------------------------------- SQL

const list = (n: number, row: string): string => Array.from({ length: n }, () => row).join(', ')
/** `(1, ?, ?), (2, ?, ?)`: a literal ordinal first (not a parameter), then `width` placeholders. */
const numbered = (n: number, width: number): string => Array.from({ length: n }, (_, i) => `(${i + 1}, ${list(width, '?')})`).join(', ')

/**
 * Creates the missing rule-state rows and takes an update lock held to the end of the transaction on every
 * row, one sensor at a time in ascending id order (a WHILE over the sorted ids: a single IN-list statement
 * does not promise any lock order). MERGE ... WITH (HOLDLOCK) makes the create race-free: a concurrent
 * flush creating the same row waits on the key-range lock, then finds it. One round trip per chunk.
 */
export function lockSensorsSql(n: number): string {
  return `DECLARE @ids TABLE (sensor_id bigint NOT NULL PRIMARY KEY);
INSERT INTO @ids (sensor_id) SELECT v.sensor_id FROM (VALUES ${list(n, '(?)')}) AS v(sensor_id);
DECLARE @out TABLE (sensor_id bigint NOT NULL PRIMARY KEY, state nvarchar(max) NULL);
DECLARE @id bigint = (SELECT MIN(sensor_id) FROM @ids);
WHILE @id IS NOT NULL
BEGIN
  MERGE dbo.sensor_rule_state WITH (HOLDLOCK) AS t
  USING (SELECT @id AS sensor_id) AS s ON t.sensor_id = s.sensor_id
  WHEN NOT MATCHED BY TARGET THEN INSERT (sensor_id, state, updated_at) VALUES (s.sensor_id, N'{}', SYSUTCDATETIME());
  INSERT INTO @out (sensor_id, state) SELECT sensor_id, state FROM dbo.sensor_rule_state WITH (UPDLOCK, HOLDLOCK, ROWLOCK) WHERE sensor_id = @id;
  SET @id = (SELECT MIN(sensor_id) FROM @ids WHERE sensor_id > @id);
END
SELECT sensor_id, state FROM @out ORDER BY sensor_id;`
}

/** The asked pairs that are stored; returns the caller's own key text (equality is the column's collation). */
export function existingKeysSql(table: 'sensor_readings' | 'ingest_reading_keys', n: number): string {
  return `SELECT k.sensor_id, k.dedup_key FROM (VALUES ${list(n, '(?, ?)')}) AS k(sensor_id, dedup_key)
WHERE EXISTS (SELECT 1 FROM dbo.${table} r WHERE r.sensor_id = k.sensor_id AND r.dedup_key = k.dedup_key)`
}

/**
 * Multi-row insert that never stores a (sensor_id, dedup_key) already stored, with or without the filtered
 * unique index of 0002 (which exists only after --alter-legacy): NOT EXISTS against the table (earlier
 * chunks of the flush included), ROW_NUMBER against a repeat inside the statement (NOT EXISTS cannot see
 * rows of its own statement). ORDER BY the ordinal assigns identity ids in the flush's order. The count
 * comes from OUTPUT INTO, not from rowsAffected, which a trigger of the backend team would inflate.
 */
export function insertReadingsSql(n: number): string {
  return `DECLARE @inserted TABLE (id bigint NOT NULL);
INSERT INTO dbo.sensor_readings (sensor_id, value, [timestamp], device_timestamp, dedup_key, [sequence], classification, reason_codes, transport)
OUTPUT INSERTED.id INTO @inserted (id)
SELECT v.sensor_id, v.value, v.ts, v.device_ts, v.dedup_key, v.seq, v.classification, v.reason_codes, v.transport
FROM (
  SELECT d.*, ROW_NUMBER() OVER (PARTITION BY d.sensor_id, d.dedup_key ORDER BY d.n) AS rn
  FROM (VALUES ${numbered(n, 9)}) AS d(n, sensor_id, value, ts, device_ts, dedup_key, seq, classification, reason_codes, transport)
) AS v
WHERE v.dedup_key IS NULL
   OR (v.rn = 1 AND NOT EXISTS (SELECT 1 FROM dbo.sensor_readings r WHERE r.sensor_id = v.sensor_id AND r.dedup_key = v.dedup_key))
ORDER BY v.n;
SELECT COUNT(*) AS inserted FROM @inserted;`
}

/** Upsert that only moves forward in the reading's time (a late or replayed reading never moves it back). */
export function moveLatestSql(n: number): string {
  return `MERGE dbo.sensor_readings_latest WITH (HOLDLOCK) AS t
USING (VALUES ${list(n, '(?, ?, ?)')}) AS s(sensor_id, latest_value, latest_timestamp)
ON t.sensor_id = s.sensor_id
WHEN MATCHED AND (t.latest_timestamp IS NULL OR t.latest_timestamp <= s.latest_timestamp) THEN
  UPDATE SET latest_value = s.latest_value, latest_timestamp = s.latest_timestamp
WHEN NOT MATCHED BY TARGET THEN
  INSERT (sensor_id, latest_value, latest_timestamp) VALUES (s.sensor_id, s.latest_value, s.latest_timestamp);`
}

export function saveStatesSql(n: number): string {
  return `UPDATE s SET state = v.state, updated_at = SYSUTCDATETIME()
FROM dbo.sensor_rule_state AS s JOIN (VALUES ${list(n, '(?, ?)')}) AS v(sensor_id, state) ON s.sensor_id = v.sensor_id;`
}

export function saveSensorStatesSql(n: number): string {
  return `UPDATE s SET operational_state = v.operational_state, valid_readings_count = v.valid_readings_count, state_changed_at = v.state_changed_at
FROM dbo.sensors AS s JOIN (VALUES ${list(n, '(?, ?, ?, ?)')}) AS v(id, operational_state, valid_readings_count, state_changed_at) ON s.id = v.id;`
}

/** Procedure mode: records the keys not yet recorded and returns them (the rows that go on to the procedure). */
export function insertReadingKeysSql(n: number): string {
  return `DECLARE @keys TABLE (sensor_id bigint NOT NULL, dedup_key nvarchar(300) NOT NULL);
INSERT INTO dbo.ingest_reading_keys (sensor_id, dedup_key)
OUTPUT INSERTED.sensor_id, INSERTED.dedup_key INTO @keys (sensor_id, dedup_key)
SELECT v.sensor_id, v.dedup_key
FROM (
  SELECT d.*, ROW_NUMBER() OVER (PARTITION BY d.sensor_id, d.dedup_key ORDER BY d.n) AS rn
  FROM (VALUES ${numbered(n, 2)}) AS d(n, sensor_id, dedup_key)
) AS v
WHERE v.rn = 1 AND NOT EXISTS (SELECT 1 FROM dbo.ingest_reading_keys k WITH (UPDLOCK, HOLDLOCK) WHERE k.sensor_id = v.sensor_id AND k.dedup_key = v.dedup_key);
SELECT sensor_id, dedup_key FROM @keys;`
}

export const PROCEDURE_NAME = 'dbo.sp_insert_reading_and_check_threshold'

/**
 * Procedure mode: one EXEC per reading, in order, in one request. Each reading's parameters are first
 * assigned to typed variables (EXEC arguments must be variables or constants), so the procedure always
 * gets a bigint id, a float value and a UTC datetime2 or NULL, whatever JS number shape the value had
 * (an integral 23 would otherwise be sent as int, 3e9 as bigint).
 */
export function execProcedureSql(n: number): string {
  const one = `SELECT @sensor_id = ?, @value = ?, @device_timestamp = ?;
EXEC ${PROCEDURE_NAME} @p_sensor_id = @sensor_id, @p_value = @value, @p_device_timestamp = @device_timestamp;`
  return `DECLARE @sensor_id bigint, @value float, @device_timestamp datetime2(7);
${Array.from({ length: n }, () => one).join('\n')}`
}

const SENSORS_FOR_PROCEDURE = (inList: string) => `SELECT id, device_id, sensor_type FROM dbo.sensors WHERE id IN (${inList})`

// ---------------------------------------------------------------- helpers

/** Times as datetime2 parameters keep their microseconds (tedious's nanosecondDelta, see timeParam). */
const date = (ms: number | null): Date | null => (ms === null ? null : timeParam(ms))
const pairKey = (sensorId: number, dedupKey: string): string => `${sensorId}:${dedupKey}`

function assertStorable(rows: ReadonlyArray<{ sensorId: number; value: number }>): void {
  const bad = rows.find((r) => !fitsLegacyDecimal(r.value))
  if (bad) {
    // Never sent: decimal(15,5) would fail the statement (8115) and take the flush with it. The ingest
    // service rejects these with store.valueGuard before they are queued; reaching here is a wiring bug.
    throw new BugError(`sensor ${bad.sensorId}: value ${bad.value} is out of the SQL Server storage range (${VALUE_OUT_OF_STORAGE_RANGE}); the ingest service must apply the store's valueGuard`)
  }
}

/** Keeps the first row of each (sensor, dedup key): the port's "a duplicate key is ignored" inside one call. */
function firstPerKey(rows: readonly ReadingRow[]): ReadingRow[] {
  const seen = new Set<string>()
  return rows.filter((r) => {
    if (r.dedupKey === null) return true
    const k = pairKey(r.sensorId, r.dedupKey)
    if (seen.has(k)) return false
    seen.add(k)
    return true
  })
}

/** One entry per key, the last one winning (an UPDATE ... FROM or MERGE with two source rows per target is undefined or an error). */
function lastPer<T>(items: readonly T[], key: (t: T) => number): T[] {
  return [...new Map(items.map((t) => [key(t), t])).values()]
}

async function lockSensors(tx: SqlExecutor, ids: readonly number[]): Promise<Map<number, unknown>> {
  const sorted = [...new Set(ids)].sort((a, b) => a - b)
  const out = new Map<number, unknown>()
  // Chunks in ascending order keep the global lock order ascending.
  for (const part of chunks(sorted, SQLSERVER_CHUNKS.lock)) {
    for (const r of await tx.all(lockSensorsSql(part.length), part)) out.set(toNumber(r['sensor_id']), toJson(r['state']))
  }
  return out
}

async function existingKeys(tx: SqlExecutor, table: 'sensor_readings' | 'ingest_reading_keys', pairs: ReadonlyArray<{ sensorId: number; dedupKey: string }>): Promise<Set<string>> {
  const found = new Set<string>()
  const unique = [...new Map(pairs.map((p) => [pairKey(p.sensorId, p.dedupKey), p])).values()]
  for (const part of chunks(unique, SQLSERVER_CHUNKS.keys)) {
    const rows = await tx.all(existingKeysSql(table, part.length), part.flatMap((p) => [p.sensorId, p.dedupKey]))
    for (const r of rows) found.add(pairKey(toNumber(r['sensor_id']), String(r['dedup_key'])))
  }
  return found
}

// ---------------------------------------------------------------- the two transaction shapes

/**
 * The SQL Server transaction: the port's IngestTx plus the parts `write` runs in order, exposed for the
 * adapter's unit tests of each statement's chunking.
 */
export interface SqlServerIngestTx extends IngestTx {
  insertReadings(rows: readonly ReadingRow[]): Promise<number>
  moveLatest(rows: readonly LatestWrite[]): Promise<void>
  saveStates(states: readonly StateWrite[]): Promise<void>
  applyEffects(effects: readonly EffectWrite[]): Promise<number[]>
}

/** `write` as the sequence of the parts (no optimistic path here: the pre-check always runs). */
function withWrite(parts: Omit<SqlServerIngestTx, 'write'>): SqlServerIngestTx {
  return {
    ...parts,
    async write(flush) {
      await parts.insertReadings(flush.rows)
      const openedAlerts = flush.effects.length > 0 ? await parts.applyEffects(flush.effects) : []
      await parts.moveLatest(flush.latest)
      await parts.saveStates(flush.states)
      return { openedAlerts }
    },
  }
}

/** Our rules engine's write path: batch statements, a handful of round trips per flush. */
export function createSqlServerIngestTx(tx: SqlExecutor): SqlServerIngestTx {
  return withWrite({
    lockSensors: (ids) => lockSensors(tx, ids),
    loadRules: (ids) => loadRulesSql(tx, ids),
    existingDedupKeys: (pairs) => existingKeys(tx, 'sensor_readings', pairs),
    async insertReadings(rows: readonly ReadingRow[]) {
      assertStorable(rows)
      let inserted = 0
      for (const part of chunks(firstPerKey(rows), SQLSERVER_CHUNKS.readings)) {
        const params: Param[] = part.flatMap((r) => [r.sensorId, r.value, timeParam(r.ingestTime), date(r.deviceTime), r.dedupKey, r.sequence, r.classification, r.reasons, r.transport])
        const result = await tx.all(insertReadingsSql(part.length), params)
        inserted += toNumber(result[0]?.['inserted'] ?? 0)
      }
      return inserted
    },
    async moveLatest(rows: readonly LatestWrite[]) {
      // The latest of each sensor (a later entry wins a tie, as the flush builds them).
      const latest = new Map<number, LatestWrite>()
      for (const r of rows) {
        const prev = latest.get(r.sensorId)
        if (!prev || prev.time <= r.time) latest.set(r.sensorId, r)
      }
      assertStorable([...latest.values()])
      for (const part of chunks([...latest.values()], SQLSERVER_CHUNKS.latest)) {
        await tx.run(moveLatestSql(part.length), part.flatMap((r) => [r.sensorId, r.value, timeParam(r.time)]))
      }
    },
    async saveStates(states: readonly StateWrite[]) {
      const all = lastPer(states, (s) => s.sensorId)
      for (const part of chunks(all, SQLSERVER_CHUNKS.states)) await tx.run(saveStatesSql(part.length), part.flatMap((s) => [s.sensorId, s.state]))
      const changed = all.filter((s) => s.changed)
      for (const part of chunks(changed, SQLSERVER_CHUNKS.sensorStates)) {
        await tx.run(
          saveSensorStatesSql(part.length),
          part.flatMap((s) => [s.sensorId, s.operationalState, s.validReadingsCount, date(s.stateChangedAt)]),
        )
      }
    },
    applyEffects: (effects) => applyEffectsSql(tx, effects),
  })
}

/**
 * IOT_MSSQL_PROCEDURE=1: the legacy procedure stores each reading and owns everything after it
 * (sensor_readings, sensor_readings_latest, sensors' warm-up state, alerts, ml_events, notifications);
 * we keep only dedup (dbo.ingest_reading_keys) and the per-sensor lock.
 *
 * - lockSensors: as in the engine mode (dbo.sensor_rule_state rows are the per-sensor lock, so two
 *   flushes of one sensor serialise and call the procedure in time order); the state read is unused.
 * - loadRules: one query on dbo.sensors (existence, device, type) and no thresholds or delta rule:
 *   the flush needs it only to tell a vanished sensor (UNKNOWN_SENSOR) apart.
 * - existingDedupKeys: reads dbo.ingest_reading_keys (the procedure writes no dedup_key).
 * - insertReadings: records the keys, then EXECs the procedure once per row, in the given order
 *   (the flush's sensor, then time order), skipping a row whose key was already recorded; returns the
 *   number of rows handed to the procedure. Rows without a dedup key are always handed over.
 * - moveLatest, saveStates: nothing (the procedure maintains sensor_readings_latest and the sensors'
 *   state columns; writing ours too would race it with a different notion of time).
 * - applyEffects: nothing, returns [] (no alerts opened by us: nothing for the legacy push).
 */
export function createSqlServerProcedureTx(tx: SqlExecutor): SqlServerIngestTx {
  return withWrite({
    lockSensors: (ids) => lockSensors(tx, ids),
    async loadRules(ids) {
      const rules = new Map<number, SensorRules>()
      if (ids.length === 0) return rules
      for (const r of await selectIn(tx, SENSORS_FOR_PROCEDURE, [...new Set(ids)])) {
        const id = toNumber(r['id'])
        rules.set(id, { sensorId: id, deviceId: toNumber(r['device_id']), sensorType: toStringOrNull(r['sensor_type']), minReadingsForNormal: 10, resolveAfterReadings: 0, thresholds: [], delta: null })
      }
      return rules
    },
    existingDedupKeys: (pairs) => existingKeys(tx, 'ingest_reading_keys', pairs),
    async insertReadings(rows: readonly ReadingRow[]) {
      assertStorable(rows)
      const candidates = firstPerKey(rows)
      const recorded = new Set<string>()
      for (const part of chunks(
        candidates.filter((r) => r.dedupKey !== null),
        SQLSERVER_CHUNKS.readingKeys,
      )) {
        const out = await tx.all(
          insertReadingKeysSql(part.length),
          part.flatMap((r) => [r.sensorId, r.dedupKey]),
        )
        for (const r of out) recorded.add(pairKey(toNumber(r['sensor_id']), String(r['dedup_key'])))
      }
      const handed = candidates.filter((r) => r.dedupKey === null || recorded.has(pairKey(r.sensorId, r.dedupKey)))
      for (const part of chunks(handed, SQLSERVER_CHUNKS.procedure)) {
        await tx.run(execProcedureSql(part.length), part.flatMap((r) => [r.sensorId, r.value, date(r.deviceTime)]))
      }
      return handed.length
    },
    async moveLatest() {},
    async saveStates() {},
    applyEffects() {
      return Promise.resolve([])
    },
  })
}

// ---------------------------------------------------------------- the store

export interface SqlServerIngestOptions {
  /** IOT_MSSQL_PROCEDURE=1: hand each reading to dbo.sp_insert_reading_and_check_threshold. */
  useProcedure: boolean
}

/**
 * The SQL Server write path: one transaction per flush, batch statements under the 2100-parameter limit.
 * In procedure mode the flush skips our rules engine and stores class SP_HANDLED; in both modes values
 * the legacy decimal(15,5) columns cannot hold are rejected per item (VALUE_OUT_OF_STORAGE_RANGE).
 */
export function createSqlServerIngestStore(pool: SqlExecutor, options: SqlServerIngestOptions): IngestStore {
  const make = options.useProcedure ? createSqlServerProcedureTx : createSqlServerIngestTx
  return {
    capabilities: { flushConcurrency: 1, optimisticInsert: false, classifiesItself: options.useProcedure },
    sensors: createSqlSensorDirectory(pool),
    valueGuard: sqlServerValueGuard,
    transaction: (fn) => pool.transaction((tx) => fn(make(tx))),
  }
}
