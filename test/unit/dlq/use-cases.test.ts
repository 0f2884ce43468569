import { describe, expect, it } from 'vitest'

import { ENTRY_ID_PATTERN, createEntryIdGenerator } from '../../../src/lib/adapters/dlq/entry-id.js'
import { decodePayload, encodePayload } from '../../../src/lib/adapters/dlq/payload.js'
import { asReplayableReading, describeFilter, listDlq, parseDlqFilter, purgeDlq, showDlq } from '../../../src/lib/app/dlq.js'
import { NotFoundError, UsageError } from '../../../src/lib/errors/index.js'
import { deadReading, fakeContext, FakeDlq, reading, T0 } from './fakes.js'

describe('parseDlqFilter', () => {
  const now = T0
  it('reads ISO times and durations meaning "ago"', () => {
    expect(parseDlqFilter({ since: '1h', until: '90s' }, now)).toEqual({ since: now - 3_600_000, until: now - 90_000 })
    expect(parseDlqFilter({ since: '2026-11-25T00:00:00Z', until: '2026-11-26T00:00:00.500+01:00' }, now)).toEqual({ since: Date.parse('2026-11-25T00:00:00Z'), until: Date.parse('2026-11-25T23:00:00.500Z') })
    expect(parseDlqFilter({ since: '7d' }, now)).toEqual({ since: now - 7 * 86_400_000 })
  })

  it('passes the other filters through and validates them', () => {
    expect(parseDlqFilter({ stage: 'store', status: 'parked', errorClass: 'outage', sensorId: 12, seriesId: 'a:b:c', limit: 5 }, now)).toEqual({ stage: 'store', status: 'parked', errorClass: 'outage', sensorId: 12, seriesId: 'a:b:c', limit: 5 })
    for (const bad of [{ since: 'yesterday' }, { until: '12:00' }, { stage: 'constructor' }, { status: 'done' }, { limit: 0 }, { sensorId: 1.5 }, { since: '1h', until: '2h' }]) {
      expect(() => parseDlqFilter(bad, now)).toThrow(UsageError)
    }
  })

  it('describeFilter gives JSON with ISO times', () => {
    expect(describeFilter({ since: T0, sensorId: 3, status: 'pending' })).toEqual({ since: '2026-11-26T12:00:00.000Z', sensorId: 3, status: 'pending' })
  })
})

describe('list, show and purge', () => {
  it('listDlq and showDlq return entries whole; show of an unknown id is NotFound', async () => {
    const { clock } = fakeContext()
    const dlq = new FakeDlq(clock)
    const [id] = await dlq.add([deadReading(reading(1, 2))])
    const list = await listDlq(dlq, {})
    expect(list).toMatchObject({ backend: 'local', count: 1, entries: [{ entryId: id, payload: reading(1, 2) }] })
    expect(await showDlq(dlq, ` ${id} `)).toEqual(list.entries[0])
    await expect(showDlq(dlq, 'nope')).rejects.toBeInstanceOf(NotFoundError)
  })

  it('purge refuses without yes (exit 2) and touches nothing', async () => {
    const { ctx, clock, jobRuns, events } = fakeContext()
    const dlq = new FakeDlq(clock)
    await dlq.add([deadReading(reading(1, 2))])
    dlq.writes.length = 0
    const err = await purgeDlq(ctx, dlq, { filter: {}, yes: false }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(UsageError)
    expect((err as UsageError).exitCode).toBe(2)
    expect(dlq.writes).toEqual([])
    expect(jobRuns.runs).toEqual([])
    expect(events).toEqual([])
  })

  it('purge deletes only matched entries, writes a job run and a dlq.purge audit row', async () => {
    const { ctx, clock, jobRuns, events } = fakeContext()
    const dlq = new FakeDlq(clock)
    const [keep] = await dlq.add([deadReading(reading(1, 2), { errorClass: 'constraint' })])
    await dlq.add([deadReading(reading(2, 2), { errorClass: 'outage' }), deadReading(reading(3, 2), { errorClass: 'outage' })])
    const r = await purgeDlq(ctx, dlq, { filter: { errorClass: 'outage' }, yes: true })
    expect(r).toEqual({ backend: 'local', purged: 2, filter: { errorClass: 'outage' }, jobRunId: 1 })
    expect((await dlq.list()).map((e) => e.entryId)).toEqual([keep])
    expect(jobRuns.runs[0]).toMatchObject({ job: 'dlq purge', options: { filter: { errorClass: 'outage' } }, end: { status: 'succeeded', counts: { purged: 2 } } })
    expect(events).toEqual([expect.objectContaining({ eventType: 'dlq.purge', outcome: 'success', actorType: 'cli', targetType: 'dlq', details: expect.objectContaining({ purged: 2, filter: { errorClass: 'outage' }, by: expect.stringMatching(/^cli:/) as unknown }) as unknown })])
  })
})

describe('payloads and entry ids', () => {
  it('asReplayableReading accepts only complete readings', () => {
    expect(asReplayableReading(reading(1, 2))).toEqual(reading(1, 2))
    expect(asReplayableReading({ ...reading(1, 2), extra: 1 })).toEqual(reading(1, 2))
    for (const bad of [null, 'text', { kind: 'bytes', data: '' }, { ...reading(1, 2), kind: 'point' }, { ...reading(1, 2), value: '2' }, { ...reading(1, 2), sensorId: 1.5 }]) expect(asReplayableReading(bad)).toBeNull()
  })

  it('encodes raw bytes exactly, bigints as text, and never fails on a payload JSON cannot hold', () => {
    expect(decodePayload(encodePayload(Buffer.from('héllo')))).toEqual({ kind: 'bytes', encoding: 'base64', data: Buffer.from('héllo').toString('base64') })
    expect(decodePayload(encodePayload({ n: 10n }))).toEqual({ n: '10' })
    expect(decodePayload(encodePayload(undefined))).toBeNull()
    const cyclic: Record<string, unknown> = {}
    cyclic['self'] = cyclic
    expect(decodePayload(encodePayload(cyclic))).toMatchObject({ kind: 'unserializable' })
    let deep: unknown = 1
    for (let i = 0; i < 20_000; i++) deep = [deep]
    expect(decodePayload(encodePayload(deep))).toMatchObject({ kind: 'unserializable' })
    expect(decodePayload('not json')).toBe('not json')
  })

  it('entry ids are ULIDs, sorted by time and monotonic within a millisecond', () => {
    const next = createEntryIdGenerator()
    const ids = [next(T0), next(T0), next(T0), next(T0 + 1), next(T0 - 5)]
    for (const id of ids) expect(id).toMatch(ENTRY_ID_PATTERN)
    expect([...ids].sort()).toEqual(ids)
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids[0]?.slice(0, 10)).toBe(ids[1]?.slice(0, 10))
  })
})
