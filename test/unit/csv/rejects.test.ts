import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { defaultRejectsPath, openRejectsWriter, readRejects, rejectRow } from '../../../src/lib/csv/rejects.js'
import { tempDir } from '../../helpers/services.js'

describe('rejects file', () => {
  const dir = tempDir()
  afterAll(() => dir.remove())

  it('names the file next to the input', () => {
    expect(defaultRejectsPath('/data/boiler-2024.csv')).toBe('/data/boiler-2024.rejects.csv')
    expect(defaultRejectsPath('/data/feed.CSV')).toBe('/data/feed.rejects.csv')
    expect(defaultRejectsPath('/data/feed.txt')).toBe('/data/feed.txt.rejects.csv')
  })

  it('rows are RFC 4180 with formula cells escaped', () => {
    expect(rejectRow({ line: 3, column: 'value', code: 'VALUE_NOT_NUMERIC', reason: '"4,9" is not a finite decimal number' })).toBe('3,value,VALUE_NOT_NUMERIC,"""4,9"" is not a finite decimal number"')
    expect(rejectRow({ line: 10, column: null, code: 'UNKNOWN_SENSOR', reason: 'no such sensor' })).toBe('10,,UNKNOWN_SENSOR,no such sensor')
    expect(rejectRow({ line: 4, column: '=cmd', code: 'X', reason: 'r' })).not.toContain(',=cmd,')
  })

  it('writes a header and one row per reject, and reads them back', async () => {
    const path = join(dir.path, 'a.rejects.csv')
    const { writer, kept } = await openRejectsWriter(path)
    expect(kept).toBe(0)
    const rejects = [
      { line: 3, column: 'value', code: 'VALUE_NOT_NUMERIC', reason: '"a, b" is not a finite decimal number' },
      { line: 9, column: null, code: 'CSV_SYNTAX', reason: 'Invalid Closing Quote' },
    ]
    for (const r of rejects) await writer.write(r)
    await writer.close()
    expect(readFileSync(path, 'utf8')).toBe(`line,column,code,reason\r\n${rejects.map((r) => `${rejectRow(r)}\r\n`).join('')}`)
    expect(await readRejects(path, 10)).toEqual(rejects)
    expect(await readRejects(path, 1)).toEqual(rejects.slice(0, 1))
    expect(await readRejects(join(dir.path, 'missing.csv'), 10)).toEqual([])
  })

  it('a resumed import keeps the rows through its checkpoint line and drops the rest (they are reported again)', async () => {
    const path = join(dir.path, 'b.rejects.csv')
    writeFileSync(path, ['line,column,code,reason', '2,value,VALUE_MISSING,x', '7,value,VALUE_MISSING,y', '12,timestamp,TIMESTAMP_INVALID,z', ''].join('\r\n'))
    const { writer, kept } = await openRejectsWriter(path, 7)
    expect(kept).toBe(2)
    await writer.write({ line: 12, column: 'timestamp', code: 'TIMESTAMP_INVALID', reason: 'z' })
    await writer.close()
    expect(readFileSync(path, 'utf8').split('\r\n')).toEqual(['line,column,code,reason', '2,value,VALUE_MISSING,x', '7,value,VALUE_MISSING,y', '12,timestamp,TIMESTAMP_INVALID,z', ''])
  })

  it('a fresh (not resumed) import truncates an old rejects file', async () => {
    const path = join(dir.path, 'c.rejects.csv')
    writeFileSync(path, 'line,column,code,reason\r\n5,value,VALUE_MISSING,old\r\n')
    const { writer } = await openRejectsWriter(path)
    await writer.close()
    expect(readFileSync(path, 'utf8')).toBe('line,column,code,reason\r\n')
  })
})
