import { isoMicros } from '../../../domain/time.js'
import { DuplicateKeyError, type FlushWrite, type IngestStore, type IngestTx } from '../../../ports/ingest-store.js'
import type { SqlExecutor } from '../sql/executor.js'
import { applyEffectsSql, createSqlSensorDirectory, loadRulesSql } from '../sql/ingest-tx.js'
import { toJson, toNumber } from '../sql/row.js'
import { COPY_COLUMNS, encodeReadingsBinary } from './copy-binary.js'
import { bigintArrayLiteral, dollarQuoted, type PgBatchTx, type PgPool } from './pool.js'

// Rule-state rows are created if missing (ids this process has not seen yet), then locked in id order
// by a SEPARATE statement: in READ COMMITTED a statement's snapshot is taken when it starts, so a row
// another flush inserted and committed while our INSERT waited is only visible (and lockable) to the
// next statement. Concurrent flushes of the same sensors, from this or another replica, serialise on
// these locks; different sensors do not contend.
// Both are sent in the flush's first simple-query batch (with BEGIN), ids as a literal array.
const ensureStates = (ids: string): string => `INSERT INTO sensor_rule_state (sensor_id, state) SELECT id, '{}'::jsonb FROM unnest(${ids}) AS t(id) ORDER BY id ON CONFLICT (sensor_id) DO NOTHING`
const lockStates = (ids: string): string => `SELECT sensor_id, state FROM sensor_rule_state WHERE sensor_id = ANY(${ids}) ORDER BY sensor_id FOR UPDATE`

// The latest readings, the rule states and the legacy sensor state columns in one statement, sent in
// the flush's last simple-query batch (with COMMIT). Latest rows travel as array literals and the states
// as a `json` array (only checked, then each element made jsonb once): one jsonb document holding every
// state cost PostgreSQL about twice as much (it builds the whole document, then each state again),
// measured with 1 000 sensors.
const saveProgressSql = (p: { ids: string; values: string; times: string; stateIds: string; states: string; legacy: string }): string => `WITH latest AS (
    INSERT INTO sensor_readings_latest (sensor_id, latest_value, latest_timestamp)
    SELECT * FROM unnest(${p.ids}, ${p.values}::float8[], ${p.times}::timestamptz[])
    ON CONFLICT (sensor_id) DO UPDATE SET latest_value = EXCLUDED.latest_value, latest_timestamp = EXCLUDED.latest_timestamp
    WHERE sensor_readings_latest.latest_timestamp <= EXCLUDED.latest_timestamp
    RETURNING 1),
  states AS (
    INSERT INTO sensor_rule_state (sensor_id, state, updated_at)
    SELECT (${p.stateIds})[t.i], t.state::jsonb, now() FROM json_array_elements(${p.states}::json) WITH ORDINALITY AS t(state, i)
    ON CONFLICT (sensor_id) DO UPDATE SET state = EXCLUDED.state, updated_at = EXCLUDED.updated_at
    RETURNING 1),
  legacy AS (
    UPDATE sensors s SET operational_state = u.st, valid_readings_count = u.n, state_changed_at = u.at
    FROM jsonb_to_recordset(${p.legacy}::jsonb) AS u(id bigint, st text, n int, at timestamptz) WHERE s.id = u.id
    RETURNING 1)
  SELECT (SELECT count(*) FROM latest) AS latest, (SELECT count(*) FROM states) AS states, (SELECT count(*) FROM legacy) AS legacy`

/** A dollar-quoted array literal of these elements (numbers and ISO times: nothing to quote). */
const arrayLiteral = (elements: readonly string[]): string => dollarQuoted(`{${elements.join(',')}}`)

const EXISTING_KEYS = `SELECT r.sensor_id, r.dedup_key FROM sensor_readings r
  JOIN unnest(?::bigint[], ?::text[]) AS k(sensor_id, dedup_key) ON r.sensor_id = k.sensor_id AND r.dedup_key = k.dedup_key`

// One statement per flush; ON CONFLICT DO NOTHING is the backstop of the dedup pre-check.
const INSERT_READINGS = `INSERT INTO sensor_readings (sensor_id, value, "timestamp", device_timestamp, dedup_key, sequence, classification, reason_codes, transport)
  SELECT * FROM unnest(?::bigint[], ?::float8[], ?::timestamptz[], ?::timestamptz[], ?::text[], ?::bigint[], ?::text[], ?::jsonb[], ?::text[])
  ON CONFLICT DO NOTHING`

const COPY_READINGS = `COPY sensor_readings (${COPY_COLUMNS}) FROM STDIN WITH (FORMAT binary)`

