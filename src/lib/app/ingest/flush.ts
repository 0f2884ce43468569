import { CLEAN_REASON, cloneRuleState, decodeRuleState, encodeRuleState, evaluateReadingInPlace, initialRuleState, type Effect, type Reason, type ReadingClass, type RuleState, type SensorRules } from '../../domain/rules/index.js'
import { DuplicateKeyError, type EffectWrite, type IngestStore, type LatestWrite, type ReadingRow, type StateWrite } from '../../ports/ingest-store.js'
import type { ItemOutcome, ReadingItem } from './items.js'
import type { RulesCache } from './rules-cache.js'

/** The parts of a flush whose durations are observed (where a slow commit spends its time). */
export type FlushPhase = 'lock' | 'rules' | 'classify' | 'write'

export interface FlushOptions {
  staleAfterMs: number
  rulesCache?: RulesCache
  /** Observes each phase's duration in seconds (metrics); a few clock reads per flush, none per reading. */
  observePhase?: (phase: FlushPhase, seconds: number) => void
}

export interface FlushResult {
  outcomes: ItemOutcome[]
  /** Alerts opened by this flush (for the optional legacy push after commit). */
  openedAlerts: number[]
  /** The batch's sensors' rules as the flush read them (their sensor types for the ML stream after commit). */
  rules?: ReadonlyMap<number, Pick<SensorRules, 'sensorType'>>
}

const readingTime = (item: ReadingItem): number => item.deviceTime ?? item.ingestTime

const CLEAN_REASONS = '[{"code":"CLEAN"}]'

// Outcomes are read-only once made: one shared object per kind instead of one per reading.
const STORED: Record<ReadingClass, ItemOutcome> = {
  ALERT: Object.freeze({ status: 'stored', classification: 'ALERT' }),
  WARNING: Object.freeze({ status: 'stored', classification: 'WARNING' }),
  ML_PREDICTION: Object.freeze({ status: 'stored', classification: 'ML_PREDICTION' }),
}
const STORED_SP: ItemOutcome = Object.freeze({ status: 'stored', classification: 'SP_HANDLED' })
const UNKNOWN_SENSOR: ItemOutcome = Object.freeze({ status: 'rejected', code: 'UNKNOWN_SENSOR' })

/** Reason codes as stored JSON; the clean case (nearly every reading) is a constant. */
function reasonsJson(reasons: readonly Reason[]): string {
  const only = reasons.length === 1 ? reasons[0] : undefined
  if (only === CLEAN_REASON) return CLEAN_REASONS
  if (only && only.code === 'CLEAN' && Object.keys(only).length === 1) return CLEAN_REASONS
  return JSON.stringify(reasons)
}

/**
 * The indexes of the items still to store, each sensor's readings in time order (arrival order on
 * ties). Items usually arrive in order: sorting happens only where they do not.
 */
function timeOrder(items: readonly ReadingItem[], outcomes: readonly (ItemOutcome | undefined)[]): number[] {
  const bySensor = new Map<number, number[]>()
  for (let i = 0; i < items.length; i++) {
    if (outcomes[i] !== undefined) continue
    const id = (items[i] as ReadingItem).sensorId
    let list = bySensor.get(id)
    if (!list) bySensor.set(id, (list = []))
    list.push(i)
  }
  const out: number[] = []
  for (const list of bySensor.values()) {
    let sorted = true
    for (let k = 1; k < list.length; k++) {
      if (readingTime(items[list[k - 1] as number] as ReadingItem) > readingTime(items[list[k] as number] as ReadingItem)) {
        sorted = false
        break
      }
    }
    if (!sorted) list.sort((a, b) => readingTime(items[a] as ReadingItem) - readingTime(items[b] as ReadingItem) || a - b)
    for (const i of list) out.push(i)
  }
  return out
}

/**
 * One group-commit flush (DESIGN §3): lock the batch's sensors in id order, drop items whose dedup
 * key is already stored (or repeated in the batch), classify each sensor's readings in time order with
 * the stored rule state, insert, write alerts/events/notifications/state, in one transaction.
 */
export async function flushReadings(store: IngestStore, items: readonly ReadingItem[], options: FlushOptions): Promise<FlushResult> {
  // Optimistic first where the engine can (no dedup pre-check: the pre-filter already answered recent
  // retries). A stored key aborts that transaction; the flush is then redone with the check.
  if (!store.capabilities.optimisticInsert) return flushOnce(store, items, options, true)
  try {
    return await flushOnce(store, items, options, false)
  } catch (err) {
    if (err instanceof DuplicateKeyError) return flushOnce(store, items, options, true)
    throw err
  }
}

