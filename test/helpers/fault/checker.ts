import type { LoadGenerator, LoadSummary, ReadingRecord } from './load.js'
import type { PrivatePostgres } from './postgres.js'
import { metric, type ServiceProcess } from './service.js'
import { note, sleep } from './util.js'

/**
 * Quiescence (reliability.md §2.4 item 2): for 3 consecutive 500 ms ticks `/metrics`
 * `ingest_queue_depth` is 0, `/ready` answers 200 and `extra()` (DLQ drained, replay idle...) holds.
 * Not reaching it before the deadline is a failure, never a skipped check.
 */
export async function quiesce(svc: ServiceProcess, options: { timeoutMs?: number; extra?: () => Promise<boolean> } = {}): Promise<number> {
  const t0 = Date.now()
  const deadline = t0 + (options.timeoutMs ?? 60_000)
  let streak = 0
  let last = ''
  for (;;) {
    const m = await svc.metrics()
    const depth = metric(m, 'ingest_queue_depth')
    const ready = await svc.getJson('/ready')
    const extra = options.extra ? await options.extra().catch(() => false) : true
    const ok = depth === 0 && ready?.status === 200 && extra
    last = `queue_depth=${depth} ready=${ready?.status ?? 'unreachable'} extra=${extra}`
    streak = ok ? streak + 1 : 0
    if (streak >= 3) return Date.now() - t0
    if (!svc.running) {
      const exit = svc.exits.at(-1)
      throw new Error(`the service died (exit code ${exit?.code}, signal ${exit?.signal}); last stderr:\n${svc.stderr.slice(-4000)}`)
    }
    if (Date.now() > deadline) throw new Error(`no quiescence within ${options.timeoutMs ?? 60_000} ms (last: ${last})`)
    await sleep(500)
  }
}

export interface CheckResult {
  /** Distinct readings the clients tried to send. */
  attempts: number
  /** Readings with a 200 + stored/duplicate/dead_lettered receipt. */
  acknowledged: number
  /** Acknowledged readings not in sensor_readings. */
  lost: number
  /** (sensor_id, dedup_key) pairs stored more than once, plus readings stored twice under different keys. */
  duplicated: number
  /** Stored rows that no client ever sent. */
  unexpected: number
  /** Readings without a definite answer that were stored anyway (fine: unknown outcomes may land). */
  recovered: number
  /** Readings definitely refused (4xx or a rejected receipt) that were stored anyway. */
  rejectedButStored: number
  /** Readings found only by content (sensor, device time, value) under another dedup key. */
  keyMismatch: number
  /** Acknowledged as dead_lettered. */
  deadLettered: number
  rows: number
  distinctKeys: number
  nullKeys: number
  valid: boolean
  /** A few examples of each problem, for the failure message. */
  examples: { lost: string[]; duplicated: string[]; unexpected: string[] }
}

/**
 * The Jepsen-style checker (reliability.md §2.4, Jepsen `total-queue`): compares the in-memory ledger
 * with `sensor_readings` of the private database. `valid` = nothing lost, nothing duplicated, nothing
 * unexpected, nothing refused-but-stored.
 */
