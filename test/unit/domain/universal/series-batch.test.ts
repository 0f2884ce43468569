import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import type { ParseIssue } from '../../../../src/lib/domain/ingest/issues.js'
import {
  IOT_DOMAIN_REFUSED_MESSAGE,
  classifyBatch,
  classifyPoints,
  decodeStreamRuleState,
  defaultStreamConfig,
  encodeStreamRuleState,
  formatSeriesId,
  initialStreamRuleState,
  parseSeriesId,
  validateSeriesKey,
} from '../../../../src/lib/domain/universal/index.js'
import type { BatchPoint, StreamRuleState } from '../../../../src/lib/domain/universal/index.js'
import { LIVE, SEC, T0, configWith } from './fixtures.js'

describe('series ids', () => {
  it('formats and parses domain:source_id:stream_id, the stream id keeping further colons', () => {
    expect(formatSeriesId({ domain: 'finance', source_id: 'nyse', stream_id: 'price' })).toBe('finance:nyse:price')
    expect(parseSeriesId('finance:nyse:price:usd')).toEqual({ domain: 'finance', source_id: 'nyse', stream_id: 'price:usd' })
    expect(parseSeriesId('x')).toEqual({ domain: 'x', source_id: '', stream_id: '' })
    expect(parseSeriesId(':a:b')).toEqual({ domain: 'generic', source_id: 'a', stream_id: 'b' })
  })

  it('refuses domain iot (any case) with the original message', () => {
    const issues: ParseIssue[] = []
    expect(validateSeriesKey({ domain: 'IoT', source_id: 's', stream_id: 't' }, ['data'], issues)).toBeUndefined()
    expect(issues).toEqual([{ path: ['data', 'domain'], code: 'value_error', msg: `Value error, ${IOT_DOMAIN_REFUSED_MESSAGE}`, input: 'IoT', ctx: { error: IOT_DOMAIN_REFUSED_MESSAGE } }])
    expect(IOT_DOMAIN_REFUSED_MESSAGE).toBe("domain='iot' is not allowed in universal ingestion. Use POST /ingest/packets for IoT data.")
  })

  it('refuses colons in domain and source_id, empty, control characters and over-long parts; NFC-normalises', () => {
    const issues: ParseIssue[] = []
    expect(validateSeriesKey({ domain: 'a:b', source_id: 'c:d', stream_id: '' }, [], issues)).toBeUndefined()
    expect(issues.map((i) => [i.path.join('.'), i.code])).toEqual([
      ['domain', 'string_pattern_mismatch'],
      ['source_id', 'string_pattern_mismatch'],
      ['stream_id', 'string_too_short'],
    ])
    const more: ParseIssue[] = []
    expect(validateSeriesKey({ domain: 'x'.repeat(51), source_id: 'a\u0000', stream_id: 7 }, [], more)).toBeUndefined()
    expect(more.map((i) => i.code)).toEqual(['string_too_long', 'string_pattern_mismatch', 'string_type'])
    expect(validateSeriesKey({ domain: 'health', source_id: 'cafe\u0301', stream_id: 'a:b' }, [], [])).toEqual({ domain: 'health', source_id: 'caf\u00e9', stream_id: 'a:b' })
  })

  it('round-trips any valid key', () => {
    const part = fc.string({ minLength: 1, maxLength: 20 }).filter((s) => !s.includes(':'))
    fc.assert(
      fc.property(part, part, fc.string({ minLength: 1, maxLength: 20 }), (domain, source_id, stream_id) => {
        expect(parseSeriesId(formatSeriesId({ domain, source_id, stream_id }))).toEqual({ domain, source_id, stream_id })
      }),
    )
  })
})

describe('built-in defaults (reference §8.5)', () => {
  it('gives the table constraints for known streams and none elsewhere; alerting only in the three domains', () => {
    const cpu = defaultStreamConfig({ domain: 'infrastructure', source_id: 'web-1', stream_id: 'cpu' })
    expect(cpu).toMatchObject({ seriesId: 'infrastructure:web-1:cpu', source: 'built_in', enableAlerting: true, enableMlPrediction: true })
    expect(cpu.constraints).toMatchObject({ physicalMin: 0, physicalMax: 100, operationalMax: 90, warningMax: 80, criticalMax: 95, cooldownSeconds: 300, consecutiveViolationsRequired: 1 })
    expect(defaultStreamConfig({ domain: 'finance', source_id: 'x', stream_id: 'price' }).constraints).toMatchObject({ physicalMin: 0, maxRelDelta: 10, physicalMax: null })
    expect(defaultStreamConfig({ domain: 'health', source_id: 'x', stream_id: 'spo2' }).constraints).toMatchObject({ operationalMin: 90, warningMin: 88, criticalMin: 85 })
    expect(defaultStreamConfig({ domain: 'health', source_id: 'x', stream_id: 'temp' })).toMatchObject({ source: 'default', constraints: null, enableAlerting: true })
    expect(defaultStreamConfig({ domain: 'energy', source_id: 'x', stream_id: 'kwh' })).toMatchObject({ source: 'default', constraints: null, enableAlerting: false, enableMlPrediction: true })
  })
})