// The COPY's own error, raw from the driver: a unique violation means a key is already stored.
const toDuplicateKeyError = (err: unknown): unknown => ((err as { code?: unknown }).code === '23505' ? new DuplicateKeyError(err) : err)

// Six fraction digits: timestamptz keeps the microseconds `Date` would drop.
const iso = (ms: number | null): string | null => (ms === null ? null : isoMicros(ms))

function pgIngestTx(batch: PgBatchTx, tx: SqlExecutor, known: Set<number>): IngestTx {
  return {
    loadRules: (ids) => loadRulesSql(tx, ids),
    async lockSensors(ids) {
      const sorted = [...new Set(ids)].sort((a, b) => a - b)
      const fresh = sorted.filter((id) => !known.has(id))
      const all = bigintArrayLiteral(sorted)
      const first = await batch.run(fresh.length > 0 ? [ensureStates(bigintArrayLiteral(fresh)), lockStates(all)] : [lockStates(all)])
      let rows = first[first.length - 1]?.rows ?? []
      if (rows.length < sorted.length) {
        // A row deleted behind our back (ids in `known`): create it and lock again, never run unlocked.
        const again = await batch.run([ensureStates(all), lockStates(all)])
        rows = again[again.length - 1]?.rows ?? []
      }
      const out = new Map<number, unknown>()
      for (const r of rows) out.set(toNumber(r['sensor_id']), toJson(r['state']))
      for (const id of fresh) known.add(id)
      if (known.size > 200_000) known.clear()
      return out
    },
    async existingDedupKeys(pairs) {
      const found = new Set<string>()
      if (pairs.length === 0) return found
      const rows = await tx.all(EXISTING_KEYS, [pairs.map((p) => p.sensorId), pairs.map((p) => p.dedupKey)])
      for (const r of rows) found.add(`${toNumber(r['sensor_id'])}:${String(r['dedup_key'])}`)
      return found
    },
    async write(flush: FlushWrite) {
      const { rows, latest, states } = flush
      // Optimistic: one binary COPY, sent with the flush's last statement and its COMMIT (one round trip
      // for all three); a stored key aborts it (DuplicateKeyError) and the flush is redone with the check.
      if (flush.optimistic) {
        if (rows.length > 0) batch.deferCopy(COPY_READINGS, encodeReadingsBinary(rows), toDuplicateKeyError)
      } else if (rows.length > 0) {
        await tx.run(INSERT_READINGS, [
          rows.map((r) => r.sensorId),
          rows.map((r) => r.value),
          rows.map((r) => iso(r.ingestTime)),
          rows.map((r) => iso(r.deviceTime)),
          rows.map((r) => r.dedupKey),
          rows.map((r) => r.sequence),
          rows.map((r) => r.classification),
          rows.map((r) => r.reasons),
          rows.map((r) => r.transport),
        ])
      }
      const openedAlerts = flush.effects.length > 0 ? await applyEffectsSql(tx, flush.effects) : []
      if (latest.length === 0 && states.length === 0) return { openedAlerts }
      const legacyJson = JSON.stringify(states.filter((s) => s.changed).map((s) => ({ id: s.sensorId, st: s.operationalState, n: s.validReadingsCount, at: iso(s.stateChangedAt) })))
      const progress = saveProgressSql({
        ids: bigintArrayLiteral(latest.map((l) => l.sensorId)),
        // String(number) is the shortest form that reads back as the same double (-0 becomes 0).
        values: arrayLiteral(latest.map((l) => String(l.value === 0 ? 0 : l.value))),
        times: arrayLiteral(latest.map((l) => isoMicros(l.time))),
        stateIds: bigintArrayLiteral(states.map((st) => st.sensorId)),
        states: dollarQuoted(`[${states.map((st) => st.state).join(',')}]`),
        legacy: dollarQuoted(legacyJson),
      })
      // The last statement of the flush: the COPY goes in front of it and the COMMIT behind it, one round trip.
      await batch.run([progress], { commit: true, afterCopy: true })
      return { openedAlerts }
    },
  }
}

/**
 * The PostgreSQL write path: a handful of statements per flush whatever its size (COPY for the
 * readings), and three flushes at once on separate connections so Node and PostgreSQL work in parallel.
 */
export function createPostgresIngestStore(pool: PgPool): IngestStore {
  const known = new Set<number>()
  return {
    // Three flushes at once on separate connections; COPY makes the optimistic insert cheap.
    capabilities: { flushConcurrency: 3, optimisticInsert: true, classifiesItself: false },
    sensors: createSqlSensorDirectory(pool),
    valueGuard: () => null,
    transaction: (fn) => pool.batchedTransaction((batch, tx) => fn(pgIngestTx(batch, tx, known))),
  }
}
