import { initialRuleState, isOperationalState, isSeverity } from './types.js'
import type { ActiveAlert, RuleState } from './types.js'

type Decoded<T> = { ok: true; value: T } | { ok: false }

const fail = { ok: false } as const

function hasKeys(value: object): boolean {
  for (const key in value) if (Object.hasOwn(value, key)) return true
  return false
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function count(value: unknown): Decoded<number> {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? { ok: true, value } : fail
}

function nullableFinite(value: unknown): Decoded<number | null> {
  if (value === null) return { ok: true, value: null }
  return typeof value === 'number' && Number.isFinite(value) ? { ok: true, value } : fail
}

function activeAlert(value: unknown): Decoded<ActiveAlert | null> {
  if (value === null) return { ok: true, value: null }
  if (!isRecord(value) || !isSeverity(value['severity'])) return fail
  const thresholdId = value['thresholdId'] ?? null
  if (thresholdId !== null && !(typeof thresholdId === 'number' && Number.isSafeInteger(thresholdId))) return fail
  return { ok: true, value: { severity: value['severity'], thresholdId } }
}

function consecutive(value: unknown): Decoded<Record<string, number>> {
  if (!isRecord(value)) return fail
  const out: Record<string, number> = {}
  for (const [key, entry] of Object.entries(value)) {
    const decoded = count(entry)
    if (!decoded.ok) return fail
    if (decoded.value > 0) out[key] = decoded.value
  }
  return { ok: true, value: out }
}

/**
 * Decodes a `sensor_rule_state` JSON value read back from storage. Missing fields take their initial
 * value (a row written by an older version stays usable); a field of the wrong type makes the whole row
 * invalid and the function returns `null`, so the caller can decide to restart warm-up rather than guess.
 */
export function decodeRuleState(raw: unknown): RuleState | null {
  if (!isRecord(raw)) return null
  const base = initialRuleState()
  const field = (name: keyof RuleState): unknown => (Object.hasOwn(raw, name) ? raw[name] : base[name])

  const operationalState = field('operationalState')
  if (!isOperationalState(operationalState)) return null
  const activeDeltaSpike = field('activeDeltaSpike')
  if (typeof activeDeltaSpike !== 'boolean') return null

  const validReadingsCount = count(field('validReadingsCount'))
  const readingsSeen = count(field('readingsSeen'))
  const cleanStreak = count(field('cleanStreak'))
  const consecutiveCounts = consecutive(field('consecutive'))
  const lastDeltaSpikeAt = nullableFinite(field('lastDeltaSpikeAt'))
  const prevValue = nullableFinite(field('prevValue'))
  const prevTime = nullableFinite(field('prevTime'))
  const alert = activeAlert(field('activeAlert'))
  const lastAlertNotificationAt = nullableFinite(field('lastAlertNotificationAt'))
  const stateChangedAt = nullableFinite(field('stateChangedAt'))
  if (
    !validReadingsCount.ok ||
    !readingsSeen.ok ||
    !cleanStreak.ok ||
    !consecutiveCounts.ok ||
    !lastDeltaSpikeAt.ok ||
    !prevValue.ok ||
    !prevTime.ok ||
    !alert.ok ||
    !lastAlertNotificationAt.ok ||
    !stateChangedAt.ok
  ) {
    return null
  }
  // prevValue and prevTime only make sense together; half of the pair cannot be used for a delta.
  const hasPrevious = prevValue.value !== null && prevTime.value !== null
  return {
    operationalState,
    validReadingsCount: validReadingsCount.value,
    readingsSeen: readingsSeen.value,
    consecutive: consecutiveCounts.value,
    cleanStreak: cleanStreak.value,
    lastDeltaSpikeAt: lastDeltaSpikeAt.value,
    prevValue: hasPrevious ? prevValue.value : null,
    prevTime: hasPrevious ? prevTime.value : null,
    activeAlert: alert.value,
    activeDeltaSpike,
    lastAlertNotificationAt: lastAlertNotificationAt.value,
    stateChangedAt: stateChangedAt.value,
  }
}

/**
 * The stored JSON of a rule state: the same keys decodeRuleState reads, but only those that differ from
 * their initial value (a missing key decodes to it). A live sensor's state is about half the size of
 * the full object, which is what every flush writes, and PostgreSQL parses, for every sensor it touches.
 */
export function encodeRuleState(state: RuleState): string {
  let out = `{"operationalState":${JSON.stringify(state.operationalState)}`
  if (state.validReadingsCount !== 0) out += `,"validReadingsCount":${state.validReadingsCount}`
  if (state.readingsSeen !== 0) out += `,"readingsSeen":${state.readingsSeen}`
  if (hasKeys(state.consecutive)) out += `,"consecutive":${JSON.stringify(state.consecutive)}`
  if (state.cleanStreak !== 0) out += `,"cleanStreak":${state.cleanStreak}`
  if (state.lastDeltaSpikeAt !== null) out += `,"lastDeltaSpikeAt":${JSON.stringify(state.lastDeltaSpikeAt)}`
  if (state.prevValue !== null) out += `,"prevValue":${JSON.stringify(state.prevValue)}`
  if (state.prevTime !== null) out += `,"prevTime":${JSON.stringify(state.prevTime)}`
  if (state.activeAlert !== null) out += `,"activeAlert":${JSON.stringify(state.activeAlert)}`
  if (state.activeDeltaSpike) out += `,"activeDeltaSpike":true`
  if (state.lastAlertNotificationAt !== null) out += `,"lastAlertNotificationAt":${JSON.stringify(state.lastAlertNotificationAt)}`
  if (state.stateChangedAt !== null) out += `,"stateChangedAt":${JSON.stringify(state.stateChangedAt)}`
  return `${out}}`
}
