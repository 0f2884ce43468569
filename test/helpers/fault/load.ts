import { Agent, request } from 'node:http'

import type { FaultDevice, Fleet } from './setup.js'
import { sleep } from './util.js'

/** One generated reading and what the clients learnt about it (the ledger, reliability.md §2.4). */
export interface ReadingRecord {
  sensorId: number
  sensorUuid: string
  deviceUuid: string
  /** sensor_ts as sent (epoch seconds, unique per reading). */
  ts: number
  value: number
  /** The dedup key the service builds: `${sensorId}:${ts.toFixed(6)}:${value.toFixed(6)}`. */
  key: string
  /** ok = a 200 whose receipt said stored, duplicate or dead_lettered; fail = a definite refusal; unknown = never a definite answer. */
  outcome: 'ok' | 'fail' | 'unknown'
  /** The receipt status of the first ok answer (stored | duplicate | dead_lettered), or the refusal. */
  receipt?: string
  /** Some answer said dead_lettered (an ack: its DLQ entry committed). */
  deadLettered: boolean
  /** HTTP attempts that carried it. */
  attempts: number
}

/** One HTTP attempt. */
export interface RequestRecord {
  worker: number
  /** 1 = first try; >1 = a client retry of the same body. */
  attempt: number
  t0: number
  t1: number
  latencyMs: number
  /** null = no HTTP answer (timeout, reset, refused). */
  status: number | null
  /** Network error code (ECONNRESET, ECONNREFUSED, TIMEOUT, ...). */
  error?: string
  /** Retry-After of a 429/503, seconds. */
  retryAfter?: number
  readings: number
}

export interface LoadOptions {
  /** Base URL (a function: a restarted service may move). */
  url: () => string
  fleet: Fleet
  /** Concurrent clients, one keep-alive connection each. */
  workers: number
  /** Target readings per second over all workers. */
  rate: number
  /** Readings per packet, uniformly in [min, max]. */
  packetSize?: [number, number]
  /** Per-request client timeout. */
  requestTimeoutMs?: number
  /** Retry unknown outcomes (timeout, reset, 5xx, 429) with the same body until ok or the retry deadline. */
  retry?: boolean
  /** Upper bound of the wait between retries (Retry-After is honoured up to it). */
  maxRetryDelayMs?: number
}

interface Receipt {
  status: string
  code?: string
}

/**
 * The load generator: N workers, each with its own keep-alive connection, posting 10–50-reading
 * packets of one device to `/ingest/packets` at a paced total rate. Every reading has a unique
 * `sensor_ts` (within the last hour) and so a unique dedup key. Every attempt and every reading's
 * outcome is recorded in memory, outside the processes the tests kill.
 */
export class LoadGenerator {
  readonly readings = new Map<string, ReadingRecord>()
  readonly requests: RequestRecord[] = []
  private seq = 0
  private readonly baseMs = Date.now() - 50 * 60_000
  private generating = false
  private retryDeadline = Number.POSITIVE_INFINITY
  private workersDone: Promise<void>[] = []
  private readonly agents: Agent[] = []
  private readonly opts: Required<LoadOptions>
  readonly retriesSent = { count: 0 }
  /** Requests sent and not yet answered (or failed). */
  inFlight = 0

  constructor(options: LoadOptions) {
    this.opts = { packetSize: [10, 50], requestTimeoutMs: 10_000, retry: true, maxRetryDelayMs: 1000, ...options }
  }

