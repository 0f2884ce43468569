import { describe, expect, it } from 'vitest'

import type { Param, Row, SqlExecutor } from '../../../../src/lib/adapters/storage/sql/executor.js'
import { createSqlRegistryStore } from '../../../../src/lib/adapters/storage/sql/registry-store.js'
import { mssqlDialect } from '../../../../src/lib/adapters/storage/sqlserver/connection.js'
import { parseRegistryFile } from '../../../../src/lib/app/apply-registry.js'

// The legacy SQL Server tables have created_at NOT NULL without a default (fixtures/sql/sqlserver-legacy.sql):
// the shared registry store must write it on every insert, as a UTC Date from its clock.

const NOW = Date.parse('2025-06-01T12:34:56.789Z')

const FILE = `
devices:
  - uuid: 3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c
    name: boiler-room
    sensors:
      - uuid: 8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d
        type: temperature
        name: supply-temp
        unit: C
        thresholds:
          - { name: hard-limits, condition: out_of_range, min: 0, max: 90, severity: critical }
        delta: { abs_delta: 5, severity: warning }
streams:
  - { domain: health, source_id: ward-3, stream_id: bpm, enable_alerting: true,
      constraints: { physical_min: 30, physical_max: 220 } }
`

/** An empty database that records inserts; `existing` rows make upsert take its update path. */
function fakeDb(existing: Row | null = null) {
  const inserts: Array<{ table: string; values: Readonly<Record<string, Param>> }> = []
  const runs: Array<{ sql: string; params: readonly Param[] }> = []
  const exec: SqlExecutor = {
    engine: 'sqlserver',
    dialect: mssqlDialect,
    all: <R extends Row>() => Promise.resolve((existing ? [existing] : []) as R[]),
    run: (sql, params = []) => {
      runs.push({ sql, params })
      return Promise.resolve(1)
    },
    insert: (table, values) => {
      inserts.push({ table, values })
      return Promise.resolve(inserts.length)
    },
    transaction: (fn) => fn(exec),
  }
  return { exec, inserts, runs }
}

describe('registry store: created_at on insert', () => {
  it('writes created_at = the clock as a Date on every registry table it inserts into', async () => {
    const spec = parseRegistryFile(FILE, 'test.yaml')
    const db = fakeDb()
    const store = createSqlRegistryStore(db.exec, () => NOW)
    await store.applyDevices(spec.devices, { prune: false, dryRun: false })
    await store.applyStreams(spec.streams, { prune: false, dryRun: false })
    expect(db.inserts.map((i) => i.table)).toEqual(['devices', 'sensors', 'alert_thresholds', 'delta_thresholds', 'stream_configs', 'value_constraints'])
    for (const { table, values } of db.inserts) {
      expect(values['created_at'], table).toBeInstanceOf(Date)
      expect((values['created_at'] as Date).toISOString(), table).toBe('2025-06-01T12:34:56.789Z')
    }
  })

  it('leaves created_at alone on update', async () => {
    const spec = parseRegistryFile(FILE, 'test.yaml')
    const db = fakeDb({ id: 1, name: 'old-name', created_at: new Date(0) })
    await createSqlRegistryStore(db.exec, () => NOW).applyDevices(spec.devices, { prune: false, dryRun: false })
    expect(db.inserts).toEqual([])
    expect(db.runs.length).toBeGreaterThan(0)
    for (const r of db.runs) expect(r.sql).not.toContain('created_at')
  })
})
