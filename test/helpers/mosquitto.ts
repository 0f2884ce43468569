import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import mqtt, { type MqttClient } from 'mqtt'
import pg from 'pg'

import { binPath, removePackageCopy } from './fault/package.js'
import { type Fleet, setupFleet } from './fault/setup.js'
import { freePort } from './fault/util.js'
import { createTestDatabase, type TestDatabase } from './services.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

const live = new Set<PrivateBroker>()
let hooked = false

/**
 * A private Mosquitto for one test file, on a random loopback port with a known configuration
 * (reliability.md §1.6): persistence on and saved on every change, no cap on queued messages (the
 * system defaults drop QoS 1 messages of slow or offline subscribers), every packet logged so a test
 * can see PUBACKs on the wire. `stop()`/`start()` restart it on the same port with its sessions.
 */
export class PrivateBroker {
  child: ChildProcess | undefined
  port = 0
  readonly dir: string
  readonly logFile: string
  private readonly confFile: string
  /** With `tls`: the PEM of the private CA that signed the broker's certificate (for 127.0.0.1). */
  caFile: string | undefined

  private constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'ingest-mosquitto-'))
    this.logFile = join(this.dir, 'mosquitto.log')
    this.confFile = join(this.dir, 'mosquitto.conf')
  }

  static async create(options: { start?: boolean; tls?: boolean } = {}): Promise<PrivateBroker> {
    if (!hooked) {
      hooked = true
      process.on('exit', () => {
        for (const b of live) b.child?.kill('SIGKILL')
      })
    }
    const b = new PrivateBroker()
    live.add(b)
    b.port = await freePort()
    const tls = options.tls ? b.makeCertificates() : []
    writeFileSync(
      b.confFile,
      [
        `listener ${b.port} 127.0.0.1`,
        ...tls,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${b.dir}/`,
        'autosave_interval 1',
        'autosave_on_changes true',
        'max_queued_messages 0',
        'max_inflight_messages 20',
        'persistent_client_expiration 1h',
        `log_dest file ${b.logFile}`,
        'log_type all',
        'connection_messages true',
        '',
      ].join('\n'),
    )
    // Started as root, mosquitto drops to its own user: that user must write the log and persistence file.
    const owner = process.getuid?.() === 0 ? mosquittoUser() : undefined
    if (owner) for (const path of [b.dir, ...readdirSync(b.dir).map((n) => join(b.dir, n))]) chownSync(path, owner.uid, owner.gid)
    if (options.start ?? true) await b.start()
    return b
  }

  get url(): string {
    return `${this.caFile ? 'mqtts' : 'mqtt'}://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** A private CA and a server certificate for 127.0.0.1 (openssl); returns the listener's TLS lines. */
  private makeCertificates(): string[] {
    const f = (name: string) => join(this.dir, name)
    const ssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'ignore' })
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=ingest test CA', '-keyout', f('ca.key'), '-out', f('ca.crt'))
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', f('server.key'), '-out', f('server.csr'))
    writeFileSync(f('san.ext'), 'subjectAltName=IP:127.0.0.1\n')
    ssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-days', '1', '-extfile', f('san.ext'), '-out', f('server.crt'))
    this.caFile = f('ca.crt')
    return [`cafile ${f('ca.crt')}`, `certfile ${f('server.crt')}`, `keyfile ${f('server.key')}`]
  }

  /** Starts mosquitto and waits until it accepts a connection. */
  async start(timeoutMs = 10_000): Promise<void> {
    const child = spawn('mosquitto', ['-c', this.confFile], { stdio: ['ignore', 'ignore', 'pipe'] })
    this.child = child
    let stderr = ''
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (!this.running) throw new Error(`mosquitto exited at start: ${stderr}`)
      const ok = await new Promise<boolean>((resolve) => {
        const probe = mqtt.connect(this.url, { reconnectPeriod: 0, connectTimeout: 1000, ...(this.caFile ? { ca: readFileSync(this.caFile) } : {}) })
        probe.once('connect', () => {
          resolve(true)
          probe.end(true)
        })
        probe.once('error', () => probe.end(true, () => resolve(false)))
        probe.once('close', () => resolve(false))
      })
      if (ok) return
      if (Date.now() > deadline) throw new Error(`mosquitto did not accept connections within ${timeoutMs} ms: ${stderr}`)
      await sleep(100)
    }
  }

  /** SIGTERM: mosquitto writes its persistence file (sessions, queued messages) and exits. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child
    if (!child || !this.running) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    await Promise.race([exited, sleep(10_000)])
  }

  log(): string {
    try {
      return readFileSync(this.logFile, 'utf8')
    } catch {
      return ''
    }
  }

  /** PUBACKs the broker received from clients whose id starts with `clientPrefix`. */
  pubacksFrom(clientPrefix: string): number {
    let n = 0
    for (const line of this.log().split('\n')) if (line.includes(`Received PUBACK from ${clientPrefix}`)) n++
    return n
  }

  async destroy(): Promise<void> {
    await this.stop('SIGKILL')
    live.delete(this)
    rmSync(this.dir, { recursive: true, force: true })
  }
}