  start(): void {
    this.generating = true
    for (let w = 0; w < this.opts.workers; w++) {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 })
      this.agents.push(agent)
      this.workersDone.push(this.worker(w, agent))
    }
  }

  /** Stops making new packets; workers still retry what they hold until `retryForMs` from now. */
  async stop(retryForMs = 0): Promise<void> {
    this.generating = false
    this.retryDeadline = Date.now() + retryForMs
    await Promise.all(this.workersDone)
    for (const a of this.agents) a.destroy()
  }

  private avgPacket(): number {
    return (this.opts.packetSize[0] + this.opts.packetSize[1]) / 2
  }

  private makePacket(worker: number): { device: FaultDevice; body: string; records: ReadingRecord[] } {
    const devices = this.opts.fleet.devices
    const device = devices[worker % devices.length] as FaultDevice
    const [lo, hi] = this.opts.packetSize
    const n = lo + Math.floor(Math.random() * (hi - lo + 1))
    const records: ReadingRecord[] = []
    for (let i = 0; i < n; i++) {
      const seq = this.seq++
      const sensor = device.sensors[seq % device.sensors.length] as FaultDevice['sensors'][number]
      const ts = (this.baseMs + seq) / 1000
      const value = Math.round((40 + (seq % 2000) / 100) * 100) / 100
      const rec: ReadingRecord = { sensorId: sensor.id, sensorUuid: sensor.uuid, deviceUuid: device.uuid, ts, value, key: `${sensor.id}:${ts.toFixed(6)}:${value.toFixed(6)}`, outcome: 'unknown', deadLettered: false, attempts: 0 }
      this.readings.set(rec.key, rec)
      records.push(rec)
    }
    const body = JSON.stringify({ device_uuid: device.uuid, readings: records.map((r) => ({ sensor_uuid: r.sensorUuid, value: r.value, sensor_ts: r.ts })) })
    return { device, body, records }
  }

  private async worker(w: number, agent: Agent): Promise<void> {
    const intervalMs = (this.opts.workers * this.avgPacket() * 1000) / this.opts.rate
    await sleep(Math.random() * intervalMs)
    let next = Date.now()
    while (this.generating) {
      const packet = this.makePacket(w)
      await this.send(w, agent, packet)
      next += intervalMs * (0.5 + Math.random())
      const now = Date.now()
      if (next < now) next = now
      else await sleep(next - now)
    }
  }

  private async send(w: number, agent: Agent, packet: { device: FaultDevice; body: string; records: ReadingRecord[] }): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      for (const r of packet.records) r.attempts++
      if (attempt > 1) this.retriesSent.count++
      const res = await this.post(agent, packet.device.key, packet.body)
      this.requests.push({ worker: w, attempt, t0: res.t0, t1: res.t1, latencyMs: res.t1 - res.t0, status: res.status, ...(res.error === undefined ? {} : { error: res.error }), ...(res.retryAfter === undefined ? {} : { retryAfter: res.retryAfter }), readings: packet.records.length })
      let retryAfterMs = 200
      if (res.status === 200 && res.receipts && res.receipts.length === packet.records.length) {
        res.receipts.forEach((rc, i) => {
          const rec = packet.records[i] as ReadingRecord
          if (rc.status === 'stored' || rc.status === 'duplicate' || rc.status === 'dead_lettered') {
            if (rc.status === 'dead_lettered') rec.deadLettered = true
            if (rec.outcome !== 'ok') rec.receipt = rc.status
            rec.outcome = 'ok'
          } else if (rec.outcome !== 'ok') {
            rec.outcome = 'fail'
            rec.receipt = `${rc.status}${rc.code ? `:${rc.code}` : ''}`
          }
        })
        return
      }
      const definite = res.status !== null && res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429
      if (definite) {
        for (const r of packet.records) {
          if (r.outcome !== 'ok') {
            r.outcome = 'fail'
            r.receipt = `http ${res.status}`
          }
        }
        return
      }
      // Unknown outcome: retry the same body (the dedup key makes it safe) while allowed.
      if (res.retryAfter !== undefined) retryAfterMs = res.retryAfter * 1000
      if (!this.opts.retry) return
      const delay = Math.min(this.opts.maxRetryDelayMs, Math.max(100, retryAfterMs)) * (0.5 + Math.random() / 2)
      if (Date.now() + delay > this.retryDeadline) return
      await sleep(delay)
    }
  }

  private post(agent: Agent, deviceKey: string, body: string): Promise<{ t0: number; t1: number; status: number | null; error?: string; receipts?: Receipt[]; retryAfter?: number }> {
    const url = new URL('/ingest/packets', this.opts.url())
    const t0 = Date.now()
    this.inFlight++
    return new Promise((resolve) => {
      let settled = false
      const done = (r: { status: number | null; error?: string; receipts?: Receipt[]; retryAfter?: number }) => {
        if (settled) return
        settled = true
        this.inFlight--
        clearTimeout(timer)
        resolve({ t0, t1: Date.now(), ...r })
      }
      const req = request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'x-device-key': deviceKey } },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', (err: NodeJS.ErrnoException) => done({ status: null, error: err.code ?? err.message }))
          res.on('end', () => {
            const status = res.statusCode ?? 0
            const ra = Number(res.headers['retry-after'])
            let receipts: Receipt[] | undefined
            if (status === 200) {
              try {
                receipts = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { receipts?: Receipt[] }).receipts
              } catch {
                receipts = undefined
              }
            }
            done({ status, ...(receipts === undefined ? {} : { receipts }), ...(Number.isFinite(ra) ? { retryAfter: ra } : {}) })
          })
        },
      )
      const timer = setTimeout(() => {
        req.destroy(Object.assign(new Error('client timeout'), { code: 'TIMEOUT' }))
      }, this.opts.requestTimeoutMs)
      req.on('error', (err: NodeJS.ErrnoException) => done({ status: null, error: err.code ?? err.message }))
      req.end(body)
    })
  }

  /**
   * Sends up to `n` already-acknowledged readings again (same sensor, sensor_ts and value: a client
   * retry of something that was stored) in packets of `perPacket`; returns every receipt status
   * (`http <status>` / the network error when a packet got no 200). Not recorded in the ledger.
   */
  async resendAcked(n: number, perPacket = 25): Promise<{ receipts: string[]; latenciesMs: number[] }> {
    const acked = [...this.readings.values()].filter((r) => r.outcome === 'ok').slice(0, n)
    const byDevice = new Map<string, ReadingRecord[]>()
    for (const r of acked) byDevice.set(r.deviceUuid, [...(byDevice.get(r.deviceUuid) ?? []), r])
    const receipts: string[] = []
    const latenciesMs: number[] = []
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    try {
      for (const [uuid, recs] of byDevice) {
        const device = this.opts.fleet.devices.find((d) => d.uuid === uuid) as FaultDevice
        for (let i = 0; i < recs.length; i += perPacket) {
          const part = recs.slice(i, i + perPacket)
          const body = JSON.stringify({ device_uuid: uuid, readings: part.map((r) => ({ sensor_uuid: r.sensorUuid, value: r.value, sensor_ts: r.ts })) })
          const res = await this.post(agent, device.key, body)
          latenciesMs.push(res.t1 - res.t0)
          if (res.status === 200 && res.receipts) receipts.push(...res.receipts.map((x) => x.status))
          else receipts.push(...part.map(() => (res.status === null ? (res.error ?? 'error') : `http ${res.status}`)))
        }
      }
    } finally {
      agent.destroy()
    }
    return { receipts, latenciesMs }
  }

  /** Counts for the summary and the anti-vacuity checks. */
  summary(): LoadSummary {
    const statuses: Record<string, number> = {}
    const errors: Record<string, number> = {}
    let maxLatencyMs = 0
    for (const r of this.requests) {
      if (r.status !== null) statuses[r.status] = (statuses[r.status] ?? 0) + 1
      else errors[r.error ?? '?'] = (errors[r.error ?? '?'] ?? 0) + 1
      maxLatencyMs = Math.max(maxLatencyMs, r.latencyMs)
    }
    let ok = 0
    let fail = 0
    let unknown = 0
    let deadLettered = 0
    for (const r of this.readings.values()) {
      if (r.outcome === 'ok') ok++
      else if (r.outcome === 'fail') fail++
      else unknown++
      if (r.deadLettered) deadLettered++
    }
    return { requests: this.requests.length, retries: this.retriesSent.count, readings: this.readings.size, ok, fail, unknown, deadLettered, statuses, errors, maxLatencyMs }
  }
}

export interface LoadSummary {
  requests: number
  retries: number
  readings: number
  ok: number
  fail: number
  unknown: number
  deadLettered: number
  statuses: Record<string, number>
  errors: Record<string, number>
  maxLatencyMs: number
}
