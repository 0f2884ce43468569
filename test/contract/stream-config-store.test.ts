import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { parseRegistryFile } from '../../src/lib/app/apply-registry.js'
import { STREAM_CONFIG_CHUNK } from '../../src/lib/adapters/storage/sql/stream-config-store.js'
import { availableEngines, type EngineHandle } from '../helpers/engines.js'

const engines = (await availableEngines()).filter((e) => e.engine !== 'sqlserver')

const FILE = `
streams:
  - domain: health
    source_id: ward-3
    stream_id: bpm
    display_name: Heart rate
    unit: bpm
    enable_ml_prediction: false
    domain_metadata: { room: 12, tags: [icu] }
    constraints:
      physical_min: 30
      physical_max: 220.5
      operational_min: 50
      warning_max: 160
      critical_min: -40.25
      max_abs_delta: 25
      max_rel_delta: 12.5
      noise_abs_threshold: 0.5
      consecutive_violations_required: 3
      cooldown_seconds: 120
      store_out_of_physical: true
  - { domain: finance, source_id: nyse, stream_id: price, enable_alerting: false }
  - { domain: energy, source_id: m1, stream_id: kwh, constraints: {} }
`

describe.each(engines)('stream config store contract: $engine', ({ open }) => {
  let h: EngineHandle
  beforeAll(async () => {
    h = await open({ migrated: true })
    await h.db.registry.applyStreams(parseRegistryFile(FILE, 'streams.yaml').streams, { prune: false, dryRun: false })
  })
  afterAll(async () => {
    await h.dispose()
  })

  it('loads the configs of many keys at once, with their constraints, typed; keys without a row are absent', async () => {
    const got = await h.db.streamConfigs.load([
      { domain: 'health', source_id: 'ward-3', stream_id: 'bpm' },
      { domain: 'finance', source_id: 'nyse', stream_id: 'price' },
      { domain: 'health', source_id: 'ward-4', stream_id: 'bpm' },
      { domain: 'health', source_id: 'ward-3', stream_id: 'bpm' },
    ])
    expect([...got.keys()].sort()).toEqual(['finance:nyse:price', 'health:ward-3:bpm'])
    expect(got.get('health:ward-3:bpm')).toEqual({
      seriesId: 'health:ward-3:bpm',
      key: { domain: 'health', source_id: 'ward-3', stream_id: 'bpm' },
      displayName: 'Heart rate',
      unit: 'bpm',
      enableMlPrediction: false,
      enableAlerting: true,
      domainMetadata: { room: 12, tags: ['icu'] },
      constraints: {
        physicalMin: 30,
        physicalMax: 220.5,
        operationalMin: 50,
        operationalMax: null,
        warningMin: null,
        warningMax: 160,
        criticalMin: -40.25,
        criticalMax: null,
        maxAbsDelta: 25,
        maxRelDelta: 12.5,
        noiseAbsThreshold: 0.5,
        zScoreThreshold: 3,
        consecutiveViolationsRequired: 3,
        cooldownSeconds: 120,
        storeOutOfPhysical: true,
      },
      source: 'database',
    })
  })

  it('a row without value_constraints has null constraints; an empty constraints row takes the column defaults', async () => {
    const got = await h.db.streamConfigs.load([
      { domain: 'finance', source_id: 'nyse', stream_id: 'price' },
      { domain: 'energy', source_id: 'm1', stream_id: 'kwh' },
    ])
    expect(got.get('finance:nyse:price')).toMatchObject({ constraints: null, enableAlerting: false, enableMlPrediction: true, domainMetadata: {}, displayName: null, unit: null })
    expect(got.get('energy:m1:kwh')?.constraints).toMatchObject({ physicalMin: null, zScoreThreshold: 3, consecutiveViolationsRequired: 1, cooldownSeconds: 300, storeOutOfPhysical: false })
  })

  it('answers an empty key list without a query error, and more keys than one statement holds', async () => {
    expect((await h.db.streamConfigs.load([])).size).toBe(0)
    const many = Array.from({ length: STREAM_CONFIG_CHUNK * 2 + 1 }, (_, i) => ({ domain: 'health', source_id: `ward-${i}`, stream_id: 'bpm' }))
    const got = await h.db.streamConfigs.load(many)
    expect([...got.keys()]).toEqual(['health:ward-3:bpm'])
  })

  it('matches the key columns exactly (no case folding, no partial match)', async () => {
    const got = await h.db.streamConfigs.load([
      { domain: 'Health', source_id: 'ward-3', stream_id: 'bpm' },
      { domain: 'health', source_id: 'ward-3', stream_id: 'BPM' },
      { domain: 'health', source_id: 'ward', stream_id: '3:bpm' },
    ])
    expect(got.size).toBe(0)
  })
})
