import type { SensorRules } from '../../../src/lib/domain/rules/index.js'
import { PermanentStoreError, TransientStoreError, UnavailableError } from '../../../src/lib/errors/index.js'
import { type DeadLetterEntry, type DeadLetterInput, type DeadLetterQueue, DlqFullError, type DlqStats } from '../../../src/lib/ports/dead-letter-queue.js'
import type { IngestStore, IngestTx, ReadingRow, SensorDirectory, SensorInfo } from '../../../src/lib/ports/ingest-store.js'

export const DEVICE_UUID = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'

export function sensorInfo(id: number, over: Partial<SensorInfo> = {}): SensorInfo {
  return { id, deviceId: 1, deviceUuid: DEVICE_UUID, sensorUuid: `00000000-0000-4000-8000-${String(id).padStart(12, '0')}`, sensorType: 'voltage', active: true, ...over }
}

/** What the next transaction does. */
export type TxFault =
  | { kind: 'outage' }
  | { kind: 'transient' }
  /** Runs and commits, then the answer is lost (ambiguous commit, R07). */
  | { kind: 'commit-then-outage' }
  /** Runs and commits, then COMMIT's answer is lost: the adapter reports COMMIT_UNKNOWN. */
  | { kind: 'commit-unknown' }
  /** Never answers. */
  | { kind: 'hang' }

/**
 * An in-memory IngestStore: one transaction per flush, writes buffered and applied on commit only,
 * with the database's unique (sensor_id, dedup_key) as the backstop. It can be told to fail: an
 * outage (UnavailableError), a transient error (TransientStoreError), a permanent error on rows with a
 * poison value (a plain Error with SQLSTATE 23514), or never to answer.
 */
export class FakeIngestStore implements IngestStore {
  readonly capabilities = { flushConcurrency: 1, optimisticInsert: false, classifiesItself: false }
  valueGuard(): string | null {
    return null
  }
  readonly known = new Map<number, SensorInfo>()
  readonly committed: ReadingRow[] = []
  private readonly keys = new Set<string>()
  private readonly states = new Map<number, unknown>()
  /** Faults for the next transactions, in order; `always` applies when the list is empty. */
  faults: TxFault[] = []
  always: TxFault | undefined
  poisonValues = new Set<number>()
  /** Rows handed to the write per transaction attempt (flush sizes). */
  readonly attempts: number[] = []
  /** Sizes of the attempts that held a poison row. */
  readonly poisonAttempts: number[] = []
  transactions = 0
  /** Shared event log (commits), for ordering checks. */
  log: string[] = []
  directoryFailure: Error | undefined
  directoryQueries = 0

  readonly sensors: SensorDirectory = {
    findByIds: (ids) => {
      this.directoryQueries++
      if (this.directoryFailure) return Promise.reject(this.directoryFailure)
      return Promise.resolve(
        ids.flatMap((id) => {
          const s = this.known.get(id)
          return s ? [s] : []
        }),
      )
    },
    findByUuids: (pairs) => {
      this.directoryQueries++
      if (this.directoryFailure) return Promise.reject(this.directoryFailure)
      return Promise.resolve([...this.known.values()].filter((s) => pairs.some((p) => p.deviceUuid === s.deviceUuid && p.sensorUuid === s.sensorUuid)))
    },
  }

  constructor(sensors: SensorInfo[]) {
    for (const s of sensors) this.known.set(s.id, s)
  }

  rules(info: SensorInfo): SensorRules {
    return { sensorId: info.id, deviceId: info.deviceId, sensorType: info.sensorType, minReadingsForNormal: 10, resolveAfterReadings: 3, thresholds: [], delta: null }
  }

  committedValues(): number[] {
    return this.committed.map((r) => r.value)
  }

