import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { availableEngines, type EngineHandle } from '../helpers/engines.js'

const engines = await availableEngines()

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
    expect(status.pending).toEqual([])
    expect(typeof status.applied[0]?.version).toBe('number')
    expect(status.applied[0]?.appliedAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
    await expect(h.db.assertMigrated()).resolves.toBeUndefined()
    const again = await h.db.migrator.migrate({ dryRun: false, alterLegacy: false })
    expect(again.ran).toEqual([])
  })
})
