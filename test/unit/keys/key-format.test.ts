import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { generateKey, sha256Hex } from '../../../src/lib/app/keys.js'
import {
  BASE62_ALPHABET,
  crc32,
  encodeBase62,
  formatKey,
  KEY_PATTERN,
  keyChecksum,
  parseKey,
  randomBase62,
} from '../../../src/lib/domain/keys.js'

const b62 = (n: number) => fc.string({ unit: fc.constantFrom(...BASE62_ALPHABET.split('')), minLength: n, maxLength: n })
const kind = fc.constantFrom('role' as const, 'device' as const)

describe('CRC32 and base62', () => {
  it('matches the standard CRC32 check values', () => {
    expect(crc32('123456789')).toBe(0xcbf43926)
    expect(crc32('')).toBe(0)
    expect(crc32('The quick brown fox jumps over the lazy dog')).toBe(0x414fa339)
  })

  it('encodes fixed-width base62 and fits every CRC32 in 6 characters', () => {
    expect(encodeBase62(0, 6)).toBe('000000')
    expect(encodeBase62(61, 2)).toBe('0z')
    expect(encodeBase62(62, 2)).toBe('10')
    expect(encodeBase62(0xffffffff, 6)).toHaveLength(6)
    expect(keyChecksum('ingk_x_y')).toMatch(/^[0-9A-Za-z]{6}$/)
  })

  it('randomBase62 uses only the alphabet, has the asked length, and skips biased bytes', () => {
    let calls = 0
    const bytes = (n: number) => {
      calls++
      return Uint8Array.from({ length: n }, (_, i) => (calls === 1 && i < 3 ? 255 : i))
    }
    const s = randomBase62(32, bytes)
    expect(s).toMatch(/^[0-9A-Za-z]{32}$/)
    // bytes 255 (>= 248) are skipped: the first character comes from byte 3
    expect(s.startsWith('3456')).toBe(true)
    fc.assert(fc.property(fc.integer({ min: 1, max: 64 }), fc.uint8Array({ minLength: 64, maxLength: 64 }), (len, pool) => {
      let i = 0
      const src = (n: number) => Uint8Array.from({ length: n }, () => pool[i++ % pool.length] ?? 0)
      if (pool.every((b) => b >= 248)) return
      expect(randomBase62(len, src)).toMatch(new RegExp(`^[0-9A-Za-z]{${len}}$`))
    }))
  })
})

describe('key format', () => {
  it('generated keys have the documented shape, a 12-char kid and a 32-char secret (>= 128 bits)', () => {
    for (const k of ['role', 'device'] as const) {
      const g = generateKey(k)
      expect(g.key).toMatch(KEY_PATTERN)
      expect(g.key.startsWith(k === 'role' ? 'ingk_' : 'ingd_')).toBe(true)
      expect(g.kid).toMatch(/^[0-9A-Za-z]{12}$/)
      const secret = g.key.split('_')[2]?.slice(0, 32) ?? ''
      expect(secret).toMatch(/^[0-9A-Za-z]{32}$/)
      expect(32 * Math.log2(62)).toBeGreaterThanOrEqual(128)
      expect(g.key).toHaveLength(4 + 1 + 12 + 1 + 32 + 6)
      expect(g.hash).toBe(sha256Hex(g.key))
      expect(g.hash).toMatch(/^[0-9a-f]{64}$/)
      expect(parseKey(g.key)).toEqual({ kind: k, kid: g.kid, valid: true })
    }
  })

  it('two generated keys never share a kid or a secret', () => {
    const keys = Array.from({ length: 200 }, () => generateKey('role'))
    expect(new Set(keys.map((k) => k.kid)).size).toBe(200)
    expect(new Set(keys.map((k) => k.key)).size).toBe(200)
  })

  it('round trip: parseKey(formatKey(kind, kid, secret)) gives the kind and kid back, valid', () => {
    fc.assert(fc.property(kind, b62(12), b62(32), (k, kid, secret) => {
      expect(parseKey(formatKey(k, kid, secret))).toEqual({ kind: k, kid, valid: true })
    }))
  })

  it('the checksum refuses every single-character change of a key', () => {
    const alphabet = `${BASE62_ALPHABET}_-.+/= `
    fc.assert(
      fc.property(kind, b62(12), b62(32), fc.nat(), fc.constantFrom(...alphabet.split('')), (k, kid, secret, pos, ch) => {
        const key = formatKey(k, kid, secret)
        const i = pos % key.length
        fc.pre(key[i] !== ch)
        const mutated = key.slice(0, i) + ch + key.slice(i + 1)
        const parsed = parseKey(mutated)
        // Either refused as a prefixed key, or (a changed prefix) no longer a prefixed key at all.
        expect(parsed.kind === 'legacy' || !parsed.valid).toBe(true)
      }),
      { numRuns: 2000 },
    )
  })

  it('refuses truncated, extended and swapped-prefix keys without calling them legacy', () => {
    const { key } = generateKey('device')
    expect(parseKey(key.slice(0, -1))).toEqual({ kind: 'device', kid: '', valid: false })
    expect(parseKey(`${key}0`)).toEqual({ kind: 'device', kid: '', valid: false })
    const swapped = `ingk_${key.slice(5)}`
    expect(parseKey(swapped)).toMatchObject({ kind: 'role', valid: false })
    expect(parseKey('ingd_')).toEqual({ kind: 'device', kid: '', valid: false })
  })

  it.each(['', 'abc', 'legacy-device-key-1234567890', 'INGK_AAAAAAAAAAAA_' + 'a'.repeat(38), 'ingx_aaaaaaaaaaaa_bbb', '3f0e8d5c2b1a4c1e9a571d2f3e4a5b6c'])('unprefixed %j is a legacy key', (text) => {
    expect(parseKey(text)).toEqual({ kind: 'legacy' })
  })

  it('generated strings are all legacy-or-prefixed, never throw', () => {
    fc.assert(fc.property(fc.string({ maxLength: 80 }), (s) => {
      const p = parseKey(s)
      expect(['legacy', 'role', 'device']).toContain(p.kind)
    }))
  })
})
