#!/usr/bin/env node
// Benchmark dispatcher: `node bench/run.mjs <name> [flags]` (or `npm run bench -- <name> [flags]`) runs
// bench/<name>.mjs in a child process with the same flags; with no name it lists the benchmarks.
// A benchmark is any bench/*.mjs (except this file) with a `// @bench <summary>` line.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = dirname(fileURLToPath(import.meta.url))

function benchmarks() {
  const out = []
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.mjs') || f === 'run.mjs') continue
    const m = /^\/\/ @bench (.*)$/m.exec(readFileSync(join(dir, f), 'utf8'))
    if (m) out.push({ name: f.slice(0, -4), summary: m[1].trim() })
  }
  return out
}

const [name, ...rest] = process.argv.slice(2)
const list = benchmarks()

if (!name || name === '--list' || name === '-l') {
  console.log('usage: npm run bench -- <name> [flags]     (node bench/run.mjs <name> --usage for its flags)\n')
  const w = Math.max(...list.map((b) => b.name.length))
  for (const b of list) console.log(`  ${b.name.padEnd(w)}  ${b.summary}`)
  process.exit(0)
}

const found = list.find((b) => b.name === name)
if (!found) {
  console.error(`unknown benchmark "${name}"; known: ${list.map((b) => b.name).join(', ')}`)
  process.exit(2)
}

const child = spawn(process.execPath, [join(dir, `${name}.mjs`), ...rest], { stdio: 'inherit' })
// Forward Ctrl-C / SIGTERM so the benchmark can stop its servers and drop its scratch database.
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 130 : 1)))
