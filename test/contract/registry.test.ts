import { afterAll, beforeAll, describe, expect, it } from 'vitest'

import { parseRegistryFile } from '../../src/lib/app/apply-registry.js'
import { availableEngines, type EngineHandle } from '../helpers/engines.js'

const engines = await availableEngines()

const DEVICE = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
const SENSOR = '8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d'
const file = (max = 90, extra = '') => `
devices:
  - uuid: ${DEVICE.toUpperCase()}
    name: boiler-room
    metadata: { site: north, floors: [1, 2] }
    sensors:
      - uuid: "{${SENSOR}}"
        type: temperature
        name: supply-temp
        unit: C
        min_readings_for_normal: 10
        thresholds:
          - { name: hard-limits, condition: out_of_range, min: 0, max: ${max}, severity: critical }
          - { name: comfort, condition: out_of_range, min: 20, max: 70, severity: warning, consecutive_readings: 2 }
${extra}
        delta: { abs_delta: 5, rel_delta: 0.2, severity: warning, cooldown_sec: 300, min_readings: 5 }
streams:
  - { domain: health, source_id: ward-3, stream_id: bpm, enable_alerting: true,
      constraints: { physical_min: 30, physical_max: 220, operational_min: 50, operational_max: 180 } }
`

describe.each(engines)('registry contract: $engine', ({ open }) => {
  let h: EngineHandle
  const opts = { prune: false, dryRun: false }
  beforeAll(async () => {
    h = await open()
    await h.db.migrator.migrate({ dryRun: false, alterLegacy: false })
  })
  afterAll(async () => {
    await h.dispose()
  })

  it('creates every entry with numeric ids and normalised uuids', async () => {
    const spec = parseRegistryFile(file(), 'test.yaml')
    const [device] = await h.db.registry.applyDevices(spec.devices, opts)
    expect(device).toMatchObject({ uuid: DEVICE, status: 'created' })
    expect(typeof device?.id).toBe('number')
    const sensor = device?.sensors[0]
    expect(sensor).toMatchObject({ uuid: SENSOR, status: 'created' })
    expect(typeof sensor?.id).toBe('number')
    expect(sensor?.thresholds.map((t) => [t.name, t.status, typeof t.id])).toEqual([
      ['hard-limits', 'created', 'number'],
      ['comfort', 'created', 'number'],
    ])
    expect(sensor?.delta?.status).toBe('created')
    const [stream] = await h.db.registry.applyStreams(spec.streams, opts)
    expect(stream).toMatchObject({ series_id: 'health:ward-3:bpm', status: 'created' })
    expect(typeof stream?.id).toBe('number')
  })

  it('is idempotent: a second apply reports every entry unchanged with the same ids', async () => {
    const spec = parseRegistryFile(file(), 'test.yaml')
    const first = await h.db.registry.applyDevices(spec.devices, opts)
    const second = await h.db.registry.applyDevices(spec.devices, opts)
    expect(second).toEqual(first)
    const statuses = JSON.stringify(second).match(/"status":"(\w+)"/g)
    expect(new Set(statuses)).toEqual(new Set(['"status":"unchanged"']))
    const streams = await h.db.registry.applyStreams(spec.streams, opts)
    expect(streams[0]?.status).toBe('unchanged')
  })

  it('updates a changed threshold in place (same id) and leaves the rest unchanged', async () => {
    const before = (await h.db.registry.applyDevices(parseRegistryFile(file(), 't').devices, opts))[0]
    const after = (await h.db.registry.applyDevices(parseRegistryFile(file(95), 't').devices, opts))[0]
    const hb = before?.sensors[0]?.thresholds[0]
    const ha = after?.sensors[0]?.thresholds[0]
    expect(ha).toEqual({ name: 'hard-limits', id: hb?.id, status: 'updated' })
    expect(after?.sensors[0]?.thresholds[1]?.status).toBe('unchanged')
    expect(after?.status).toBe('unchanged')
  })

  it('a dry run reports changes but writes nothing', async () => {
    const dry = await h.db.registry.applyDevices(parseRegistryFile(file(80), 't').devices, { prune: false, dryRun: true })
    expect(dry[0]?.sensors[0]?.thresholds[0]?.status).toBe('updated')
    const real = await h.db.registry.applyDevices(parseRegistryFile(file(95), 't').devices, opts)
    expect(real[0]?.sensors[0]?.thresholds[0]?.status).toBe('unchanged')
  })

  it('--prune removes thresholds the file no longer lists', async () => {
    const extra = '          - { name: temporary, condition: greater_than, min: 100, severity: info }'
    const withExtra = await h.db.registry.applyDevices(parseRegistryFile(file(95, extra), 't').devices, opts)
    const tmp = withExtra[0]?.sensors[0]?.thresholds.find((t) => t.name === 'temporary')
    expect(tmp?.status).toBe('created')
    const kept = await h.db.registry.applyDevices(parseRegistryFile(file(95), 't').devices, opts)
    expect(kept[0]?.sensors[0]?.thresholds.map((t) => t.name)).toEqual(['hard-limits', 'comfort'])
    const pruned = await h.db.registry.applyDevices(parseRegistryFile(file(95), 't').devices, { prune: true, dryRun: false })
    expect(pruned[0]?.sensors[0]?.thresholds.find((t) => t.name === 'temporary')).toEqual({ name: 'temporary', id: tmp?.id, status: 'deleted' })
  })
})
