import { createEntryIdGenerator } from '../../../src/lib/adapters/dlq/entry-id.js'
import { compareEntries, matchesFilter } from '../../../src/lib/adapters/dlq/payload.js'
import type { JobRunEnd, JobRunStart, JobRunStore } from '../../../src/lib/ports/job-run-store.js'
import type { AppContext } from '../../../src/lib/app/context.js'
import { loadConfig } from '../../../src/lib/config/index.js'
import { createLogger } from '../../../src/lib/log/index.js'
import type { Clock } from '../../../src/lib/ports/clock.js'
import { type DeadLetterEntry, type DeadLetterInput, type DeadLetterQueue, type DlqFilter, DlqFullError, type DlqStats, type ReplayableReading } from '../../../src/lib/ports/dead-letter-queue.js'
import type { SecurityEvent } from '../../../src/lib/ports/security-audit-store.js'

export const T0 = Date.parse('2026-11-26T12:00:00.000Z')

export class FakeClock implements Clock {
  constructor(public t = T0) {}
  now(): number {
    return this.t
  }
  sleep(ms: number): Promise<void> {
    this.t += ms
    return Promise.resolve()
  }
}

/** An in-memory DeadLetterQueue that records every write (to show a dry run writes nothing). */
export class FakeDlq implements DeadLetterQueue {
  readonly backend = 'local' as const
  readonly entries = new Map<string, DeadLetterEntry>()
  readonly writes: string[] = []
  /** Makes the next `remove` fail (a crash between the store commit and the DLQ delete). */
  failNextRemove = false
  private readonly nextId = createEntryIdGenerator()

  constructor(private readonly clock: Clock, private readonly maxLen = 1000) {}

  add(inputs: readonly DeadLetterInput[]): Promise<string[]> {
    this.writes.push('add')
    if (this.entries.size + inputs.length > this.maxLen) return Promise.reject(new DlqFullError(this.maxLen))
    const at = new Date(this.clock.now()).toISOString()
    const ids = inputs.map((e) => {
      const entryId = this.nextId(this.clock.now())
      this.entries.set(entryId, { entryId, transport: e.transport, stage: e.stage, errorClass: e.errorClass, error: e.error, payload: structuredClone(e.payload), sensorId: e.sensorId ?? null, seriesId: e.seriesId ?? null, msgId: e.msgId ?? null, status: 'pending', attempts: 0, firstFailedAt: at, lastFailedAt: at })
      return entryId
    })
    return Promise.resolve(ids)
  }

  list(filter: DlqFilter = {}): Promise<DeadLetterEntry[]> {
    const all = [...this.entries.values()].filter((e) => matchesFilter(e, filter)).sort(compareEntries).map((e) => structuredClone(e))
    return Promise.resolve(filter.limit === undefined ? all : all.slice(0, filter.limit))
  }

  get(entryId: string): Promise<DeadLetterEntry | null> {
    const e = this.entries.get(entryId)
    return Promise.resolve(e ? structuredClone(e) : null)
  }

  remove(entryIds: readonly string[]): Promise<number> {
    this.writes.push('remove')
    if (this.failNextRemove) {
      this.failNextRemove = false
      return Promise.reject(new Error('DLQ file is busy'))
    }
    let n = 0
    for (const id of entryIds) if (this.entries.delete(id)) n++
    return Promise.resolve(n)
  }

  recordFailure(entryId: string, error: string, atMs: number, maxRetries: number): Promise<DeadLetterEntry | null> {
    this.writes.push('recordFailure')
    const e = this.entries.get(entryId)
    if (!e) return Promise.resolve(null)
    e.attempts++
    e.error = error
    e.lastFailedAt = new Date(atMs).toISOString()
    if (e.attempts >= maxRetries) e.status = 'parked'
    return Promise.resolve(structuredClone(e))
  }

  async purge(filter: DlqFilter): Promise<number> {
    this.writes.push('purge')
    const matched = await this.list(filter)
    for (const e of matched) this.entries.delete(e.entryId)
    return matched.length
  }

  stats(): Promise<DlqStats> {
    const all = [...this.entries.values()]
    return Promise.resolve({ backend: 'local', depth: all.length, pending: all.filter((e) => e.status === 'pending').length, parked: all.filter((e) => e.status === 'parked').length, capacity: this.maxLen, oldestFailedAt: null, byStage: {}, byErrorClass: {} })
  }

  close(): Promise<void> {
    return Promise.resolve()
  }
}

export class FakeJobRuns implements JobRunStore {
  readonly runs: Array<JobRunStart & { id: number; end?: JobRunEnd }> = []
  startJobRun(run: JobRunStart): Promise<number> {
    const id = this.runs.length + 1
    this.runs.push({ ...run, id })
    return Promise.resolve(id)
  }
  finishJobRun(id: number, end: JobRunEnd): Promise<void> {
    const run = this.runs.find((r) => r.id === id)
    if (!run) return Promise.reject(new Error(`no run ${id}`))
    run.end = end
    return Promise.resolve()
  }
}

export interface FakeContext {
  ctx: AppContext
  clock: FakeClock
  jobRuns: FakeJobRuns
  events: SecurityEvent[]
}

/** An AppContext whose universal store offers only what the DLQ use-cases touch: job runs and the security audit. */
export function fakeContext(clock = new FakeClock()): FakeContext {
  const jobRuns = new FakeJobRuns()
  const events: SecurityEvent[] = []
  const record = (e: SecurityEvent): Promise<void> => {
    events.push(e)
    return Promise.resolve()
  }
  const universal = { engine: 'sqlite', jobRuns, securityAudit: { record } }
  const { config } = loadConfig({ env: { LOG_LEVEL: 'silent' } })
  const ctx = { config, logger: createLogger({ level: 'silent' }), clock, iot: universal, universal, databases: [], close: () => Promise.resolve() } as unknown as AppContext
  return { ctx, clock, jobRuns, events }
}

export function reading(sensorId: number, value: number, over: Partial<ReplayableReading> = {}): ReplayableReading {
  return { kind: 'reading', sensorId, value, deviceTime: T0 - 1000, ingestTime: T0 - 500, dedupKey: `${sensorId}:${value}`, sequence: null, transport: 'http', backfill: false, alerts: false, ...over }
}

export function deadReading(r: ReplayableReading, over: Partial<DeadLetterInput> = {}): DeadLetterInput {
  return { transport: r.transport, stage: 'store', errorClass: 'outage', error: 'connection refused', payload: r, sensorId: r.sensorId, ...over }
}
