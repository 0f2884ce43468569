import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

import { describe, expect, it } from 'vitest'

import { acquireCsvRunLock } from '../../../src/lib/adapters/csv/run-lock.js'

const LOCKS = join(tmpdir(), 'ingest-csv-locks')
const lockFiles = (): string[] => readdirSync(LOCKS).filter((f) => f.endsWith('.lock'))
const holderOf = (path: string): { pid?: number; startedAt?: number } => JSON.parse(readFileSync(path, 'utf8')) as { pid?: number; startedAt?: number }

describe('acquireCsvRunLock: one run of a job at a time on this host', () => {
  it('refuses while a live process holds the job, takes over once it is gone, releases its own lock', async () => {
    const job = randomUUID()
    const first = acquireCsvRunLock(job, 'db-a', 1000)
    expect(first.ok).toBe(true)
    if (!first.ok) return
    const mine = lockFiles().find((f) => holderOf(join(LOCKS, f)).startedAt === 1000 && holderOf(join(LOCKS, f)).pid === process.pid)
    expect(mine).toBeDefined()
    // Another database: its own lock.
    const other = acquireCsvRunLock(job, 'db-b', 1000)
    expect(other.ok).toBe(true)
    if (other.ok) other.release()

    // The lock now held by another live process (a sleeping child).
    const child = spawn('sleep', ['30'])
    const path = join(LOCKS, mine as string)
    writeFileSync(path, JSON.stringify({ pid: child.pid, host: hostname(), startedAt: 2000 }))
    try {
      expect(acquireCsvRunLock(job, 'db-a', 3000)).toEqual({ ok: false, holder: { pid: child.pid, host: hostname(), startedAt: 2000 } })
      // Our release never removes a lock another process holds.
      first.release()
      expect(holderOf(path).pid).toBe(child.pid)
    } finally {
      child.kill('SIGKILL')
      await new Promise((r) => child.once('exit', r))
    }
    // Its process is gone: the next run takes over.
    const again = acquireCsvRunLock(job, 'db-a', 4000)
    expect(again.ok).toBe(true)
    expect(holderOf(path)).toMatchObject({ pid: process.pid, startedAt: 4000 })
    if (again.ok) again.release()
    expect(lockFiles()).not.toContain(mine)
  })
})