export async function checkLedger(pg: PrivatePostgres, load: LoadGenerator, label: string): Promise<CheckResult & { load: LoadSummary }> {
  const rows = await pg.query<{ sensor_id: string | number; dedup_key: string | null; value: number; ts_ms: string | number | null }>(
    `SELECT sensor_id, dedup_key, value, round(extract(epoch FROM device_timestamp) * 1000)::bigint AS ts_ms FROM sensor_readings`,
  )
  const counts = (await pg.query<{ n: string; d: string; nulls: string }>(`SELECT count(*) AS n, count(DISTINCT (sensor_id, dedup_key)) AS d, count(*) FILTER (WHERE dedup_key IS NULL) AS nulls FROM sensor_readings`))[0]
  const byKey = new Map<string, number>()
  const byContent = new Map<string, number>()
  const contentOf = (sensorId: number | string, tsMs: number | string | null, value: number) => `${sensorId}|${tsMs}|${value}`
  for (const r of rows) {
    const k = r.dedup_key === null ? `null#${r.sensor_id}` : r.dedup_key.startsWith(`${r.sensor_id}:`) ? r.dedup_key : `${r.sensor_id}:${r.dedup_key}`
    byKey.set(k, (byKey.get(k) ?? 0) + 1)
    const c = contentOf(r.sensor_id, r.ts_ms, r.value)
    byContent.set(c, (byContent.get(c) ?? 0) + 1)
  }
  const ledger = load.readings
  const ledgerContent = new Set<string>()
  for (const rec of ledger.values()) ledgerContent.add(contentOf(rec.sensorId, Math.round(rec.ts * 1000), rec.value))

  const examples = { lost: [] as string[], duplicated: [] as string[], unexpected: [] as string[] }
  const push = (list: string[], s: string) => {
    if (list.length < 5) list.push(s)
  }
  let acknowledged = 0
  let lost = 0
  let recovered = 0
  let rejectedButStored = 0
  let keyMismatch = 0
  let deadLettered = 0
  const stored = (rec: ReadingRecord): boolean => {
    if (byKey.has(rec.key)) return true
    if (byContent.has(contentOf(rec.sensorId, Math.round(rec.ts * 1000), rec.value))) {
      keyMismatch++
      return true
    }
    return false
  }
  for (const rec of ledger.values()) {
    const isStored = stored(rec)
    if (rec.deadLettered) deadLettered++
    if (rec.outcome === 'ok') {
      acknowledged++
      if (!isStored) {
        lost++
        push(examples.lost, `${rec.key} (${rec.receipt}, ${rec.attempts} attempts)`)
      }
    } else if (rec.outcome === 'unknown') {
      if (isStored) recovered++
    } else if (isStored) {
      rejectedButStored++
    }
  }
  let duplicated = 0
  for (const [k, n] of byKey) {
    if (n > 1) {
      duplicated += n - 1
      push(examples.duplicated, `${k} x${n}`)
    }
  }
  for (const [c, n] of byContent) {
    if (n > 1 && ledgerContent.has(c)) {
      // Stored twice under different keys (same sensor, device time and value).
      const sameKey = rows.filter((r) => contentOf(r.sensor_id, r.ts_ms, r.value) === c)
      const keys = new Set(sameKey.map((r) => r.dedup_key))
      if (keys.size > 1) {
        duplicated += n - 1
        push(examples.duplicated, `content ${c} stored ${n}x under keys ${[...keys].join(', ')}`)
      }
    }
  }
  let unexpected = 0
  for (const r of rows) {
    const k = r.dedup_key === null ? '' : r.dedup_key.startsWith(`${r.sensor_id}:`) ? r.dedup_key : `${r.sensor_id}:${r.dedup_key}`
    if (!ledger.has(k) && !ledgerContent.has(contentOf(r.sensor_id, r.ts_ms, r.value))) {
      unexpected++
      push(examples.unexpected, `${r.sensor_id} ${r.dedup_key} ${r.value} @${r.ts_ms}`)
    }
  }
  const result = {
    attempts: ledger.size,
    acknowledged,
    lost,
    duplicated,
    unexpected,
    recovered,
    rejectedButStored,
    keyMismatch,
    deadLettered,
    rows: Number(counts?.n ?? 0),
    distinctKeys: Number(counts?.d ?? 0),
    nullKeys: Number(counts?.nulls ?? 0),
    valid: lost === 0 && duplicated === 0 && unexpected === 0 && rejectedButStored === 0,
    examples,
    load: load.summary(),
  }
  note(`${label} checker`, {
    attempts: result.attempts,
    acknowledged: result.acknowledged,
    lost: result.lost,
    duplicated: result.duplicated,
    unexpected: result.unexpected,
    recovered: result.recovered,
    rejectedButStored: result.rejectedButStored,
    keyMismatch: result.keyMismatch,
    deadLettered: result.deadLettered,
    rows: result.rows,
    valid: result.valid,
  })
  note(`${label} load`, result.load)
  if (!result.valid) note(`${label} examples`, examples)
  return result
}