describe('state codec', () => {
  it('round-trips a state and fills missing fields', () => {
    const state: StreamRuleState = { lastTime: T0, prevValue: 1.5, prevTime: T0, consecutiveViolations: 2, cleanStreak: 0, activeAlert: { severity: 'CRITICAL', openedAt: T0 }, lastAlertAt: T0 }
    expect(decodeStreamRuleState(JSON.parse(encodeStreamRuleState(state)))).toEqual(state)
    expect(decodeStreamRuleState({ lastTime: T0 })).toEqual({ ...initialStreamRuleState(), lastTime: T0 })
  })

  it.each([null, [], 'x', { lastTime: 'x' }, { consecutiveViolations: -1 }, { activeAlert: { severity: 'info', openedAt: 1 } }, { activeAlert: { severity: 'WARNING' } }])('refuses %j', (raw) => {
    expect(decodeStreamRuleState(raw)).toBeNull()
  })
})

describe('classifyBatch', () => {
  const bp = (stream_id: string, value: number, time: number, extra: Partial<BatchPoint> = {}): BatchPoint => ({ key: { domain: 'health', source_id: 'p1', stream_id }, value, time, sequence: null, metadata: {}, ...extra })

  it('classifies each series with its own config and state, answering in input order', () => {
    const points = [bp('bpm', 25, T0), bp('spo2', 80, T0), bp('bpm', 210, T0 + SEC, { sequence: 4, metadata: { csv_row: 3 } }), bp('temp', 37, T0)]
    const r = classifyBatch(points, new Map(), new Map(), LIVE)
    expect(r.outcomes.map((o) => o.classification)).toEqual(['rejected', 'critical_violation', 'critical_violation', 'normal'])
    expect(r.rows.map((row) => row.index)).toEqual([1, 2, 3])
    expect(r.rows[1]).toEqual({
      index: 2,
      domain: 'health',
      source_id: 'p1',
      stream_id: 'bpm',
      value: 210,
      time: T0 + SEC,
      classification: 'critical_violation',
      sequence: 4,
      domain_metadata: { csv_row: 3, reasons: [{ code: 'CRITICAL_ZONE', rule: 'critical_max', observed: 210, limit: 200 }] },
    })
    expect(r.rows[0]?.sequence).toBe(-1)
    expect([...r.states.keys()].sort()).toEqual(['health:p1:bpm', 'health:p1:spo2', 'health:p1:temp'])
    expect([...r.alertPlans.keys()].sort()).toEqual(['health:p1:bpm', 'health:p1:spo2'])
  })

  it('uses the given config and state over the defaults', () => {
    const cfg = { ...configWith({ warningMax: 10 }), seriesId: 'health:p1:bpm' }
    const state: StreamRuleState = { ...initialStreamRuleState(), lastTime: T0 + 10 * SEC }
    const r = classifyBatch([bp('bpm', 50, T0)], new Map([['health:p1:bpm', cfg]]), new Map([['health:p1:bpm', state]]), LIVE)
    expect(r.outcomes[0]).toMatchObject({ classification: 'warning_violation', late: true })
    expect(r.states.size).toBe(0)
  })
})

describe('properties', () => {
  it('a batch split anywhere gives the same classes, state and alert actions as the whole batch', () => {
    const cfg = configWith({ physicalMin: 0, physicalMax: 100, warningMax: 60, criticalMax: 80, maxAbsDelta: 15, consecutiveViolationsRequired: 2, cooldownSeconds: 30 })
    fc.assert(
      fc.property(fc.array(fc.integer({ min: -5, max: 105 }), { maxLength: 40 }), fc.nat(), (values, cut) => {
        const pts = values.map((value, i) => ({ value, time: T0 + i * 10 * SEC }))
        const at = values.length === 0 ? 0 : cut % (values.length + 1)
        const whole = classifyPoints(cfg, initialStreamRuleState(), pts, LIVE)
        const a = classifyPoints(cfg, initialStreamRuleState(), pts.slice(0, at), LIVE)
        const b = classifyPoints(cfg, a.state, pts.slice(at), LIVE)
        expect([...a.outcomes, ...b.outcomes]).toEqual(whole.outcomes)
        expect(b.state).toEqual(whole.state)
        // at most one alert open at any point of the sequence
        let active = 0
        for (const action of whole.outcomes.flatMap((o) => o.alertActions)) {
          if (action.kind === 'open') active += 1
          if (action.kind === 'resolve') active -= 1
          expect(active).toBeGreaterThanOrEqual(0)
          expect(active).toBeLessThanOrEqual(1)
        }
      }),
    )
  })
})
