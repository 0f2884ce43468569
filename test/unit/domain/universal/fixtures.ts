import { defaultStreamConfig, valueConstraints } from '../../../../src/lib/domain/universal/index.js'
import type { ClassifyOptions, PointInput, StreamConfig, ValueConstraints } from '../../../../src/lib/domain/universal/index.js'

export const SEC = 1000
export const T0 = Date.UTC(2024, 0, 1, 12, 0, 0)
export const LIVE: ClassifyOptions = { mode: 'live', alerts: false }

export const BPM_KEY = { domain: 'health', source_id: 'patient-7', stream_id: 'bpm' }

/** The built-in health/bpm config, with constraint overrides. */
export function bpmConfig(overrides: Partial<ValueConstraints> = {}, config: Partial<StreamConfig> = {}): StreamConfig {
  const base = defaultStreamConfig(BPM_KEY)
  return { ...base, ...config, constraints: { ...(base.constraints ?? valueConstraints()), ...overrides } }
}

/** A config with exactly these constraints (every other bound null). */
export function configWith(constraints: Partial<ValueConstraints>, config: Partial<StreamConfig> = {}): StreamConfig {
  return { ...defaultStreamConfig({ domain: 'generic', source_id: 's', stream_id: 'x' }), enableAlerting: true, ...config, constraints: valueConstraints(constraints) }
}

/** Points one second apart from T0 (or `step` ms apart). */
export function points(values: readonly number[], step = SEC, start = T0): PointInput[] {
  return values.map((value, i) => ({ value, time: start + i * step }))
}
