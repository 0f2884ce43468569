import { describe, expect, it } from 'vitest'

import { dedupFilterKey } from '../../../src/lib/app/ingest/ingest-service.js'
import { buildDedupKey } from '../../../src/lib/app/ingest/items.js'

describe('buildDedupKey (DESIGN §6)', () => {
  it.each([
    // the legacy `{sensor_id}:{ts:.6f}:{value:.6f}` shape (values as Python's f"{x:.6f}" prints them)
    { name: 'device time + value', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000 }, key: '7:1700000000.000000:21.500000' },
    { name: 'fractional seconds kept to 6 places', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000.123456 }, key: '7:1700000000.123456:21.500000' },
    { name: 'milliseconds time', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000.25 }, key: '7:1700000000.250000:21.500000' },
    { name: 'value rounded to 6 places', input: { sensorId: 3, value: 0.1 + 0.2, deviceTsSeconds: 1 }, key: '3:1.000000:0.300000' },
    { name: 'negative value', input: { sensorId: 3, value: -12.25, deviceTsSeconds: 1 }, key: '3:1.000000:-12.250000' },
    { name: 'zero value', input: { sensorId: 3, value: 0, deviceTsSeconds: 1 }, key: '3:1.000000:0.000000' },
    { name: 'a value that rounds up at the 7th place', input: { sensorId: 3, value: 1.0000005, deviceTsSeconds: 1 }, key: '3:1.000000:1.000001' },
    { name: 'large value', input: { sensorId: 3, value: 123_456_789.5, deviceTsSeconds: 1 }, key: '3:1.000000:123456789.500000' },
    // sequence appended when present
    { name: 'sequence appended', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000, sequence: 42 }, key: '7:1700000000.000000:21.500000:42' },
    { name: 'sequence 0 is a sequence', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000, sequence: 0 }, key: '7:1700000000.000000:21.500000:0' },
    { name: 'sequence without device time', input: { sensorId: 7, value: 21.5, deviceTsSeconds: null, sequence: 9 }, key: '7:-:21.500000:9' },
    { name: 'device time 0 is a time', input: { sensorId: 7, value: 1, deviceTsSeconds: 0 }, key: '7:0.000000:1.000000' },
    // a reading timed only by the packet-level ts: its index in the packet
    { name: 'packet-ts reading, index 0', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000, packetIndex: 0 }, key: '7:1700000000.000000:21.500000#0' },
    { name: 'packet-ts reading, index 3', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000, packetIndex: 3 }, key: '7:1700000000.000000:21.500000#3' },
    { name: 'packet-ts reading with sequence', input: { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000, sequence: 5, packetIndex: 2 }, key: '7:1700000000.000000:21.500000:5#2' },
    // msgId wins
    { name: 'msgId wins over everything', input: { sensorId: 7, value: 21.5, msgId: 'abc-1', deviceTsSeconds: 1_700_000_000, sequence: 5, packetIndex: 1 }, key: 'abc-1' },
    { name: 'msgId alone', input: { sensorId: 7, value: 21.5, msgId: 'abc-1' }, key: 'abc-1' },
    { name: 'empty msgId ignored', input: { sensorId: 7, value: 21.5, msgId: '', deviceTsSeconds: 1 }, key: '7:1.000000:21.500000' },
    { name: 'null msgId ignored', input: { sensorId: 7, value: 21.5, msgId: null, deviceTsSeconds: 1 }, key: '7:1.000000:21.500000' },
    // no device time, no sequence, no msgId: no key
    { name: 'nothing to key on', input: { sensorId: 7, value: 21.5 }, key: null },
    { name: 'nulls everywhere', input: { sensorId: 7, value: 21.5, msgId: null, deviceTsSeconds: null, sequence: null }, key: null },
    { name: 'packet index alone does not make a key', input: { sensorId: 7, value: 21.5, deviceTsSeconds: null, packetIndex: 2 }, key: null },
  ])('$name', ({ input, key }) => {
    expect(buildDedupKey(input)).toBe(key)
  })

  it('keys differ whenever the sensor, time, value, sequence or packet index differ', () => {
    const base = { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000, sequence: 1, packetIndex: 0 }
    const variants = [base, { ...base, sensorId: 8 }, { ...base, value: 21.500001 }, { ...base, deviceTsSeconds: 1_700_000_000.000001 }, { ...base, sequence: 2 }, { ...base, packetIndex: 1 }, { ...base, sequence: null }, { ...base, packetIndex: null }]
    const keys = variants.map((v) => buildDedupKey(v))
    expect(new Set(keys).size).toBe(variants.length)
  })

  it('the same reading sent twice gets the same key', () => {
    const r = { sensorId: 7, value: 21.5, deviceTsSeconds: 1_700_000_000.5, sequence: 3 }
    expect(buildDedupKey({ ...r })).toBe(buildDedupKey({ ...r }))
  })
})

describe('dedupFilterKey (the pre-filter key, scoped per sensor)', () => {
  it('no dedup key: no filter key', () => {
    expect(dedupFilterKey({ sensorId: 7, dedupKey: null })).toBeNull()
  })

  it('built keys already start with the sensor id and are used as they are', () => {
    expect(dedupFilterKey({ sensorId: 7, dedupKey: '7:1700000000.000000:21.500000' })).toBe('7:1700000000.000000:21.500000')
  })

  it('msgIds are scoped to their sensor', () => {
    expect(dedupFilterKey({ sensorId: 7, dedupKey: 'abc' })).toMatch(/^7:.*abc$/)
    expect(dedupFilterKey({ sensorId: 8, dedupKey: 'abc' })).not.toBe(dedupFilterKey({ sensorId: 7, dedupKey: 'abc' }))
    expect(dedupFilterKey({ sensorId: 1, dedupKey: '12:x' })).not.toBe(dedupFilterKey({ sensorId: 12, dedupKey: 'x' }))
  })

  it('two different stored keys of one sensor never share a filter key (a hit must mean "this key was stored")', () => {
    // The database keeps (7, 'abc') and (7, '7:abc') apart; the pre-filter must too, or the second is
    // answered `duplicate` without ever being stored.
    expect(dedupFilterKey({ sensorId: 7, dedupKey: '7:abc' })).not.toBe(dedupFilterKey({ sensorId: 7, dedupKey: 'abc' }))
  })
})
