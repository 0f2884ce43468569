import { isPlainObject as isRecord } from '../ingest/fields.js'
import { initialStreamRuleState, isAlertSeverity } from './types.js'
import type { ActiveStreamAlert, StreamRuleState } from './types.js'

const INVALID = Symbol('invalid')

function nullableFinite(value: unknown): number | null | typeof INVALID {
  if (value === null) return null
  return typeof value === 'number' && Number.isFinite(value) ? value : INVALID
}

function count(value: unknown): number | typeof INVALID {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : INVALID
}

function activeAlert(value: unknown): ActiveStreamAlert | null | typeof INVALID {
  if (value === null) return null
  if (!isRecord(value) || !isAlertSeverity(value['severity'])) return INVALID
  const openedAt = value['openedAt']
  if (typeof openedAt !== 'number' || !Number.isFinite(openedAt)) return INVALID
  return { severity: value['severity'], openedAt }
}

/**
 * Decodes a `stream_rule_state.state` JSON value. Missing fields take their initial value (a row written
 * by an older version stays usable); a field of the wrong type makes the row invalid: `null`, and the
 * caller starts the series from {@link initialStreamRuleState} rather than guess.
 */
export function decodeStreamRuleState(raw: unknown): StreamRuleState | null {
  if (!isRecord(raw)) return null
  const base = initialStreamRuleState()
  const field = (name: keyof StreamRuleState): unknown => (Object.hasOwn(raw, name) ? raw[name] : base[name])
  const lastTime = nullableFinite(field('lastTime'))
  const prevValue = nullableFinite(field('prevValue'))
  const prevTime = nullableFinite(field('prevTime'))
  const lastAlertAt = nullableFinite(field('lastAlertAt'))
  const consecutiveViolations = count(field('consecutiveViolations'))
  const cleanStreak = count(field('cleanStreak'))
  const alert = activeAlert(field('activeAlert'))
  if (
    lastTime === INVALID ||
    prevValue === INVALID ||
    prevTime === INVALID ||
    lastAlertAt === INVALID ||
    consecutiveViolations === INVALID ||
    cleanStreak === INVALID ||
    alert === INVALID
  ) {
    return null
  }
  return { lastTime, prevValue, prevTime, consecutiveViolations, cleanStreak, activeAlert: alert, lastAlertAt }
}

/** The JSON text stored in `stream_rule_state.state`. */
export function encodeStreamRuleState(state: StreamRuleState): string {
  return JSON.stringify(state)
}
