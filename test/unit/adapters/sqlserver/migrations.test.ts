import { readFileSync } from 'node:fs'

import { describe, expect, it } from 'vitest'

import { splitBatches } from '../../../../src/lib/adapters/storage/sqlserver/connection.js'
import { LEGACY_TABLES, LEGACY_TABLES_CREATED_IF_MISSING } from '../../../../src/lib/adapters/storage/sqlserver/migrator.js'

const read = (path: string): string => readFileSync(new URL(`../../../../${path}`, import.meta.url), 'utf8')
const INITIAL = read('migrations/sqlserver/0001_initial.sql')
const LEGACY_INDEXES = read('migrations/sqlserver/0002_legacy_indexes.sql')
const READING_KEYS = read('migrations/sqlserver/0003_reading_keys.sql')
const FIXTURE = read('fixtures/sql/sqlserver-legacy.sql')

const LEGACY = new Set<string>(LEGACY_TABLES)
const CREATED_IF_MISSING = new Set<string>(LEGACY_TABLES_CREATED_IF_MISSING)

function code(batch: string): string {
  return batch
    .replace(/\/\*[\s\S]*?\*\//g, ' ')
    .replace(/--[^\n]*/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()
}

/** `N'dbo.x'`, `dbo.x`, `[dbo].[x]` -> `x` */
function table(ref: string): string {
  return ref.replace(/^N?'|'$/g, '').replace(/[[\]]/g, '').replace(/^dbo\./i, '').toLowerCase()
}

interface Additive {
  problems: string[]
  added: string[]
  created: string[]
}

/**
 * Classifies every batch of a migration that must only add to the backend team's schema. Allowed: a
 * read-only check (SELECT/DECLARE/IF/RAISERROR/RETURN), `IF OBJECT_ID(x) IS NULL CREATE TABLE x`, and
 * `IF COL_LENGTH(x, c) IS NULL ALTER TABLE x ADD c <type> NULL` without a default.
 */
function checkAdditive(script: string): Additive {
  const out: Additive = { problems: [], added: [], created: [] }
  for (const batch of splitBatches(script)) {
    const c = code(batch)
    if (/\b(DROP|TRUNCATE|DELETE|UPDATE|INSERT|MERGE|EXEC|EXECUTE|sp_rename|ALTER\s+COLUMN|INDEX|TRIGGER)\b/i.test(c)) {
      out.problems.push(`forbidden statement: ${c.slice(0, 120)}`)
      continue
    }
    const alters = c.match(/\bALTER\s+TABLE\b/gi)?.length ?? 0
    const creates = c.match(/\bCREATE\s+TABLE\b/gi)?.length ?? 0
    if (alters === 0 && creates === 0) {
      if (!/^(DECLARE|SELECT|IF|SET)\b/i.test(c)) out.problems.push(`unexpected batch: ${c.slice(0, 120)}`)
      continue
    }
    if (alters + creates > 1) {
      out.problems.push(`more than one DDL statement in a batch: ${c.slice(0, 120)}`)
      continue
    }
    const add = /^IF COL_LENGTH\((N?'[^']+'), ?N?'(\w+)'\) IS NULL ALTER TABLE ([\w.[\]]+) ADD \[?(\w+)\]? (.+?);?$/i.exec(c)
    if (add) {
      const [, guardTable = '', guardCol = '', alterTable = '', col = '', def = ''] = add
      if (table(guardTable) !== table(alterTable) || guardCol.toLowerCase() !== col.toLowerCase()) out.problems.push(`guard does not match the change: ${c}`)
      if (!/\bNULL$/i.test(def) || /\bNOT\s+NULL\b/i.test(def)) out.problems.push(`column not nullable: ${c}`)
      if (/\b(DEFAULT|CONSTRAINT|IDENTITY|PRIMARY|UNIQUE|CHECK|REFERENCES)\b|,/i.test(def)) out.problems.push(`more than a nullable column: ${c}`)
      out.added.push(`${table(alterTable)}.${col.toLowerCase()}`)
      continue
    }
    const create = /^IF OBJECT_ID\((N?'[^']+')(?:, ?N'U')?\) IS NULL CREATE TABLE ([\w.[\]]+) \(/i.exec(c)
    if (create) {
      const [, guardTable = '', createTable = ''] = create
      if (table(guardTable) !== table(createTable)) out.problems.push(`guard does not match the table: ${c.slice(0, 120)}`)
      if (LEGACY.has(table(createTable)) && !CREATED_IF_MISSING.has(table(createTable))) out.problems.push(`creates the backend's table ${createTable}`)
      out.created.push(table(createTable))
      continue
    }
    out.problems.push(`not a guarded ADD or CREATE: ${c.slice(0, 160)}`)
  }
  return out
}

describe('0001_initial.sql is additive only', () => {
  const result = checkAdditive(INITIAL)

  it('every batch is a guarded nullable ADD, a guarded CREATE of a missing table, or a read-only check', () => {
    expect(result.problems).toEqual([])
  })

  it('adds exactly our columns', () => {
    expect(result.added.sort()).toEqual(
      [
        'sensor_readings.device_timestamp',
        'sensor_readings.dedup_key',
        'sensor_readings.sequence',
        'sensor_readings.classification',
        'sensor_readings.reason_codes',
        'sensor_readings.transport',
        'sensor_readings_latest.reading_id',
        'sensors.resolve_after_readings',
        'alert_thresholds.consecutive_readings',
        'delta_thresholds.cooldown_sec',
        'delta_thresholds.min_delta_abs',
        'delta_thresholds.min_readings',
        'delta_thresholds.max_gap_sec',
        'device_api_keys.kid',
      ].sort(),
    )
  })

  it('creates only our own tables and the two the backend may lack', () => {
    expect(result.created.sort()).toEqual(['delta_thresholds', 'ml_watermarks', 'sensor_rule_state'])
  })

  it('creates the tables before the columns that may land on them', () => {
    const codes = splitBatches(INITIAL).map(code)
    const createDelta = codes.findIndex((c) => /CREATE TABLE dbo\.delta_thresholds/.test(c))
    const addDelta = codes.findIndex((c) => /ALTER TABLE dbo\.delta_thresholds/.test(c))
    expect(createDelta).toBeGreaterThan(0)
    expect(addDelta).toBeGreaterThan(createDelta)
  })

  it('declares sensor_rule_state as specified, with UTC defaults only', () => {
    const c = code(INITIAL)
    expect(c).toMatch(/CREATE TABLE dbo\.sensor_rule_state \( sensor_id bigint NOT NULL CONSTRAINT \w+ PRIMARY KEY, state nvarchar\(max\) NOT NULL, updated_at datetime2 NOT NULL CONSTRAINT \w+ DEFAULT SYSUTCDATETIME\(\) \)/)
    expect(c).not.toMatch(/GETDATE|CURRENT_TIMESTAMP/i)
  })

  it('starts by refusing a database without the legacy tables', () => {
    const first = code(splitBatches(INITIAL)[0] ?? '')
    expect(first).toMatch(/OBJECT_ID\(N'dbo\.' \+ t\.name, N'U'\) IS NULL/)
    expect(first).toMatch(/RAISERROR\(.*, 16, 1, @missing\); RETURN;/)
  })

  it('the checker catches what it must refuse', () => {
    const bad = [
      'ALTER TABLE dbo.sensor_readings ADD dedup_key nvarchar(300) NULL',
      "IF COL_LENGTH(N'dbo.sensors', N'x') IS NULL ALTER TABLE dbo.sensors ADD x int NOT NULL",
      "IF COL_LENGTH(N'dbo.sensors', N'x') IS NULL ALTER TABLE dbo.sensors ADD x int NULL DEFAULT 3",
      "IF COL_LENGTH(N'dbo.sensors', N'x') IS NULL ALTER TABLE dbo.alerts ADD x int NULL",
      "IF COL_LENGTH(N'dbo.sensors', N'x') IS NULL ALTER TABLE dbo.sensors ALTER COLUMN x bigint NULL",
      'ALTER TABLE dbo.sensors DROP COLUMN status',
      'CREATE TABLE dbo.alerts (id int)',
      "IF OBJECT_ID(N'dbo.alerts', N'U') IS NULL CREATE TABLE dbo.alerts (id int)",
      'CREATE UNIQUE INDEX ux ON dbo.alerts (sensor_id)',
      "UPDATE dbo.sensors SET status = 'x'",
      "IF COL_LENGTH(N'dbo.a', N'x') IS NULL ALTER TABLE dbo.a ADD x int NULL; ALTER TABLE dbo.b ADD y int NULL",
    ]
    for (const statement of bad) expect(checkAdditive(`${statement}\nGO\n`).problems, statement).not.toEqual([])
  })
})

describe('0003_reading_keys.sql is additive only', () => {
  const result = checkAdditive(READING_KEYS)

  it('every batch is a guarded nullable ADD or a guarded CREATE of our own table', () => {
    expect(result.problems).toEqual([])
  })

  it('is not marked as altering legacy tables, so it always runs', () => {
    expect(READING_KEYS.split('\n')[0]).not.toBe('-- alters-legacy')
  })

  it('creates dbo.ingest_reading_keys keyed by (sensor_id, dedup_key), created_at defaulting to UTC', () => {
    expect(result.created).toEqual(['ingest_reading_keys'])
    const c = code(READING_KEYS)
    expect(c).toContain(
      "IF OBJECT_ID(N'dbo.ingest_reading_keys', N'U') IS NULL CREATE TABLE dbo.ingest_reading_keys ( sensor_id bigint NOT NULL, dedup_key nvarchar(300) NOT NULL, created_at datetime2 NOT NULL CONSTRAINT df_ingest_reading_keys_created_at DEFAULT SYSUTCDATETIME(), CONSTRAINT pk_ingest_reading_keys PRIMARY KEY (sensor_id, dedup_key) );",
    )
    expect(c).not.toMatch(/GETDATE|CURRENT_TIMESTAMP/i)
  })

  it('gives delta_thresholds the created_at/updated_at that ingest apply writes (nullable)', () => {
    expect(result.added.sort()).toEqual(['delta_thresholds.created_at', 'delta_thresholds.updated_at'])
  })

  it('its dedup_key is as wide as sensor_readings.dedup_key', () => {
    expect(code(INITIAL)).toContain('ADD dedup_key nvarchar(300) NULL')
  })
})

describe('0002_legacy_indexes.sql', () => {
  const batches = splitBatches(LEGACY_INDEXES)
  const expected: Array<[string, string, string]> = [
    ['ux_alerts_one_active', 'dbo.alerts (sensor_id)', "status = 'active'"],
    ['ux_ml_events_one_active_delta_spike', 'dbo.ml_events (sensor_id)', "status = 'active' AND event_code = 'DELTA_SPIKE'"],
    ['ux_sensor_readings_dedup', 'dbo.sensor_readings (sensor_id, dedup_key)', 'dedup_key IS NOT NULL'],
    ['ux_device_api_keys_kid', 'dbo.device_api_keys (kid)', 'kid IS NOT NULL'],
  ]

  it('is marked as altering legacy tables on its first line', () => {
    expect(LEGACY_INDEXES.split('\n')[0]).toBe('-- alters-legacy')
    expect(INITIAL.split('\n')[0]).not.toBe('-- alters-legacy')
  })

  it('creates each filtered unique index in its own batch, guarded, after a duplicate pre-check that stops the batch', () => {
    expect(batches).toHaveLength(expected.length)
    expected.forEach(([name, on, where], i) => {
      const c = code(batches[i] ?? '')
      const create = c.indexOf(`CREATE UNIQUE NONCLUSTERED INDEX ${name} ON ${on} WHERE ${where};`)
      expect(create, name).toBeGreaterThan(0)
      const guard = c.indexOf(`IF NOT EXISTS (SELECT 1 FROM sys.indexes WHERE name = N'${name}'`)
      expect(guard, name).toBeGreaterThan(0)
      expect(guard).toBeLessThan(create)
      const check = c.search(/IF EXISTS \(SELECT .+ GROUP BY .+ HAVING COUNT\(\*\) > 1\) BEGIN/)
      const raise = c.indexOf(`RAISERROR(N'cannot create ${name}:`)
      const stop = c.indexOf('RETURN; END')
      expect(check, name).toBe(0)
      expect(raise, name).toBeGreaterThan(check)
      expect(stop, name).toBeGreaterThan(raise)
      expect(stop, name).toBeLessThan(guard)
      expect(c.match(/CREATE /g)).toHaveLength(1)
    })
  })

  it('its pre-checks look for the same rows the index forbids', () => {
    expected.forEach(([name, on, where], i) => {
      const c = code(batches[i] ?? '')
      const [tableName = '', cols = ''] = on.split(' ')
      expect(c, name).toContain(`FROM ${tableName} WHERE ${where} GROUP BY ${cols.replace(/[()]/g, '')}`)
    })
  })
})

describe('fixtures/sql/sqlserver-legacy.sql', () => {
  const c = code(FIXTURE)

  it('creates every legacy table and none of ours', () => {
    const created = [...c.matchAll(/CREATE TABLE dbo\.(\w+)/g)].map((m) => m[1])
    expect(created.sort()).toEqual([...LEGACY_TABLES].sort())
    expect(c).not.toMatch(/sensor_rule_state|schema_migrations|dedup_key|\bkid\b|resolve_after_readings|\breading_id\b|max_gap_sec/)
  })

  it('keeps the legacy types that the adapter must cope with', () => {
    expect(c).toMatch(/value decimal\(15,5\) NOT NULL/)
    expect(c).toMatch(/\[timestamp\] datetime2\(6\) NOT NULL/)
    expect(c).toMatch(/device_uuid uniqueidentifier NOT NULL/)
    expect(c).toMatch(/created_at datetime2 NOT NULL DEFAULT GETDATE\(\)/)
    expect(c.match(/decimal\(15,5\)/g)).toHaveLength(7)
  })
})
