import { Flags } from '@oclif/core'

import { DLQ_STAGES, DLQ_STATUSES, type DlqListResult, parseDlqFilter, type PurgeDlqResult, type ReplayDlqResult } from '../app/dlq.js'
import { csvRow } from '../domain/csv-export.js'
import { UsageError } from '../errors/index.js'
import type { DeadLetterEntry, DlqFilter, DlqStats } from '../ports/dead-letter-queue.js'

// ---------------------------------------------------------------- flags

/** The filter flags of `dlq list`, `replay` and `purge`. */
export const dlqFilterFlags = {
  since: Flags.string({ description: 'first failed at or after: ISO-8601, or a duration meaning "ago" (90m, 1h, 7d)', helpGroup: 'FILTER' }),
  until: Flags.string({ description: 'first failed at or before: ISO-8601, or a duration meaning "ago"', helpGroup: 'FILTER' }),
  stage: Flags.string({ description: 'pipeline stage that failed', options: DLQ_STAGES, helpGroup: 'FILTER' }),
  'error-class': Flags.string({ description: 'error class (outage, constraint, invalid_json, ...)', helpGroup: 'FILTER' }),
  'sensor-id': Flags.integer({ description: 'IoT sensor id', helpGroup: 'FILTER' }),
  'series-id': Flags.string({ description: 'universal series id (domain:source_id:stream_id)', helpGroup: 'FILTER' }),
  status: Flags.string({ description: 'pending or parked', options: DLQ_STATUSES, helpGroup: 'FILTER' }),
  limit: Flags.integer({ description: 'at most this many entries (oldest first failure first)', min: 1, helpGroup: 'FILTER' }),
}

export interface DlqFilterFlagValues {
  since?: string | undefined
  until?: string | undefined
  stage?: string | undefined
  'error-class'?: string | undefined
  'sensor-id'?: number | undefined
  'series-id'?: string | undefined
  status?: string | undefined
  limit?: number | undefined
}

/** The filter flags as a validated DlqFilter (durations count back from now). */
export function dlqFilterFromFlags(f: DlqFilterFlagValues): DlqFilter {
  return parseDlqFilter({ since: f.since, until: f.until, stage: f.stage, errorClass: f['error-class'], sensorId: f['sensor-id'], seriesId: f['series-id'], status: f.status, limit: f.limit }, Date.now())
}

/** `--rate 50` or `--rate 50/s`: entries per second. */
export const rateFlag = Flags.custom<number>({
  description: 'replay at most this many entries per second (e.g. 50 or 50/s)',
  helpValue: '<n/s>',
  parse: (input) => {
    const n = Number(input.trim().replace(/\s*\/\s*s$/i, ''))
    if (!(Number.isFinite(n) && n > 0)) return Promise.reject(new UsageError(`--rate: ${JSON.stringify(input)} is not a positive number of entries per second`))
    return Promise.resolve(n)
  },
})

// ---------------------------------------------------------------- output

const clip = (text: string, max: number): string => {
  // eslint-disable-next-line no-control-regex
  const one = text.replace(/[\u0000-\u001f\u007f]+/g, ' ')
  return one.length > max ? `${one.slice(0, max - 1)}…` : one
}

function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd()
  return [line(head), ...rows.map(line)]
}

const target = (e: DeadLetterEntry): string => (e.sensorId !== null ? `sensor ${e.sensorId}` : (e.seriesId ?? '-'))

/** `dlq list`: one line per entry (payloads in --json, --csv and `dlq show`). */
export function renderDlqList(r: DlqListResult): string[] {
  if (r.entries.length === 0) return [`no dead letters (${r.backend})`]
  const rows = r.entries.map((e) => [e.entryId, e.firstFailedAt, e.status, String(e.attempts), e.transport, e.stage, e.errorClass, clip(target(e), 40), clip(e.error, 60)])
  return [...table(['ENTRY ID', 'FIRST FAILED', 'STATUS', 'ATTEMPTS', 'TRANSPORT', 'STAGE', 'ERROR CLASS', 'TARGET', 'ERROR'], rows), `${r.count} entr${r.count === 1 ? 'y' : 'ies'} (${r.backend})`]
}

