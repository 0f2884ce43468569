import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import { describe, expect, it } from 'vitest'

import { VARIABLES } from '../../../src/lib/config/variables.js'

const root = fileURLToPath(new URL('../../../', import.meta.url))
const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8')
const START = '<!-- env-table:start -->'
const END = '<!-- env-table:end -->'

function envBlock(text: string): string {
  const start = text.indexOf(START)
  const end = text.indexOf(END)
  expect(start, 'README has the env-table start marker').toBeGreaterThanOrEqual(0)
  expect(end, 'README has the env-table end marker after the start marker').toBeGreaterThan(start)
  return text.slice(start + START.length, end)
}

describe('README', () => {
  it('gives the two set-up commands', () => {
    expect(readme).toContain('npm ci && npx ingest serve')
    expect(readme).toContain('npm test')
  })

  it('documents every environment variable and alias', () => {
    const missing: string[] = []
    for (const [name, spec] of Object.entries(VARIABLES)) {
      const aliases: readonly string[] = 'aliases' in spec ? spec.aliases : []
      for (const n of [name, ...aliases]) if (!envBlock(readme).includes(`\`${n}\``)) missing.push(n)
    }
    expect(missing).toEqual([])
  })

  it('has the environment variable table that scripts/env-table.mjs generates now', () => {
    const generated = execFileSync(process.execPath, ['scripts/env-table.mjs'], { cwd: root, encoding: 'utf8' })
    expect(generated.split('\n').filter((l) => l.startsWith('| `'))).toHaveLength(Object.keys(VARIABLES).length)
    // When this fails, run: node scripts/env-table.mjs --write
    expect(envBlock(readme).trim()).toBe(generated.trim())
  })
})
