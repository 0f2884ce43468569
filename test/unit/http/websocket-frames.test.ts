import { describe, expect, it } from 'vitest'

import type { PointReceipt } from '../../../src/lib/app/universal/point-service.js'
import { ackFrame, checkConnect, decodeFrame, parseDataFrame } from '../../../src/lib/http/ws/frames.js'

const text = (s: string) => Buffer.from(s)

describe('decodeFrame', () => {
  it('accepts a JSON object text frame; refuses binary, invalid JSON, non-objects, too deep, __proto__ and constructor', () => {
    expect(decodeFrame(text('{"type":"data"}'), false, 32)).toEqual({ ok: true, value: { type: 'data' } })
    expect(decodeFrame(text('{"type":"data"}'), true, 32)).toMatchObject({ ok: false, error: expect.stringContaining('Binary') as string })
    expect(decodeFrame(text('{"type":'), false, 32)).toMatchObject({ ok: false })
    expect(decodeFrame(text('[1]'), false, 32)).toEqual({ ok: false, error: 'Expected a JSON object' })
    expect(decodeFrame(text('{"a":[[[1]]]}'), false, 3)).toEqual({ ok: false, error: 'JSON nested deeper than 3 levels' })
    expect(decodeFrame(text('{"a":[[1]]}'), false, 3)).toMatchObject({ ok: true })
    expect(decodeFrame(text('{"__proto__":{"x":1}}'), false, 32)).toMatchObject({ ok: false, error: expect.stringMatching(/^Forbidden key/) as string })
    expect(decodeFrame(text('{"constructor":{"prototype":{"x":1}}}'), false, 32)).toMatchObject({ ok: false, error: expect.stringMatching(/^Forbidden key/) as string })
    expect(decodeFrame([text('{"ty'), text('pe":1}')], false, 32)).toEqual({ ok: true, value: { type: 1 } })
  })
})

describe('checkConnect', () => {
  const frame = { type: 'connect', source_id: 'ward-3', domain: 'health', api_key: 'k' }
  it("checks in the original's order: type 1003, missing fields 1003, iot 1008", () => {
    expect(checkConnect({ ...frame, type: 'data' }, undefined)).toEqual({ ok: false, error: "Expected 'connect' message", close: 1003 })
    expect(checkConnect({ ...frame, source_id: '' }, undefined)).toEqual({ ok: false, error: 'Missing source_id, domain, or api_key', close: 1003 })
    expect(checkConnect({ type: 'connect', source_id: 'a', domain: 'b' }, undefined)).toMatchObject({ ok: false, close: 1003 })
    expect(checkConnect({ ...frame, domain: 'IOT' }, undefined)).toEqual({ ok: false, error: "domain='iot' not allowed in WebSocket transport", close: 1008 })
    expect(checkConnect({ ...frame, source_id: 'a:b' }, undefined)).toMatchObject({ ok: false, close: 1003 })
  })
  it('takes the upgrade header key first, else the frame key', () => {
    expect(checkConnect(frame, undefined)).toEqual({ ok: true, domain: 'health', sourceId: 'ward-3', apiKey: 'k' })
    expect(checkConnect(frame, 'h')).toMatchObject({ ok: true, apiKey: 'h' })
    expect(checkConnect({ type: 'connect', source_id: 'a', domain: 'b' }, 'h')).toMatchObject({ ok: true, apiKey: 'h' })
  })
})

describe('parseDataFrame and ackFrame', () => {
  it('refuses empty, non-list and oversized batches whole; rejects bad items with the reasons and tracks the max sequence', () => {
    expect(parseDataFrame({ type: 'data' }, 10)).toEqual({ ok: false, error: 'Empty batch' })
    expect(parseDataFrame({ type: 'data', batch: [] }, 10)).toEqual({ ok: false, error: 'Empty batch' })
    expect(parseDataFrame({ type: 'data', batch: {} }, 10)).toMatchObject({ ok: false })
    expect(parseDataFrame({ type: 'data', batch: [1, 2, 3] }, 2)).toEqual({ ok: false, error: 'Batch too large: 3 items (at most 2)' })
    const r = parseDataFrame({ type: 'data', batch_id: 'x', id: { no: 1 }, batch: [{ stream_id: 'a', value: 1, sequence: 4 }, { value: 2 }, { stream_id: 'b', value: true }, { stream_id: 'c', value: '2.5', sequence: 2 }] }, 10)
    if (!r.ok) throw new Error(r.error)
    expect(r.value.indexes).toEqual([0, 3])
    expect(r.value.sequenceUpTo).toBe(4)
    expect(r.value.echo).toEqual({ batch_id: 'x' })
    expect(r.value.rejected.map((x) => [x.index, x.stream_id])).toEqual([
      [1, 'unknown'],
      [2, 'b'],
    ])
    expect(r.value.rejected[0]?.reason).toBe('Missing stream_id or value')
    expect(r.value.rejected[1]?.reason).toMatch(/^value: /)
  })

  it("maps the point service's receipts back to the client's indexes and merges the rejections", () => {
    const r = parseDataFrame({ type: 'data', batch: [{ value: 1 }, { stream_id: 'a', value: 1 }, { stream_id: 'b', value: 1e9 }, { stream_id: 'a', value: 1 }] }, 10)
    if (!r.ok) throw new Error(r.error)
    const receipt: PointReceipt = {
      inserted: 1,
      rejected: 1,
      duplicates: 1,
      dead_lettered: 0,
      results: [
        { stream_id: 'a', status: 'ok', classification: 'normal' },
        { stream_id: 'b', status: 'rejected', reason: 'outside physical limits' },
        { stream_id: 'a', status: 'ok', duplicate: true },
      ],
      receipts: [
        { index: 0, status: 'stored', classification: 'normal' },
        { index: 1, status: 'rejected', code: 'VALUE_OUTSIDE_PHYSICAL_LIMITS' },
        { index: 2, status: 'duplicate' },
      ],
    }
    expect(ackFrame(r.value, receipt, 4)).toEqual({
      type: 'ack',
      sequence_up_to: null,
      rejected: [
        { index: 0, stream_id: 'unknown', reason: 'Missing stream_id or value' },
        { index: 2, stream_id: 'b', reason: 'outside physical limits' },
      ],
      processed: 2,
      inserted: 1,
      duplicates: 1,
      dead_lettered: 0,
      receipts: [
        { index: 0, status: 'rejected', code: 'INVALID_POINT' },
        { index: 1, status: 'stored', classification: 'normal' },
        { index: 2, status: 'rejected', code: 'VALUE_OUTSIDE_PHYSICAL_LIMITS' },
        { index: 3, status: 'duplicate' },
      ],
    })
  })
})
