import { execFile } from 'node:child_process'
import { chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'

import { descendants, freePort } from './util.js'

const BIN = '/usr/lib/postgresql/15/bin'

function run(cmd: string, args: string[], timeoutMs = 60_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: timeoutMs, env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LANG: 'C' } }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0
      resolve({ code, stdout, stderr })
    })
  })
}

function uidOf(user: string): { uid: number; gid: number } {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':')
    if (f[0] === user) return { uid: Number(f[2]), gid: Number(f[3]) }
  }
  throw new Error(`no user ${user}`)
}

/** Every private cluster still alive, for the exit hook (a crashed test run must not leave postmasters). */
const live = new Set<PrivatePostgres>()
let hooked = false
function hookExit(): void {
  if (hooked) return
  hooked = true
  process.on('exit', () => {
    for (const p of live) p.killSync()
  })
}

/**
 * A private PostgreSQL 15 cluster for one test file: initdb (as the postgres user: initdb refuses
 * root) into a temp folder, started on a random loopback port with fsync and synchronous_commit on.
 * Faults: `stopImmediate()` (crash, recovery on the next start), `pause()`/`resume()` (SIGSTOP /
 * SIGCONT on the postmaster and every backend). `destroy()` always cleans up.
 */
export class PrivatePostgres {
  readonly dir: string
  readonly dataDir: string
  readonly logFile: string
  port = 0
  paused = false
  private pausedPids: number[] = []

  private constructor(dir: string) {
    this.dir = dir
    this.dataDir = join(dir, 'data')
    this.logFile = join(dir, 'postgres.log')
  }

  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`
  }

  static async create(): Promise<PrivatePostgres> {
    hookExit()
    const dir = mkdtempSync(join(tmpdir(), 'ingest-fault-pg-'))
    const { uid, gid } = uidOf('postgres')
    chownSync(dir, uid, gid)
    const p = new PrivatePostgres(dir)
    mkdirSync(p.dataDir, { mode: 0o700 })
    chownSync(p.dataDir, uid, gid)
    live.add(p)
    const init = await run('runuser', ['-u', 'postgres', '--', `${BIN}/initdb`, '-D', p.dataDir, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'])
    if (init.code !== 0) {
      await p.destroy()
      throw new Error(`initdb failed (${init.code}): ${init.stderr}`)
    }
    p.port = await freePort()
    await p.start()
    return p
  }

  async start(): Promise<void> {
    const opts = `-p ${this.port} -k ${this.dataDir} -c listen_addresses=127.0.0.1 -c fsync=on -c synchronous_commit=on -c max_connections=100 -c log_min_messages=warning`
    const r = await run('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, '-D', this.dataDir, '-l', this.logFile, '-o', opts, '-w', '-t', '60', 'start'])
    if (r.code !== 0) throw new Error(`pg_ctl start failed (${r.code}): ${r.stderr}\n${this.log().slice(-2000)}`)
    this.paused = false
  }

  /** Crash: `pg_ctl stop -m immediate` (no checkpoint; the next start runs crash recovery). */
  async stopImmediate(): Promise<void> {
    if (this.paused) this.resume()
    const r = await run('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, '-D', this.dataDir, '-m', 'immediate', '-w', 'stop'])
    if (r.code !== 0) throw new Error(`pg_ctl stop -m immediate failed (${r.code}): ${r.stderr}`)
  }

  postmasterPid(): number | null {
    try {
      const pid = Number(readFileSync(join(this.dataDir, 'postmaster.pid'), 'utf8').split('\n')[0])
      return Number.isInteger(pid) && pid > 0 ? pid : null
    } catch {
      return null
    }
  }

  /** The postmaster and all its descendants (backends, checkpointer, walwriter...). */
  pids(): number[] {
    const pm = this.postmasterPid()
    return pm === null ? [] : [pm, ...descendants(pm)]
  }

  /** Hang: SIGSTOP the postmaster first (so it forks nothing new), then every descendant. */
  pause(): number[] {
    const pm = this.postmasterPid()
    if (pm === null) throw new Error('postgres is not running')
    process.kill(pm, 'SIGSTOP')
    const pids = [pm, ...descendants(pm)]
    for (const pid of pids.slice(1)) {
      try {
        process.kill(pid, 'SIGSTOP')
      } catch {
        // exited meanwhile
      }
    }
    this.pausedPids = pids
    this.paused = true
    return pids
  }

  resume(): void {
    const pids = new Set([...this.pausedPids, ...this.pids()])
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGCONT')
      } catch {
        // gone
      }
    }
    this.pausedPids = []
    this.paused = false
  }

  /** A direct client on the private cluster (the checker, fault helpers). */
  async client(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 5000 })
    await c.connect()
    return c
  }

  async query<R extends Record<string, unknown> = Record<string, unknown>>(sql: string, params: unknown[] = []): Promise<R[]> {
    const c = await this.client()
    try {
      return (await c.query(sql, params)).rows as R[]
    } finally {
      await c.end().catch(() => undefined)
    }
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8')
    } catch {
      return ''
    }
  }

  /** Synchronous last resort (process exit): SIGCONT + SIGKILL everything, remove the folder. */
  killSync(): void {
    for (const pid of [...this.pausedPids, ...this.pids()]) {
      try {
        process.kill(pid, 'SIGCONT')
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
    try {
      rmSync(this.dir, { recursive: true, force: true })
    } catch {
      // best effort
    }
    live.delete(this)
  }

  async destroy(): Promise<void> {
    if (this.paused) this.resume()
    if (existsSync(join(this.dataDir, 'postmaster.pid'))) {
      await run('runuser', ['-u', 'postgres', '--', `${BIN}/pg_ctl`, '-D', this.dataDir, '-m', 'immediate', '-w', '-t', '20', 'stop'])
    }
    this.killSync()
  }
}
