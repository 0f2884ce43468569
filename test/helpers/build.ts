import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, statSync } from 'node:fs'
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

/** vitest globalSetup of the command tier: builds dist/ when src/ is newer (npm ci already builds). */
export default function setup(): void {
  const stamp = join(ROOT, 'oclif.manifest.json')
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= newest(join(ROOT, 'src'))) return
  execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' })
}
