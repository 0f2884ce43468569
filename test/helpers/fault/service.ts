import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { binPath } from './package.js'
import { freePort, sleep } from './util.js'

export interface ExitInfo {
  code: number | null
  signal: NodeJS.Signals | null
  /** Epoch ms of the exit. */
  at: number
}

const live = new Set<ServiceProcess>()
let hooked = false

/**
 * `node bin/run.js serve --port P` as a child process, exactly as users run it, with a clean
 * environment (PATH, HOME) plus the test's. stderr (pino JSON, LOG_LEVEL=warn) is kept for the
 * log-pattern check. `start()` again after a kill reuses the port and the environment.
 */
export class ServiceProcess {
  port = 0
  child: ChildProcess | undefined
  stderr = ''
  stdout = ''
  /** Every run's exit, in order. */
  readonly exits: ExitInfo[] = []
  private exitWaiter: Promise<ExitInfo> | undefined

  constructor(
    readonly env: Record<string, string>,
    readonly cwd: string,
  ) {}

  static async create(env: Record<string, string>, cwd: string): Promise<ServiceProcess> {
    if (!hooked) {
      hooked = true
      process.on('exit', () => {
        for (const s of live) s.child?.kill('SIGKILL')
      })
    }
    const s = new ServiceProcess(env, cwd)
    live.add(s)
    s.port = await freePort()
    try {
      await s.start()
    } catch (err) {
      await s.destroy()
      throw err
    }
    return s
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  get pid(): number | undefined {
    return this.child?.pid
  }

  /** Spawns and waits until `/ready` answers 200 (or fails with the captured stderr). */
  async start(readyTimeoutMs = 30_000): Promise<void> {
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', RATE_LIMIT_ENABLED: '0', LOG_LEVEL: 'warn', ...this.env }
    const bin = await binPath()
    const child = spawn('node', [bin, 'serve', '--port', String(this.port), '--host', '127.0.0.1'], { cwd: this.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.exitWaiter = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const info = { code, signal, at: Date.now() }
        this.exits.push(info)
        resolve(info)
      })
    })
    const deadline = Date.now() + readyTimeoutMs
    for (;;) {
      if (!this.running) throw new Error(`serve exited during start (code ${child.exitCode}, signal ${child.signalCode}):\n${this.stderr.slice(-3000)}`)
      try {
        const r = await fetch(`${this.url}/ready`, { signal: AbortSignal.timeout(1000) })
        await r.arrayBuffer()
        if (r.status === 200) return
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error(`serve not ready within ${readyTimeoutMs} ms:\n${this.stderr.slice(-3000)}`)
      await sleep(100)
    }
  }

  /** Sends a signal; returns the epoch ms it was sent. */
  kill(signal: NodeJS.Signals): number {
    const t = Date.now()
    this.child?.kill(signal)
    return t
  }

  /** Waits for the current run's exit (at most `timeoutMs`; then throws). */
  async waitExit(timeoutMs = 60_000): Promise<ExitInfo> {
    if (!this.exitWaiter) throw new Error('not started')
    let timer: NodeJS.Timeout | undefined
    try {
      return await Promise.race([
        this.exitWaiter,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`serve did not exit within ${timeoutMs} ms`)), timeoutMs)
        }),
      ])
    } finally {
      clearTimeout(timer)
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return
    this.kill('SIGKILL')
    await this.waitExit(10_000).catch(() => undefined)
  }

  async destroy(): Promise<void> {
    await this.stop()
    live.delete(this)
    // Opt-in: FAULT_LOG_DIR=/some/dir keeps every service's stderr for a post-mortem.
    const dir = process.env['FAULT_LOG_DIR']
    if (dir) {
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, `serve-${this.port}-${Date.now()}.log`), this.stderr)
    }
  }

  /** GET a JSON route (null on any failure: the service may be down). */
  async getJson<T = Record<string, unknown>>(path: string, headers: Record<string, string> = {}, timeoutMs = 2000): Promise<{ status: number; body: T } | null> {
    try {
      const key = this.env['INGEST_API_KEY']
      const r = await fetch(`${this.url}${path}`, { headers: { ...(key === undefined ? {} : { 'x-api-key': key }), ...headers }, signal: AbortSignal.timeout(timeoutMs) })
      const text = await r.text()
      let body: unknown = text
      try {
        body = JSON.parse(text)
      } catch {
        // not JSON
      }
      return { status: r.status, body: body as T }
    } catch {
      return null
    }
  }

  /** `/metrics` as name{labels} -> value (null when unreachable). */
  async metrics(timeoutMs = 2000): Promise<Map<string, number> | null> {
    try {
      const r = await fetch(`${this.url}/metrics`, { signal: AbortSignal.timeout(timeoutMs) })
      if (r.status !== 200) return null
      return parsePrometheus(await r.text())
    } catch {
      return null
    }
  }

  /** The JSON log lines (pino) whose `msg` matches. */
  logLines(msg: RegExp): Array<Record<string, unknown>> {
    const out: Array<Record<string, unknown>> = []
    for (const line of this.stderr.split('\n')) {
      if (!line.startsWith('{')) continue
      try {
        const o = JSON.parse(line) as Record<string, unknown>
        if (typeof o['msg'] === 'string' && msg.test(o['msg'])) out.push(o)
      } catch {
        // not JSON
      }
    }
    return out
  }

  /**
   * The log-pattern check (reliability.md §2.4 item 8): no unhandled rejections, no stack overflow,
   * no uncaught exception, and none of `secrets` (API keys or their secret part) anywhere in stderr
   * or stdout. Returns the problems found.
   */
  logProblems(secrets: readonly string[]): string[] {
    const text = `${this.stderr}\n${this.stdout}`
    const problems: string[] = []
    for (const [name, re] of [
      ['unhandledRejection', /unhandledRejection|Unhandled ?Rejection/i],
      ['Maximum call stack', /Maximum call stack/],
      ['uncaughtException', /uncaughtException/i],
      ['Internal Server Error logged as unhandled error', /"msg":"unhandled error"/],
    ] as const) {
      const m = re.exec(text)
      if (m) problems.push(`${name}: ${text.slice(Math.max(0, m.index - 200), m.index + 300)}`)
    }
    for (const s of secrets) if (s.length >= 16 && text.includes(s)) problems.push(`API key material in the log: ${s.slice(0, 10)}...`)
    return problems
  }
}

export function parsePrometheus(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    if (i < 0) continue
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

/** The first sample whose name (and optional label text) matches. */
export function metric(m: Map<string, number> | null, name: string, labels?: string): number | undefined {
  if (!m) return undefined
  for (const [k, v] of m) {
    if (k === name || k.startsWith(`${name}{`)) {
      if (labels === undefined || k.includes(labels)) return v
    }
  }
  return undefined
}
