import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import type { Migrator } from '../../src/lib/ports/migrator.js'
import type { Engine } from '../../src/lib/ports/storage.js'
import { availableEngines, type EngineHandle } from '../helpers/engines.js'

const engines = await availableEngines()

/** Migrations that stay pending after a migrate without --alter-legacy. */
const OPTIONAL_MIGRATIONS: Record<Engine, Array<{ version: number; name: string }>> = {
  sqlite: [],
  postgres: [],
  sqlserver: [{ version: 2, name: 'legacy_indexes' }],
}

function optionalVersions(migrator: Migrator): ReadonlySet<number> {
  const v = (migrator as Migrator & { optionalVersions?: ReadonlySet<number> }).optionalVersions
  return v ?? new Set()
}

describe.each(engines)('migrator contract: $engine', ({ engine, open }) => {
  let h: EngineHandle
  beforeAll(async () => {
    h = await open()
  })
  afterAll(async () => {
    await h.dispose()
  })

  it('reports every migration pending on an empty database, and a dry run applies nothing', async () => {
    const before = await h.db.migrator.status()
    expect(before.engine).toBe(engine)
    expect(before.applied).toEqual([])
    expect(before.pending.length).toBeGreaterThan(0)
    expect(before.pending[0]).toEqual({ version: 1, name: 'initial' })
    const dry = await h.db.migrator.migrate({ dryRun: true, alterLegacy: false })
    expect(dry.dryRun).toBe(true)
    expect(dry.ran[0]?.sql).toContain('CREATE TABLE')
    expect((await h.db.migrator.status()).applied).toEqual([])
    await expect(h.db.assertMigrated()).rejects.toMatchObject({ code: 'SCHEMA_BEHIND' })
  })

  it('applies pending migrations once, even when two runs race', async () => {
    const [a, b] = await Promise.all([h.db.migrator.migrate({ dryRun: false, alterLegacy: false }), h.db.migrator.migrate({ dryRun: false, alterLegacy: false })])
    expect(a.ran.length + b.ran.length).toBe(a.applied.length)
    const status = await h.db.migrator.status()
    // Without --alter-legacy only the engine's opt-in migrations stay pending: none on SQLite and
    // PostgreSQL, 0002_legacy_indexes on SQL Server (and assertMigrated accepts that).
    expect(status.pending).toEqual(OPTIONAL_MIGRATIONS[engine])
    expect(status.pending.map((p) => p.version)).toEqual([...optionalVersions(h.db.migrator)].sort((x, y) => x - y))
    expect(typeof status.applied[0]?.version).toBe('number')
    expect(status.applied[0]?.appliedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.(\d{3}|\d{6})Z$/)
    await expect(h.db.assertMigrated()).resolves.toBeUndefined()
    const again = await h.db.migrator.migrate({ dryRun: false, alterLegacy: false })
    expect(again.ran).toEqual([])
  })
})
