import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { Redis } from 'ioredis'

import { freePort, sleep } from './util.js'

const live = new Set<PrivateRedis>()
let hooked = false

/** One command on a fresh, non-retrying ioredis connection (the test talks to Redis directly, not through the proxy). */
export async function redisCommand(port: number, args: readonly string[], timeoutMs = 2000): Promise<unknown> {
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, connectTimeout: timeoutMs, commandTimeout: timeoutMs, maxRetriesPerRequest: 0, enableOfflineQueue: false, retryStrategy: () => null })
  client.on('error', () => undefined)
  try {
    await client.connect()
    const [cmd, ...rest] = args
    return await client.call(cmd as string, ...rest)
  } finally {
    client.disconnect()
  }
}

/** A private `redis-server` child on a random loopback port, no persistence; kill() / start() again on the same port. */
export class PrivateRedis {
  port = 0
  child: ChildProcess | undefined
  readonly dir: string
  private output = ''

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'ingest-fault-redis-'))
  }

  static async create(): Promise<PrivateRedis> {
    if (!hooked) {
      hooked = true
      process.on('exit', () => {
        for (const r of live) r.killSync()
      })
    }
    const r = new PrivateRedis()
    live.add(r)
    r.port = await freePort()
    await r.start()
    return r
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', this.dir], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout?.on('data', (d: Buffer) => (this.output += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()))
    const deadline = Date.now() + 10_000
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server exited (${child.exitCode}): ${this.output.slice(-1000)}`)
      try {
        if ((await redisCommand(this.port, ['PING'], 500)) === 'PONG') return
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`redis-server did not answer PING: ${this.output.slice(-1000)}`)
      await sleep(50)
    }
  }

  /** SIGKILL (default) and wait for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.child
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    await exited
  }

  command(args: readonly string[]): Promise<unknown> {
    return redisCommand(this.port, args)
  }

  killSync(): void {
    try {
      this.child?.kill('SIGKILL')
    } catch {
      // gone
    }
    rmSync(this.dir, { recursive: true, force: true })
    live.delete(this)
  }

  async destroy(): Promise<void> {
    await this.kill()
    this.killSync()
  }
}
