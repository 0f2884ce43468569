import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'

import { ROOT } from './cli.js'

function newest(dir: string): number {
  let t = 0
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name)
    t = Math.max(t, entry.isDirectory() ? newest(p) : statSync(p).mtimeMs)
  }
  return t
}

const fresh = (): boolean => {
  const stamp = join(ROOT, 'oclif.manifest.json')
  return existsSync(stamp) && existsSync(join(ROOT, 'dist/commands')) && statSync(stamp).mtimeMs >= Math.max(newest(join(ROOT, 'src')), statSync(join(ROOT, 'package.json')).mtimeMs)
}

/**
 * vitest globalSetup of the tiers that run the built CLI: builds dist/ when src/ is newer (npm ci
 * already builds). A lock folder keeps concurrent test runs from rebuilding under each other.
 */
export default async function setup(): Promise<void> {
  // For in-process tests while the tree does not build (work in progress elsewhere); never set in CI.
  if (process.env['INGEST_TEST_SKIP_BUILD'] === '1') return
  const lock = join(ROOT, '.build-lock')
  const deadline = Date.now() + 180_000
  for (;;) {
    if (fresh()) return
    try {
      mkdirSync(lock)
      break
    } catch {
      if (Date.now() > deadline) throw new Error('timed out waiting for another build (.build-lock)')
      await new Promise((r) => setTimeout(r, 500))
    }
  }
  try {
    if (!fresh()) execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit', env: { ...process.env, NODE_ENV: 'production' } })
  } finally {
    rmSync(lock, { recursive: true, force: true })
  }
}
