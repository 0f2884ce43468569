import { describe, expect, it } from 'vitest'

import { parseRegistryFile } from '../../../src/lib/app/apply-registry.js'
import { ValidationError } from '../../../src/lib/errors/index.js'

function problemsOf(text: string): string[] {
  try {
    parseRegistryFile(text, 'site.yaml')
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError)
    expect((err as ValidationError).exitCode).toBe(2)
    return [...(err as ValidationError).problems]
  }
  throw new Error('expected a ValidationError')
}

const D = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
const S = '8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d'

describe('parseRegistryFile', () => {
  it('accepts YAML and JSON and normalises uuids', () => {
    const yaml = parseRegistryFile(`devices:\n  - uuid: ${D.toUpperCase()}\n    sensors: [{ uuid: ${S.replaceAll('-', '')}, type: temperature }]\n`, 'a.yaml')
    const json = parseRegistryFile(JSON.stringify({ devices: [{ uuid: D, sensors: [{ uuid: S, type: 'temperature' }] }] }), 'a.json')
    expect(yaml).toEqual(json)
    expect(yaml.devices[0]?.sensors[0]?.uuid).toBe(S)
    expect(parseRegistryFile('', 'empty.yaml')).toEqual({ devices: [], streams: [] })
  })

  it.each([
    ['devices: [', /^site\.yaml: not valid YAML or JSON: /],
    ['devices: 3', /^devices: must be a list, got number$/],
    [`devices:\n  - uuid: ${D}\n    colour: red`, /^devices\[0\]: unknown field "colour"$/],
    [`devices:\n  - uuid: nope`, /^devices\[0\]\.uuid: must be a UUID, got "nope"$/],
    [`devices:\n  - uuid: ${D}\n    sensors:\n      - uuid: ${S}\n        thresholds:\n          - { name: t, condition: between, min: 1 }`, /^devices\[0\]\.sensors\[0\]\.thresholds\[0\]\.condition: must be one of greater_than, less_than, equal_to, out_of_range$/],
    [`devices:\n  - uuid: ${D}\n    sensors:\n      - uuid: ${S}\n        thresholds:\n          - { name: t, condition: greater_than, min: "5" }`, /^devices\[0\]\.sensors\[0\]\.thresholds\[0\]\.min: must be a number, got the string "5"$/],
    [`devices:\n  - uuid: ${D}\n    sensors:\n      - uuid: ${S}\n        thresholds:\n          - { name: t, condition: out_of_range, min: 5, max: 1 }`, /thresholds\[0\]\.max: must be >= min \(5\)$/],
    [`devices:\n  - uuid: ${D}\n  - uuid: ${D.toUpperCase()}`, /^devices\[1\]\.uuid: duplicate device uuid/],
    [`streams:\n  - { domain: iot, source_id: a, stream_id: b }`, /^streams\[0\]\.domain: domain='iot' is not allowed/],
    ['a: 1\nb: 2\na: 3', /not valid YAML or JSON/],
  ])('refuses %j', (text, line) => {
    const lines = problemsOf(text)
    expect(lines.some((l) => line.test(l)), lines.join('\n')).toBe(true)
  })

  it('lists every problem of a file, not only the first', () => {
    const lines = problemsOf(`devices:\n  - uuid: nope\n    extra: 1\n    sensors:\n      - { uuid: ${S}, thresholds: [{ name: t, condition: x }] }`)
    expect(lines.length).toBeGreaterThanOrEqual(3)
  })
})
