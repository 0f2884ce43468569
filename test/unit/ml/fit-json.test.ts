import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { fitJson } from '../../../src/lib/domain/ml/index.js'

describe('fitJson (SQL Server nvarchar(1000) explanations)', () => {
  it('leaves an answer that fits unchanged', () => {
    const answer = { explanation: 'ok', possible_causes: ['a'], confidence: 0.5 }
    expect(fitJson(answer, 1000)).toBe(JSON.stringify(answer))
  })

  it('shortens long strings to valid JSON within the limit, keeping every key', () => {
    const answer = { severity: 'HIGH', explanation: 'x'.repeat(5000), possible_causes: ['y'.repeat(800), 'short'], recommended_action: 'z'.repeat(3000), confidence: 0.93 }
    const text = fitJson(answer, 1000)
    expect(text.length).toBeLessThanOrEqual(1000)
    const back = JSON.parse(text) as typeof answer
    expect(Object.keys(back)).toEqual(Object.keys(answer))
    expect(back.severity).toBe('HIGH')
    expect(back.confidence).toBe(0.93)
    expect(back.explanation.endsWith('…')).toBe(true)
    expect(back.explanation.length).toBeGreaterThan(200)
  })

  it('counts UTF-16 units and never splits a surrogate pair', () => {
    const text = fitJson({ explanation: '🔥'.repeat(2000) }, 1000)
    expect(text.length).toBeLessThanOrEqual(1000)
    expect(text).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/)
    expect(JSON.parse(text)).toHaveProperty('explanation')
  })

  it('drops trailing members when short strings alone cannot make it fit', () => {
    const many = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i]))
    const text = fitJson(many, 1000)
    expect(text.length).toBeLessThanOrEqual(1000)
    expect(JSON.parse(text)).toHaveProperty('k0', 0)
  })

  it('property: any JSON object gives valid JSON within the limit', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), fc.integer({ min: 2, max: 1200 }), (value, max) => {
        const text = fitJson(value, max)
        expect(text.length).toBeLessThanOrEqual(max)
        expect(() => JSON.parse(text) as unknown).not.toThrow()
      }),
      { numRuns: 300 },
    )
  })
})
