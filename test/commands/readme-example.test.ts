import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { ROOT } from '../helpers/cli.js'
import { tempDir } from '../helpers/services.js'

/** The README's quick start, extracted from between its markers and run as it stands. */
function readmeExample(): string {
  const text = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const start = text.indexOf('<!-- readme-example:start -->')
  const end = text.indexOf('<!-- readme-example:end -->')
  expect(start).toBeGreaterThan(0)
  const block = text.slice(start, end)
  return block.slice(block.indexOf('```sh\n') + 6, block.lastIndexOf('```'))
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

describe('the README quick start', () => {
  const dir = tempDir()
  afterAll(() => {
    rmSync(join(ROOT, 'packet.json'), { force: true })
    dir.remove()
  })

  it('stores a 100-reading packet, answers the same packet again with 100 duplicates, and stops on SIGTERM', async () => {
    const port = await freePort()
    const script = `set -e\n${readmeExample()}\nwait\n`
    const child = spawn('bash', ['-c', script], {
      cwd: ROOT,
      detached: true,
      env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', PORT: String(port), INGEST_DATA_DIR: join(dir.path, 'data'), LOG_LEVEL: 'warn' },
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()))
    const code = await new Promise<number | null>((resolve) => {
      const timer = setTimeout(() => {
        try {
          process.kill(-(child.pid as number), 'SIGKILL')
        } catch {
          // already gone
        }
      }, 90_000)
      child.on('exit', (c) => {
        clearTimeout(timer)
        resolve(c)
      })
    })
    expect(code, `${stdout}\n--- stderr:\n${stderr}`).toBe(0)
    const answers = stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
    expect(answers[0]).toMatchObject({ inserted: 100, duplicates: 0, rejected: 0, unknown_sensors: [] })
    expect(answers[1]).toMatchObject({ inserted: 0, duplicates: 100 })
    expect(answers[2]).toMatchObject({ sensor_id: 1, final_state: expect.any(String) as unknown })
  }, 120_000)
})
