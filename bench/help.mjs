#!/usr/bin/env node
// @bench CLI start-up: median wall time of `node bin/run.js --help` vs the `node -e 0` floor (target < 200 ms)
//
// Runs a frozen copy of the built CLI (bin/, dist/ and the manifest copied, node_modules linked).
// Interleaved: after 2 warm-ups of each, runs help, floor, help, floor ... R times each and reports the
// median [min..max] of both, the difference (what the CLI itself costs) and the ratio. Appends to
// bench/RESULTS.md unless --no-append.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

import { appendResults, cleanEnv, fmtMs, machineInfo, machineLines, max, median, min, REPO, snapshotBuild } from './lib/common.mjs'

const { values: flags } = parseArgs({
  options: {
    runs: { type: 'string', default: '10' },
    warmups: { type: 'string', default: '2' },
    'target-ms': { type: 'string', default: '200' },
    'no-append': { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
    usage: { type: 'boolean', default: false },
  },
})

if (flags.usage) {
  console.log('npm run bench -- help [--runs 10] [--warmups 2] [--target-ms 200] [--no-append] [--strict]')
  process.exit(0)
}

// A frozen copy of the build (others rebuild dist/ concurrently); removed at the end.
const snap = mkdtempSync(join(tmpdir(), `ingest-bench-help-${process.pid}-`))
process.on('exit', () => rmSync(snap, { recursive: true, force: true }))
const bin = await snapshotBuild(join(snap, 'app'))
const runs = Math.max(1, Math.min(1000, Number(flags.runs)))
const warmups = Math.max(0, Math.min(100, Number(flags.warmups)))
const targetMs = Number(flags['target-ms'])
const env = cleanEnv()

function time(args) {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 })
  const ms = performance.now() - t0
  if (r.status !== 0) throw new Error(`node ${args.join(' ')} exited ${r.status}: ${String(r.stderr).slice(-500)}`)
  return ms
}

const helpArgs = [bin, '--help']
const floorArgs = ['-e', '0']
const machine = machineInfo()

for (let i = 0; i < warmups; i++) {
  time(helpArgs)
  time(floorArgs)
}
const help = []
const floor = []
for (let i = 0; i < runs; i++) {
  help.push(time(helpArgs))
  floor.push(time(floorArgs))
}

const h = median(help)
const f = median(floor)
const pass = h < targetMs
const lines = [
  `node bin/run.js --help : median ${fmtMs(h)} [${fmtMs(min(help))}..${fmtMs(max(help))}]  (${runs} runs after ${warmups} warm-ups)`,
  `node -e 0 (floor)      : median ${fmtMs(f)} [${fmtMs(min(floor))}..${fmtMs(max(floor))}]`,
  `CLI cost above floor   : ${fmtMs(h - f)}  (help / floor = ${(h / f).toFixed(2)}×)`,
  `target < ${targetMs} ms : ${pass ? 'PASS' : 'FAIL'}`,
]
console.log(lines.join('\n'))

if (!flags['no-append']) {
  appendResults(
    [
      `## help: CLI start-up (${machine.date})`,
      '',
      ...machineLines(machine),
      `- runs: ${runs} interleaved with the floor, after ${warmups} warm-ups each`,
      '',
      '| command | median | min | max |',
      '|---|---|---|---|',
      `| \`node bin/run.js --help\` | ${fmtMs(h)} | ${fmtMs(min(help))} | ${fmtMs(max(help))} |`,
      `| \`node -e 0\` (floor) | ${fmtMs(f)} | ${fmtMs(min(floor))} | ${fmtMs(max(floor))} |`,
      '',
      `CLI cost above the floor ${fmtMs(h - f)} (${(h / f).toFixed(2)}× the floor). Target median < ${targetMs} ms: **${pass ? 'PASS' : 'FAIL'}**.`,
    ].join('\n'),
  )
  console.log('appended to bench/RESULTS.md')
}
process.exit(flags.strict && !pass ? 1 : 0)
