import fc from 'fast-check'
import { describe, expect, it } from 'vitest'

import { csvCell, escapeFormula, FORMULA_TRIGGERS, quoteField, toCsv } from '../../../src/lib/domain/csv-export.js'

/** A strict RFC 4180 reader (test oracle): CRLF records, quoted fields with doubled quotes. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = []
  let row: string[] = []
  let i = 0
  const n = text.length
  for (;;) {
    let cell = ''
    if (text[i] === '"') {
      i++
      for (;;) {
        if (i >= n) throw new Error('unterminated quoted field')
        const ch = text[i] as string
        if (ch === '"') {
          if (text[i + 1] === '"') {
            cell += '"'
            i += 2
            continue
          }
          i++
          break
        }
        cell += ch
        i++
      }
    } else {
      while (i < n && text[i] !== ',' && !(text[i] === '\r' && text[i + 1] === '\n')) {
        if (text[i] === '"' || text[i] === '\n' || text[i] === '\r') throw new Error(`bare ${JSON.stringify(text[i])} in an unquoted field at ${i}`)
        cell += text[i]
        i++
      }
    }
    row.push(cell)
    if (text[i] === ',') {
      i++
      continue
    }
    if (text[i] === '\r' && text[i + 1] === '\n') {
      i += 2
      rows.push(row)
      row = []
      if (i >= n) return rows
      continue
    }
    throw new Error(`unexpected ${JSON.stringify(text[i])} at ${i}`)
  }
}

const startsWithTrigger = (s: string): boolean => s.length > 0 && FORMULA_TRIGGERS.includes(s.charAt(0))

// Text that often starts with a trigger and holds quotes, commas, CR and LF.
const cellText = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.tuple(fc.constantFrom(...FORMULA_TRIGGERS, '"', ',', '\n', "'", ' '), fc.string({ unit: 'binary', maxLength: 20 })).map(([a, b]) => a + b),
  fc.constantFrom('=1+2', '=HYPERLINK("http://x","y")', '+cmd|\' /C calc\'!A0', '-2+3', '@SUM(A1)', '\t=1', '\r=1', 'a,b', 'say "hi"', 'line\r\nbreak', ''),
)

describe('CSV export (RFC 4180 + formula-injection escaping)', () => {
  it('escapes every formula trigger with a leading quote', () => {
    for (const t of FORMULA_TRIGGERS) expect(escapeFormula(`${t}1+1`)).toBe(`'${t}1+1`)
    expect(FORMULA_TRIGGERS).toEqual(expect.arrayContaining(['=', '+', '-', '@', '\t', '\r']))
    expect(escapeFormula('plain')).toBe('plain')
    expect(escapeFormula("'already")).toBe("'already")
    expect(escapeFormula('')).toBe('')
  })

  it('quotes fields with commas, quotes, CR or LF and doubles the quotes', () => {
    expect(quoteField('a,b')).toBe('"a,b"')
    expect(quoteField('say "hi"')).toBe('"say ""hi"""')
    expect(quoteField('a\nb')).toBe('"a\nb"')
    expect(quoteField('a\rb')).toBe('"a\rb"')
    expect(quoteField('plain')).toBe('plain')
  })

  it('cells: formula text is escaped then quoted; numbers stay numbers; null is empty; objects are JSON', () => {
    expect(csvCell('=1+2')).toBe("'=1+2")
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`)
    expect(csvCell('\r=1')).toBe(`"'\r=1"`)
    expect(csvCell(-5)).toBe('-5')
    expect(csvCell(21.5)).toBe('21.5')
    expect(csvCell('-5')).toBe("'-5")
    expect(csvCell(null)).toBe('')
    expect(csvCell(undefined)).toBe('')
    expect(csvCell(true)).toBe('true')
    expect(csvCell(new Date(0))).toBe('1970-01-01T00:00:00.000Z')
    expect(csvCell({ a: '=x', b: [1, 2] })).toBe('"{""a"":""=x"",""b"":[1,2]}"')
    expect(csvCell(['-1'])).toBe('"[""-1""]"')
  })

  it('a document has a header and CRLF-terminated records', () => {
    expect(toCsv(['a', 'b'], [['1', 2], ['=x', null]])).toBe("a,b\r\n1,2\r\n'=x,\r\n")
  })

  it('property: parsing the export gives back every cell (formula cells with their leading quote), and no cell starts with a trigger', () => {
    fc.assert(
      fc.property(fc.array(cellText, { minLength: 1, maxLength: 6 }), fc.array(fc.array(cellText, { minLength: 1, maxLength: 6 }), { maxLength: 8 }), (header, body) => {
        const width = header.length
        const rows = body.map((r) => Array.from({ length: width }, (_, i) => r[i] ?? ''))
        const parsed = parseCsv(toCsv(header, rows))
        const expected = [header, ...rows].map((r) => r.map((c) => (startsWithTrigger(c) ? `'${c}` : c)))
        expect(parsed).toEqual(expected)
        for (const r of parsed) for (const c of r) expect(startsWithTrigger(c)).toBe(false)
      }),
      { numRuns: 500 },
    )
  })
})