  async transaction<T>(fn: (tx: IngestTx) => Promise<T>): Promise<T> {
    this.transactions++
    const fault = this.faults.shift() ?? this.always
    if (fault?.kind === 'hang') return new Promise<T>(() => undefined)
    if (fault?.kind === 'outage') throw new UnavailableError('PostgreSQL unavailable: connect ECONNREFUSED 127.0.0.1:5432', { code: 'POSTGRES_UNAVAILABLE' })
    if (fault?.kind === 'transient') throw new TransientStoreError('PostgreSQL 40P01: deadlock detected', { code: 'PG_40P01' })
    const rows: ReadingRow[] = []
    const states = new Map<number, unknown>()
    const tx: IngestTx = {
      lockSensors: (ids) => Promise.resolve(new Map(ids.flatMap((id) => (this.states.has(id) ? [[id, this.states.get(id)] as const] : [])))),
      loadRules: (ids) => {
        const out = new Map<number, SensorRules>()
        for (const id of ids) {
          const s = this.known.get(id)
          if (s) out.set(id, this.rules(s))
        }
        return Promise.resolve(out)
      },
      existingDedupKeys: (pairs) => Promise.resolve(new Set(pairs.map((p) => `${p.sensorId}:${p.dedupKey}`).filter((k) => this.keys.has(k)))),
      // A throw (the poison row, a bad state) rejects, as from a real adapter.
      write: (flush) =>
        new Promise((resolve) => {
          const batch = flush.rows
          this.attempts.push(batch.length)
          const poison = batch.find((r) => this.poisonValues.has(r.value))
          if (poison) this.poisonAttempts.push(batch.length)
          // As an adapter maps the driver's check violation (SQLSTATE 23514).
          if (poison) throw new PermanentStoreError('constraint', '23514', 'new row for relation "sensor_readings" violates check constraint "value_check"')
          for (const r of batch) {
            const k = r.dedupKey === null ? null : `${r.sensorId}:${r.dedupKey}`
            if (k !== null && (this.keys.has(k) || rows.some((x) => x.dedupKey !== null && `${x.sensorId}:${x.dedupKey}` === k))) continue
            rows.push(r)
          }
          for (const w of flush.states) states.set(w.sensorId, JSON.parse(w.state))
          resolve({ openedAlerts: [] })
        }),
    }
    const out = await fn(tx)
    // COMMIT
    for (const r of rows) {
      this.committed.push(r)
      if (r.dedupKey !== null) this.keys.add(`${r.sensorId}:${r.dedupKey}`)
    }
    for (const [id, s] of states) this.states.set(id, s)
    this.log.push(`commit ${rows.map((r) => r.dedupKey).join(',')}`)
    if (fault?.kind === 'commit-then-outage') throw new UnavailableError('PostgreSQL unavailable: Connection terminated unexpectedly', { code: 'POSTGRES_UNAVAILABLE' })
    if (fault?.kind === 'commit-unknown') throw new UnavailableError('PostgreSQL commit outcome unknown: Connection terminated unexpectedly', { code: 'COMMIT_UNKNOWN' })
    return out
  }
}

/** An in-memory dead-letter queue with a capacity (DlqFullError beyond it, never trimmed). */
export class FakeDlq implements DeadLetterQueue {
  readonly backend = 'local' as const
  readonly entries: DeadLetterEntry[] = []
  readonly inputs: DeadLetterInput[] = []
  addCalls = 0
  private next = 1

  constructor(readonly capacity = 1_000) {}

  add(entries: readonly DeadLetterInput[]): Promise<string[]> {
    this.addCalls++
    if (this.entries.length + entries.length > this.capacity) return Promise.reject(new DlqFullError(this.capacity))
    const now = new Date().toISOString()
    const ids = entries.map((e) => {
      const entryId = `dlq-${this.next++}`
      this.inputs.push(e)
      this.entries.push({ entryId, transport: e.transport, stage: e.stage, errorClass: e.errorClass, error: e.error, payload: e.payload, sensorId: e.sensorId ?? null, seriesId: e.seriesId ?? null, msgId: e.msgId ?? null, status: 'pending', attempts: 0, firstFailedAt: now, lastFailedAt: now })
      return entryId
    })
    return Promise.resolve(ids)
  }

  list(): Promise<DeadLetterEntry[]> {
    return Promise.resolve([...this.entries])
  }

  get(entryId: string): Promise<DeadLetterEntry | null> {
    return Promise.resolve(this.entries.find((e) => e.entryId === entryId) ?? null)
  }

  remove(entryIds: readonly string[]): Promise<number> {
    let n = 0
    for (const id of entryIds) {
      const i = this.entries.findIndex((e) => e.entryId === id)
      if (i >= 0) {
        this.entries.splice(i, 1)
        n++
      }
    }
    return Promise.resolve(n)
  }

  recordFailure(): Promise<DeadLetterEntry | null> {
    return Promise.resolve(null)
  }

  purge(): Promise<number> {
    return Promise.resolve(0)
  }

  stats(): Promise<DlqStats> {
    return Promise.resolve({ backend: 'local', depth: this.entries.length, pending: this.entries.length, parked: 0, capacity: this.capacity, oldestFailedAt: null, byStage: {}, byErrorClass: {} })
  }

  async close(): Promise<void> {}
}
