import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync, statSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { ROOT } from '../cli.js'
import { sleep } from './util.js'

let snapshot: Promise<string> | undefined
let snapshotDir: string | undefined

/**
 * A private copy of the built package (bin/, dist/, migrations/, package.json, the oclif manifest;
 * node_modules linked), taken once per test file after the globalSetup build. The fault tests run
 * the service for minutes, and other test runs on this checkout may `npm run build` (rm -rf dist)
 * meanwhile; the copy keeps every CLI call and service restart of one file on the same build.
 * It is run exactly as users run the installed package: `node <root>/bin/run.js ...`.
 */
export function packageRoot(): Promise<string> {
  snapshot ??= (async () => {
    for (let attempt = 0; attempt < 60; attempt++) {
      const manifest = join(ROOT, 'oclif.manifest.json')
      if (existsSync(join(ROOT, '.build-lock')) || !existsSync(join(ROOT, 'dist/commands')) || !existsSync(manifest)) {
        await sleep(1000)
        continue
      }
      const before = statSync(manifest).mtimeMs
      const dir = mkdtempSync(join(tmpdir(), 'ingest-fault-pkg-'))
      try {
        for (const p of ['bin', 'dist', 'migrations', 'package.json', 'oclif.manifest.json']) cpSync(join(ROOT, p), join(dir, p), { recursive: true })
        symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
      } catch {
        rmSync(dir, { recursive: true, force: true })
        await sleep(1000)
        continue
      }
      if (existsSync(join(ROOT, '.build-lock')) || !existsSync(manifest) || statSync(manifest).mtimeMs !== before) {
        rmSync(dir, { recursive: true, force: true })
        await sleep(1000)
        continue
      }
      snapshotDir = dir
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
      return dir
    }
    throw new Error('could not take a stable copy of the built package (a build kept running)')
  })()
  return snapshot
}

export async function binPath(): Promise<string> {
  return join(await packageRoot(), 'bin/run.js')
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** `node bin/run.js ...args` of the package copy with a clean environment plus `env`. */
export async function runCli(args: readonly string[], options: { env?: Record<string, string>; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  const bin = await binPath()
  const env: Record<string, string> = { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', LOG_LEVEL: 'warn', ...options.env }
  return new Promise((resolve) => {
    execFile('node', [bin, ...args], { env, cwd: options.cwd ?? ROOT, timeout: options.timeoutMs ?? 60_000, maxBuffer: 32 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

export function json<T = unknown>(r: CliResult): T {
  try {
    return JSON.parse(r.stdout) as T
  } catch {
    throw new Error(`not JSON (exit ${r.code}):\n${r.stdout}\n--- stderr:\n${r.stderr}`)
  }
}

/** Removes the copy now (optional: it is removed at process exit anyway). */
export function removePackageCopy(): void {
  if (snapshotDir) rmSync(snapshotDir, { recursive: true, force: true })
  snapshot = undefined
  snapshotDir = undefined
}