export const DLQ_CSV_HEADER = ['entry_id', 'status', 'attempts', 'first_failed_at', 'last_failed_at', 'transport', 'stage', 'error_class', 'error', 'sensor_id', 'series_id', 'msg_id', 'payload'] as const

/**
 * `dlq list --csv`: RFC 4180 with formula-injection escaping, the payload as JSON. Each line carries
 * its CR: the command prints lines with LF, so records end with CRLF.
 */
export function renderDlqCsv(entries: readonly DeadLetterEntry[]): string[] {
  const rows = entries.map((e) => [e.entryId, e.status, e.attempts, e.firstFailedAt, e.lastFailedAt, e.transport, e.stage, e.errorClass, e.error, e.sensorId, e.seriesId, e.msgId, JSON.stringify(e.payload) ?? 'null'])
  return [csvRow(DLQ_CSV_HEADER), ...rows.map(csvRow)].map((line) => `${line}\r`)
}

/** `dlq show`: every field, the payload pretty-printed. */
export function renderDlqEntry(e: DeadLetterEntry): string[] {
  return [
    `entry       ${e.entryId}`,
    `status      ${e.status} (attempts ${e.attempts})`,
    `failed      first ${e.firstFailedAt}, last ${e.lastFailedAt}`,
    `transport   ${e.transport}`,
    `stage       ${e.stage}`,
    `error class ${e.errorClass}`,
    `error       ${clip(e.error, 2000)}`,
    ...(e.sensorId !== null ? [`sensor id   ${e.sensorId}`] : []),
    ...(e.seriesId !== null ? [`series id   ${e.seriesId}`] : []),
    ...(e.msgId !== null ? [`msg id      ${e.msgId}`] : []),
    'payload',
    ...(JSON.stringify(e.payload, null, 2) ?? 'null').split('\n').map((l) => `  ${l}`),
  ]
}

const counts = (m: Record<string, number>): string => Object.entries(m).sort(([, a], [, b]) => b - a).map(([k, n]) => `${k} ${n}`).join(', ') || '-'

export function renderDlqStats(s: DlqStats): string[] {
  return [
    `${s.backend} DLQ: ${s.depth} of ${s.capacity} (${s.pending} pending, ${s.parked} parked)${s.depth >= s.capacity ? ': FULL, new failures are refused' : ''}`,
    `oldest failure: ${s.oldestFailedAt ?? '-'}`,
    `by stage: ${counts(s.byStage)}`,
    `by error class: ${counts(s.byErrorClass)}`,
  ]
}

export function renderPurge(r: PurgeDlqResult): string[] {
  return [`purged ${r.purged} dead letter${r.purged === 1 ? '' : 's'} (${r.backend}, job run ${r.jobRunId})`]
}

export function renderReplay(r: ReplayDlqResult): string[] {
  if (r.dryRun) {
    const planned = r.planned ?? []
    return [
      `dry run: would replay ${planned.length} of ${r.selected} selected entr${r.selected === 1 ? 'y' : 'ies'}${r.skipped ? ` (${r.skipped} skipped: not readings)` : ''}; nothing was changed`,
      ...planned.map((p) => `  ${p.entryId}  ${p.sensorId !== null ? `sensor ${p.sensorId}` : (p.seriesId ?? '-')}  ${p.transport}  ${p.stage}/${p.errorClass}  attempts ${p.attempts}  first failed ${p.firstFailedAt}`),
    ]
  }
  return [
    `replayed ${r.selected - r.skipped} of ${r.selected}: ${r.stored} stored, ${r.duplicates} already stored, ${r.failed} failed (${r.parked} now parked), ${r.skipped} skipped (job run ${r.jobRunId ?? '-'})`,
    ...r.failures.map((f) => `  ${f.entryId}: ${clip(f.error, 200)}`),
  ]
}
