import { execFileSync, spawnSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

import { afterEach, describe, expect, it } from 'vitest'

import { findCycles, importSpecifiers } from '../../../scripts/check-cycles.mjs'

const script = fileURLToPath(new URL('../../../scripts/check-cycles.mjs', import.meta.url))
const dirs: string[] = []

// A fixture tree in a temp dir: path (relative) -> file text.
function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'check-cycles-'))
  dirs.push(dir)
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true })
    writeFileSync(join(dir, path), text)
  }
  return dir
}

afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

// Acyclic: a -> b -> c, a -> c, plus imports that must not count (comment, string, dynamic, package).
const acyclic = {
  'a.ts': "import { b } from './b.js'\nimport { c } from './lib/c.js'\nexport const a = b + c\n",
  'b.ts': "import { c } from './lib/c.js'\nimport pg from 'pg'\nexport const b = c + String(pg)\n",
  'lib/c.ts': [
    "// import { a } from '../a.js'",
    "/* export * from '../b.js' */",
    "const s = \"import { a } from '../a.js'\"",
    "export async function lazy() { return import('../a.js') }",
    'export const c = s.length',
    '',
  ].join('\n'),
}

describe('check-cycles', () => {
  it('finds no cycle in an acyclic tree (comments, strings, dynamic import and packages ignored)', () => {
    expect(findCycles(tree(acyclic))).toEqual([])
  })

  it('reports a value cycle as a chain of paths', () => {
    const dir = tree({ ...acyclic, 'lib/c.ts': "import { a } from '../a.js'\nexport const c = 1\nexport const d = a\n" })
    expect(findCycles(dir)).toEqual([['a.ts', 'lib/c.ts', 'a.ts'], ['b.ts', 'lib/c.ts', 'a.ts', 'b.ts']])
  })

  it('counts a type-only cycle (import type / export type from), like ports/migrator.ts <-> ports/storage.ts', () => {
    const dir = tree({
      'ports/migrator.ts': "import type { Engine } from './storage.js'\nexport interface Migrator { engine: Engine }\n",
      'ports/storage.ts': "export type { Migrator } from './migrator.js'\nexport type Engine = 'sqlite'\n",
    })
    expect(findCycles(dir)).toEqual([['ports/migrator.ts', 'ports/storage.ts', 'ports/migrator.ts']])
  })

  it('resolves multi-line imports, export * from and side-effect imports', () => {
    expect(importSpecifiers("import {\n  x,\n  type Y,\n} from './x.js'\nexport * from './y.js'\nimport './z.js'\n")).toEqual(['./x.js', './y.js', './z.js'])
    const dir = tree({ 'x.ts': "import {\n  y,\n} from './y.js'\nexport const x = y\n", 'y.ts': "import './x.js'\nexport const y = 1\n" })
    expect(findCycles(dir)).toEqual([['x.ts', 'y.ts', 'x.ts']])
  })

  it('exits 1 and prints the chain from the command line, 0 when clean', () => {
    const clean = execFileSync(process.execPath, [script, tree(acyclic)], { encoding: 'utf8' })
    expect(clean).toContain('no import cycle')
    const bad = spawnSync(process.execPath, [script, tree({ 'p.ts': "import './q.js'\n", 'q.ts': "import './p.js'\n" })], { encoding: 'utf8' })
    expect(bad.status).toBe(1)
    expect(bad.stderr).toContain('p.ts -> q.ts -> p.ts')
  })
})
