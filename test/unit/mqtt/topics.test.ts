import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { parseTopicKinds, routeTopic, subscriptionFilters, topicSensorMismatch } from '../../../src/lib/mqtt/topics.js'
import { decodeJsonPayload } from '../../../src/lib/mqtt/payload.js'

describe('MQTT topics', () => {
  it('subscribes each kind in the shared group, under the prefix (a / added when missing)', () => {
    expect(subscriptionFilters(['iot', 'universal'], { prefix: '', group: 'ingest' })).toEqual(['$share/ingest/iot/sensors/+/readings', '$share/ingest/+/+/+/data'])
    expect(subscriptionFilters(['iot'], { prefix: 't1', group: 'g' })).toEqual(['$share/g/t1/iot/sensors/+/readings'])
    expect(subscriptionFilters(['universal'], { prefix: 'a/b/', group: 'g' })).toEqual(['$share/g/a/b/+/+/+/data'])
  })

  it('subscribes with plain filters when the group is none (any case)', () => {
    expect(subscriptionFilters(['iot', 'universal'], { prefix: 't1', group: 'none' })).toEqual(['t1/iot/sensors/+/readings', 't1/+/+/+/data'])
    expect(subscriptionFilters(['iot'], { prefix: '', group: 'NONE' })).toEqual(['iot/sensors/+/readings'])
    expect(subscriptionFilters(['iot'], { prefix: '', group: 'nonexistent' })).toEqual(['$share/nonexistent/iot/sensors/+/readings'])
  })

  it('routes IoT, universal (iot as a domain included) and anything else', () => {
    expect(routeTopic('iot/sensors/12/readings', '')).toEqual({ kind: 'iot', segment: '12' })
    expect(routeTopic('t1/iot/sensors/x/readings', 't1')).toEqual({ kind: 'iot', segment: 'x' })
    expect(routeTopic('t1/health/ward-3/bpm/data', 't1/')).toEqual({ kind: 'universal', domain: 'health', source: 'ward-3', stream: 'bpm' })
    expect(routeTopic('iot/sensors/1/data', '')).toEqual({ kind: 'universal', domain: 'iot', source: 'sensors', stream: '1' })
    expect(routeTopic('other/iot/sensors/1/readings', 't1')).toEqual({ kind: 'unknown' })
    expect(routeTopic('iot/sensors/1/readings/extra', '')).toEqual({ kind: 'unknown' })
  })

  it('a numeric topic segment must name the payload sensor; a name binds nothing', () => {
    expect(topicSensorMismatch('12', 12)).toBe(false)
    expect(topicSensorMismatch('012', 12)).toBe(false)
    expect(topicSensorMismatch('13', 12)).toBe(true)
    expect(topicSensorMismatch('boiler', 12)).toBe(false)
    fc.assert(fc.property(fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 1, max: 1e9 }), (a, b) => {
      expect(topicSensorMismatch(String(a), b)).toBe(a !== b)
    }))
  })

  it('parses --topics, refusing unknown names', () => {
    expect(parseTopicKinds('iot, universal,iot')).toEqual({ kinds: ['iot', 'universal'], unknown: [] })
    expect(parseTopicKinds('iot,foo')).toEqual({ kinds: ['iot'], unknown: ['foo'] })
  })
})

describe('MQTT payload bytes', () => {
  const limits = { maxBytes: 1024, maxDepth: 8 }
  it('refuses empty, non-UTF-8, non-JSON, prototype keys, too deep and too large payloads', () => {
    expect(decodeJsonPayload(new Uint8Array(), limits)).toMatchObject({ ok: false })
    expect(decodeJsonPayload(Uint8Array.from([0xff, 0xfe, 0x7b]), limits)).toEqual({ ok: false, error: 'Invalid JSON: the payload is not UTF-8' })
    expect(decodeJsonPayload(Buffer.from('{"a":'), limits)).toMatchObject({ ok: false })
    expect(decodeJsonPayload(Buffer.from('{"__proto__":{"x":1}}'), limits)).toMatchObject({ ok: false })
    expect(decodeJsonPayload(Buffer.from('[[[[[[[[[[1]]]]]]]]]]'), limits)).toMatchObject({ ok: false })
    expect(decodeJsonPayload(Buffer.alloc(2000, 0x20), limits)).toMatchObject({ ok: false })
    expect(decodeJsonPayload(Buffer.from('{"sensorId":1}'), limits)).toEqual({ ok: true, value: { sensorId: 1 } })
  })

  it('property: arbitrary bytes never throw', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (b) => {
      expect(typeof decodeJsonPayload(b, limits).ok).toBe('boolean')
    }))
  })
})