async function flushOnce(store: IngestStore, items: readonly ReadingItem[], options: FlushOptions, precheck: boolean): Promise<FlushResult> {
  const observe = options.observePhase
  let mark = observe ? performance.now() : 0
  const phase = (name: FlushPhase): void => {
    if (!observe) return
    const now = performance.now()
    observe(name, (now - mark) / 1000)
    mark = now
  }
  return store.transaction(async (tx) => {
    const outcomes: ItemOutcome[] = new Array<ItemOutcome>(items.length)
    const sensorIds = [...new Set(items.map((i) => i.sensorId))]
    const rawStates = await tx.lockSensors(sensorIds)
    phase('lock')

    // Optimistically, a key already stored, or repeated in the batch, aborts the write and the flush is
    // redone here with the pre-check: the common case pays nothing for dedup.
    if (precheck) {
      const keyed = items.flatMap((item, index) => (item.dedupKey === null ? [] : [{ index, sensorId: item.sensorId, dedupKey: item.dedupKey }]))
      const existing = keyed.length > 0 ? await tx.existingDedupKeys(keyed) : new Set<string>()
      const seen = new Set<string>()
      for (const k of keyed) {
        const id = `${k.sensorId}:${k.dedupKey}`
        if (existing.has(id) || seen.has(id)) outcomes[k.index] = { status: 'duplicate' }
        seen.add(id)
      }
    }

    const rules = options.rulesCache ? await options.rulesCache.get(sensorIds, (missing) => tx.loadRules(missing)) : await tx.loadRules(sensorIds)
    phase('rules')
    const order = timeOrder(items, outcomes)

    type SensorRun = { before: RuleState; now: RuleState; latest: LatestWrite | null }
    const states = new Map<number, SensorRun>()
    const rows: ReadingRow[] = []
    const effects: EffectWrite[] = []
    // `order` groups each sensor's readings together: look its rules and state up once per group.
    let currentId = -1
    let sensorRules: SensorRules | undefined
    let st: SensorRun | undefined
    for (const index of order) {
      const item = items[index] as ReadingItem
      if (item.sensorId !== currentId) {
        currentId = item.sensorId
        sensorRules = rules.get(currentId)
        st = undefined
        if (sensorRules && !store.capabilities.classifiesItself) {
          const before = decodeRuleState(rawStates.get(currentId)) ?? initialRuleState()
          // One copy per sensor per flush; the readings then advance it in place.
          st = { before, now: cloneRuleState(before), latest: null }
          states.set(currentId, st)
        }
      }
      if (!sensorRules) {
        outcomes[index] = UNKNOWN_SENSOR
        continue
      }
      if (!st) {
        // The legacy procedure classifies and writes alerts/events itself (IOT_MSSQL_PROCEDURE=1).
        rows.push({ sensorId: item.sensorId, value: item.value, ingestTime: item.ingestTime, deviceTime: item.deviceTime, dedupKey: item.dedupKey, sequence: item.sequence, classification: 'SP_HANDLED', reasons: '[]', transport: item.transport })
        outcomes[index] = STORED_SP
        continue
      }
      const time = readingTime(item)
      const ev = evaluateReadingInPlace(sensorRules, st.now, { value: item.value, time }, { staleAfterMs: options.staleAfterMs, mode: item.backfill ? 'backfill' : 'live', alerts: item.alerts })
      rows.push({
        sensorId: item.sensorId,
        value: item.value,
        ingestTime: item.ingestTime,
        deviceTime: item.deviceTime,
        dedupKey: item.dedupKey,
        sequence: item.sequence,
        classification: ev.classification,
        reasons: reasonsJson(ev.reasons),
        transport: item.transport,
      })
      for (const effect of ev.effects as readonly Effect[]) effects.push({ sensorId: item.sensorId, deviceId: sensorRules.deviceId, effect })
      if (!st.latest || st.latest.time <= time) st.latest = { sensorId: item.sensorId, value: item.value, time }
      outcomes[index] = STORED[ev.classification]
    }

    const latest = [...states.values()].flatMap((r) => (r.latest ? [r.latest] : []))
    const writes: StateWrite[] = []
    for (const [sensorId, { before, now }] of states) {
      writes.push({
        sensorId,
        state: encodeRuleState(now),
        operationalState: now.operationalState,
        validReadingsCount: now.validReadingsCount,
        stateChangedAt: now.stateChangedAt,
        changed: now.operationalState !== before.operationalState || now.validReadingsCount !== before.validReadingsCount,
      })
    }
    // One write call, the transaction's last: the store may commit with it.
    phase('classify')
    const { openedAlerts } = await tx.write({ rows, effects, latest, states: writes, optimistic: !precheck })
    phase('write')
    return { outcomes, openedAlerts, rules }
  })
}