function mosquittoUser(): { uid: number; gid: number } | undefined {
  for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
    const f = line.split(':')
    if (f[0] === 'mosquitto') return { uid: Number(f[2]), gid: Number(f[3]) }
  }
  return undefined
}

export interface Message {
  topic: string
  payload: string
}

/**
 * A publisher that waits for every PUBACK (reliability.md §2.4: what was acked is what must be
 * stored). QoS 1 with `window` messages in flight; mqtt.js keeps unacked publishes and resends them
 * after a reconnect, so a broker restart loses nothing that was acked. Resolves with the count acked.
 */
export class Publisher {
  private held = false

  private constructor(
    private client: MqttClient,
    private readonly url: string,
    private readonly clientId: string,
    private readonly caFile?: string,
  ) {}

  static async connect(url: string, clientId: string, caFile?: string): Promise<Publisher> {
    return new Publisher(await Publisher.open(url, clientId, caFile), url, clientId, caFile)
  }

  private static async open(url: string, clientId: string, caFile: string | undefined): Promise<MqttClient> {
    const client = await mqtt.connectAsync(url, { clientId, clean: true, reconnectPeriod: 200, connectTimeout: 5000, ...(caFile ? { ca: readFileSync(caFile) } : {}) })
    client.on('error', () => undefined)
    return client
  }

  /**
   * Publishes every message, `window` at a time, each until the broker PUBACKs it: a publish without a
   * PUBACK within 5 s (a broker restart) is sent again (the msgId keeps it idempotent). With `intervalMs`,
   * message i is not sent before start + i × intervalMs (a device's steady rate; a backlog after an
   * outage goes out as fast as the window allows). `onAcked` gets the count so far and the message's index.
   * Resolves with the count acked.
   */
  async publishAll(messages: readonly Message[], options: { window?: number; intervalMs?: number; onAcked?: (acked: number, index: number) => void; timeoutMs?: number } = {}): Promise<number> {
    const window = options.window ?? 100
    const started = Date.now()
    const deadline = started + (options.timeoutMs ?? 120_000)
    let next = 0
    let acked = 0
    const worker = async (): Promise<void> => {
      while (next < messages.length) {
        const index = next++
        const m = messages[index] as Message
        const due = started + index * (options.intervalMs ?? 0)
        if (due > Date.now()) await sleep(due - Date.now())
        for (;;) {
          if (Date.now() > deadline) throw new Error(`publishing did not finish in time (${acked} of ${messages.length} acked)`)
          if (this.held) {
            await sleep(50)
            continue
          }
          let timer: NodeJS.Timeout | undefined
          try {
            await Promise.race([
              this.client.publishAsync(m.topic, m.payload, { qos: 1 }),
              new Promise((_, reject) => {
                timer = setTimeout(() => reject(new Error('no PUBACK within 5 s')), 5000)
              }),
            ])
            break
          } catch {
            await sleep(100)
          } finally {
            clearTimeout(timer)
          }
        }
        acked++
        options.onAcked?.(acked, index)
      }
    }
    await Promise.all(Array.from({ length: window }, () => worker()))
    return acked
  }

  /** Disconnects (as a publisher process that went away) until resume(); unacked publishes are sent again then. */
  async hold(): Promise<void> {
    this.held = true
    await this.client.endAsync(true).catch(() => undefined)
  }

  async resume(): Promise<void> {
    this.client = await Publisher.open(this.url, this.clientId, this.caFile)
    this.held = false
  }

  async close(): Promise<void> {
    await this.client.endAsync(true).catch(() => undefined)
  }
}

