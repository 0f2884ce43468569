#!/usr/bin/env node
// `npm test`: lint, typecheck, import cycles in src (scripts/check-cycles.mjs), then every test tier (unit, contract, integration, commands, fault)
// in one vitest run; ends with a plain "N passed, N failed" line. Exit 0 only when all passed.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const steps = [
  ['lint', 'npx', ['eslint', '.']],
  ['typecheck', 'npx', ['tsc', '-p', 'tsconfig.test.json']],
  ['cycles', process.execPath, ['scripts/check-cycles.mjs']],
]
let failedSteps = 0
for (const [name, cmd, args] of steps) {
  const t0 = Date.now()
  const r = spawnSync(cmd, args, { stdio: 'inherit' })
  console.log(`[${name}] ${r.status === 0 ? 'ok' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  if (r.status !== 0) failedSteps++
}

const dir = mkdtempSync(join(tmpdir(), 'ingest-vitest-'))
const report = join(dir, 'report.json')
const extra = process.argv.slice(2)
const t0 = Date.now()
const r = spawnSync('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra], { stdio: 'inherit' })
let passed = 0
let failed = 0
let skipped = 0
if (existsSync(report)) {
  const json = JSON.parse(readFileSync(report, 'utf8'))
  passed = json.numPassedTests ?? 0
  failed = (json.numFailedTests ?? 0) + (json.numFailedTestSuites ?? 0) * 0
  skipped = (json.numPendingTests ?? 0) + (json.numTodoTests ?? 0)
  // A file that fails to load counts as a failure even when it ran no test.
  for (const file of json.testResults ?? []) if (file.status === 'failed' && (file.assertionResults ?? []).every((a) => a.status !== 'failed')) failed++
}
rmSync(dir, { recursive: true, force: true })
console.log(`[tests] vitest exited ${r.status} in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
failed += failedSteps
if (r.status !== 0 && failed === 0) failed = 1
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`)
process.exit(failed === 0 && r.status === 0 ? 0 : 1)
