import { classifyPoints } from './classify.js'
import { defaultStreamConfig } from './defaults.js'
import { formatSeriesId } from './series-id.js'
import type { SeriesKey } from './series-id.js'
import { initialStreamRuleState } from './types.js'
import type {
  ClassifyOptions,
  DataPointClass,
  PointInput,
  PointOutcome,
  SeriesAlertPlan,
  StreamConfig,
  StreamRuleState,
  UniversalReason,
} from './types.js'

/** `data_points.sequence` of a point sent without one (the unique key needs a value: DESIGN §2). */
export const NO_SEQUENCE = -1

/** The key under which the classifier's reasons are stored in `data_points.domain_metadata`. */
export const REASONS_METADATA_KEY = 'reasons'

/** One point of a batch that may hold many series. */
export interface BatchPoint extends PointInput {
  key: SeriesKey
  sequence: number | null
  /** The client's metadata (CSV row and column, ...), stored in `domain_metadata` beside the reasons. */
  metadata: Readonly<Record<string, unknown>>
}

/** One `data_points` row to insert. */
export interface DataPointRow {
  /** Index of the point in the batch. */
  index: number
  domain: string
  source_id: string
  stream_id: string
  value: number
  /** Epoch milliseconds. */
  time: number
  classification: Exclude<DataPointClass, 'rejected'>
  sequence: number
  domain_metadata: Record<string, unknown>
}

export interface BatchClassification {
  /** One per input point, in the input order. */
  outcomes: PointOutcome[]
  /** The stored points, in the input order. */
  rows: DataPointRow[]
  /** Series id -> state to upsert into `stream_rule_state` (only series whose state moved). */
  states: Map<string, StreamRuleState>
  /** Series id -> alert plan (only series with something to write). */
  alertPlans: Map<string, SeriesAlertPlan>
}

/**
 * `domain_metadata` of a stored point: the client's metadata with the classifier's reasons under
 * {@link REASONS_METADATA_KEY} (a client key of that name is replaced: the reasons are ours to say).
 */
export function domainMetadata(metadata: Readonly<Record<string, unknown>>, reasons: readonly UniversalReason[]): Record<string, unknown> {
  return { ...metadata, [REASONS_METADATA_KEY]: reasons }
}

/**
 * Classifies a batch of points of any number of series ({@link classifyPoints} per series): configs and
 * states by series id (an absent config is {@link defaultStreamConfig}, an absent state the initial one),
 * and returns what one set-based flush writes: rows, states, alert plans, and the per-point outcomes for
 * the answer.
 */
export function classifyBatch(
  points: readonly BatchPoint[],
  configs: ReadonlyMap<string, StreamConfig>,
  states: ReadonlyMap<string, StreamRuleState>,
  options: ClassifyOptions,
): BatchClassification {
  const bySeries = new Map<string, number[]>()
  points.forEach((p, i) => {
    const id = formatSeriesId(p.key)
    const list = bySeries.get(id)
    if (list === undefined) bySeries.set(id, [i])
    else list.push(i)
  })
  const outcomes = new Array<PointOutcome>(points.length)
  const nextStates = new Map<string, StreamRuleState>()
  const alertPlans = new Map<string, SeriesAlertPlan>()
  for (const [id, indexes] of bySeries) {
    const first = points[indexes[0] as number] as BatchPoint
    const config = configs.get(id) ?? defaultStreamConfig(first.key)
    const state = states.get(id) ?? initialStreamRuleState()
    const result = classifyPoints(config, state, indexes.map((i) => points[i] as BatchPoint), options)
    result.outcomes.forEach((o, j) => {
      outcomes[indexes[j] as number] = o
    })
    if (result.stateChanged) nextStates.set(id, result.state)
    if (result.alertPlan.existing !== null || result.alertPlan.inserts.length > 0) alertPlans.set(id, result.alertPlan)
  }
  const rows: DataPointRow[] = []
  points.forEach((p, index) => {
    const o = outcomes[index] as PointOutcome
    if (o.classification === 'rejected') return
    rows.push({
      index,
      domain: p.key.domain,
      source_id: p.key.source_id,
      stream_id: p.key.stream_id,
      value: p.value === 0 ? 0 : p.value,
      time: p.time,
      classification: o.classification,
      sequence: p.sequence ?? NO_SEQUENCE,
      domain_metadata: domainMetadata(p.metadata, o.reasons),
    })
  })
  return { outcomes, rows, states: nextStates, alertPlans }
}