/** Polls `fn` until it returns true (or throws `what` after `timeoutMs`). */
export async function eventually(what: string, fn: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await fn()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

/** An IoT reading message of reference §9.2 with a unique msgId (so its dedup key exists). */
export function readingMessage(prefix: string, sensorId: number, i: number, now = Date.now(), tag = 'm'): Message {
  const p = prefix === '' || prefix.endsWith('/') ? prefix : `${prefix}/`
  return { topic: `${p}iot/sensors/${sensorId}/readings`, payload: JSON.stringify({ sensorId, value: 40 + (i % 20), timestamp: new Date(now - 60_000 + (i % 1000)).toISOString(), msgId: `${tag}-${i}` }) }
}

/**
 * `node bin/run.js mqtt listen --port P` as a child process of the package copy (test/helpers/fault/package.ts),
 * with a clean environment plus the test's; `start()` again after a kill reuses port and environment.
 */
export class ListenerProcess {
  child: ChildProcess | undefined
  stderr = ''
  stdout = ''
  readonly exits: Array<{ code: number | null; signal: NodeJS.Signals | null }> = []
  private exited: Promise<void> | undefined

  private constructor(
    readonly bin: string,
    readonly env: Record<string, string>,
    readonly cwd: string,
    readonly port: number,
    readonly args: readonly string[],
  ) {}

  static async create(bin: string, env: Record<string, string>, cwd: string, args: readonly string[] = []): Promise<ListenerProcess> {
    const l = new ListenerProcess(bin, env, cwd, await freePort(), args)
    listeners.add(l)
    if (!listenersHooked) {
      listenersHooked = true
      process.on('exit', () => {
        for (const x of listeners) x.child?.kill('SIGKILL')
      })
    }
    await l.start()
    return l
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null
  }

  /** Spawns and waits until the probe port answers /health (the broker may still be down). */
  async start(timeoutMs = 30_000): Promise<void> {
    const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? '/tmp', LOG_LEVEL: 'warn', MQTT_STATS_LOG_INTERVAL_SECONDS: '0', ...this.env }
    const child = spawn('node', [this.bin, 'mqtt', 'listen', '--port', String(this.port), ...this.args], { cwd: this.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout?.on('data', (d: Buffer) => (this.stdout += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()))
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        this.exits.push({ code, signal })
        resolve()
      }),
    )
    await eventually(`mqtt listen to answer /health (stderr: ${this.stderr.slice(-2000)})`, async () => {
      if (!this.running) throw new Error(`mqtt listen exited at start (${child.exitCode}, ${child.signalCode}):\n${this.stderr.slice(-3000)}`)
      return (await this.get('/health'))?.status === 200
    }, timeoutMs)
  }

  async get<T = Record<string, unknown>>(path: string): Promise<{ status: number; body: T } | null> {
    try {
      const key = this.env['INGEST_API_KEY']
      const r = await fetch(`${this.url}${path}`, { headers: key === undefined ? {} : { 'x-api-key': key }, signal: AbortSignal.timeout(2000) })
      return { status: r.status, body: (await r.json()) as T }
    } catch {
      return null
    }
  }

  /** `/mqtt/stats`'s `stats` object (null when unreachable). */
  async stats(): Promise<Record<string, unknown> | null> {
    const r = await this.get<{ stats?: Record<string, unknown> }>('/mqtt/stats')
    return r?.body.stats ?? null
  }

  kill(signal: NodeJS.Signals): void {
    this.child?.kill(signal)
  }

  async waitExit(timeoutMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    await Promise.race([this.exited, sleep(timeoutMs)])
    const last = this.exits.at(-1)
    if (!last || this.running) throw new Error(`mqtt listen did not exit within ${timeoutMs} ms`)
    return last
  }

  /** Unhandled rejections, uncaught exceptions, stack overflows in the log. */
  logProblems(): string[] {
    const text = `${this.stderr}\n${this.stdout}`
    return [/unhandledRejection|Unhandled ?Rejection/i, /uncaughtException/i, /Maximum call stack/].filter((re) => re.test(text)).map((re) => `${re.source}: ${text.slice(0, 2000)}`)
  }

  async destroy(): Promise<void> {
    if (this.running) {
      this.kill('SIGKILL')
      await this.waitExit(10_000).catch(() => undefined)
    }
    listeners.delete(this)
  }
}

const listeners = new Set<ListenerProcess>()
let listenersHooked = false

