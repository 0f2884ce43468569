import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { normaliseUuid } from '../../../src/lib/domain/uuid.js'

describe('normaliseUuid', () => {
  const canonical = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
  it.each([canonical, canonical.toUpperCase(), canonical.replaceAll('-', ''), `{${canonical}}`, ` ${canonical} `, `urn:uuid:${canonical}`])('accepts %s', (input) => {
    expect(normaliseUuid(input)).toBe(canonical)
  })
  it.each(['', 'not-a-uuid', canonical.slice(1), `${canonical}0`, canonical.replace('3', 'g'), '3f0e8d5c2b1a-4c1e-9a57-1d2f3e4a5b6c', `{${canonical}`])('refuses %s', (input) => {
    expect(normaliseUuid(input)).toBeUndefined()
  })
  it('is idempotent and always lower-case hyphenated', () => {
    fc.assert(
      fc.property(fc.uuid(), (u) => {
        const n = normaliseUuid(u.toUpperCase().replaceAll('-', ''))
        expect(n).toBe(u.toLowerCase())
        expect(normaliseUuid(n ?? '')).toBe(n)
      }),
    )
  })
})