/**
 * What an MQTT process test file owns: a private broker (started or not), a PostgreSQL database of its
 * own with a fleet registered through the CLI (2 devices x 4 humidity sensors), a temp folder, the
 * listener processes it started and a client to count rows. `destroy()` cleans up everything.
 */
export class MqttWorld {
  readonly procs: ListenerProcess[] = []

  private constructor(
    readonly broker: PrivateBroker,
    readonly db: TestDatabase,
    readonly dir: string,
    readonly fleet: Fleet,
    readonly bin: string,
    readonly pg: pg.Client,
  ) {}

  static async create(options: { startBroker?: boolean } = {}): Promise<MqttWorld> {
    const broker = await PrivateBroker.create({ start: options.startBroker ?? true })
    const db = await createTestDatabase()
    const dir = mkdtempSync(join(tmpdir(), 'ingest-mqtt-fault-'))
    const bin = await binPath()
    const fleet = await setupFleet({ DATABASE_URL: db.url, INGEST_DATA_DIR: join(dir, 'setup') }, dir, { devices: 2, sensorsPerDevice: 4 })
    const client = new pg.Client({ connectionString: db.url })
    await client.connect()
    return new MqttWorld(broker, db, dir, fleet, bin, client)
  }

  /** A listener's environment: its own data folder (local DLQ), the broker, a topic prefix and client id. */
  env(prefix: string, clientId: string, extra: Record<string, string> = {}): Record<string, string> {
    const data = join(this.dir, `data-${clientId}`)
    mkdirSync(data, { recursive: true })
    return { DATABASE_URL: this.db.url, INGEST_DATA_DIR: data, INGEST_API_KEY: PROBE_KEY, MQTT_URL: this.broker.url, MQTT_TOPIC_PREFIX: prefix, MQTT_CLIENT_ID: clientId, MQTT_CONNECTIONS: '8', ...extra }
  }

  /** Starts `mqtt listen`; with `connected`, waits until every connection is up and subscribed. */
  async listener(env: Record<string, string>, args: string[] = [], options: { connected?: boolean } = {}): Promise<ListenerProcess> {
    const l = await ListenerProcess.create(this.bin, env, this.dir, args)
    this.procs.push(l)
    if (options.connected ?? true) {
      await eventually('the listener to connect', async () => (await l.get<{ health?: { connected?: boolean } }>('/mqtt/health'))?.body.health?.connected === true, 20_000)
      await sleep(500)
    }
    return l
  }

  /** `n` readings spread over the fleet's sensors, msgIds `<tag>-<i>`. */
  messages(prefix: string, tag: string, n: number): Message[] {
    const ids = this.fleet.devices.flatMap((d) => d.sensors.map((s) => s.id))
    const now = Date.now()
    return Array.from({ length: n }, (_, i) => readingMessage(prefix, ids[i % ids.length] as number, i, now, tag))
  }

  /** Rows of msgIds `<tag>-*` and their distinct (sensor, key) pairs. */
  async count(tag: string): Promise<{ rows: number; keys: number }> {
    const r = await this.pg.query<{ n: string; d: string }>('SELECT count(*) AS n, count(DISTINCT (sensor_id, dedup_key)) AS d FROM sensor_readings WHERE dedup_key LIKE $1', [`${tag}-%`])
    return { rows: Number(r.rows[0]?.n), keys: Number(r.rows[0]?.d) }
  }

  /** Indexes i < n whose msgId `<tag>-<i>` is not stored. */
  async missing(tag: string, n: number): Promise<number[]> {
    const r = await this.pg.query<{ dedup_key: string }>('SELECT dedup_key FROM sensor_readings WHERE dedup_key LIKE $1', [`${tag}-%`])
    const seen = new Set(r.rows.map((x) => x.dedup_key))
    return Array.from({ length: n }, (_, i) => i).filter((i) => !seen.has(`${tag}-${i}`))
  }

  async destroy(): Promise<void> {
    for (const p of this.procs) await p.destroy()
    await this.pg.end().catch(() => undefined)
    await this.db.drop().catch(() => undefined)
    await this.broker.destroy()
    rmSync(this.dir, { recursive: true, force: true })
    removePackageCopy()
  }
}

/** The global key of the listeners' probe ports (/mqtt/stats needs a credential). */
export const PROBE_KEY = 'mqtt-fault-global-key-3b9e'
