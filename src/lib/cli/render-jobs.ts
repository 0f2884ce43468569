import { Flags } from '@oclif/core'

import type { BatchPredictProgress, BatchPredictResult } from '../app/jobs/batch-predict.js'
import type { ExplainAnomaliesResult, ExplainProgress } from '../app/jobs/explain-anomalies.js'
import { parseDurationSeconds } from '../config/index.js'
import { UsageError } from '../errors/index.js'

export { withJobProgress } from './progress.js'

const n = (x: number): string => x.toLocaleString('en-US')

/** A duration flag (`90`, `30s`, `5m`, `1h`) in milliseconds; UsageError naming the flag. */
export function durationMs(flag: string, text: string): number {
  const seconds = parseDurationSeconds(text)
  if (seconds === undefined || !(seconds > 0)) throw new UsageError(`--${flag} must be a duration above 0 (e.g. 500ms, 10s, 1m), got ${JSON.stringify(text)}`)
  return Math.round(seconds * 1000)
}

export const jobFlags = {
  concurrency: (description: string, fallback?: number) => Flags.integer({ description, min: 1, max: 64, ...(fallback === undefined ? {} : { default: fallback }) }),
}

export function predictProgressLine(p: BatchPredictProgress): string {
  const rate = p.elapsedMs > 0 ? Math.round((p.done * 1000) / p.elapsedMs) : 0
  return `${n(p.done)}/${n(p.sensors)} sensors · ${n(rate)} sensors/s · ${n(p.predictions)} predictions · ${n(p.events)} events · ${n(p.skipped)} skipped · ${n(p.failed)} failed`
}

export function renderBatchPredict(r: BatchPredictResult): string[] {
  const lines = [
    `batch predict (${r.engine}${r.shard ? `, shard ${r.shard}` : ''}): ${n(r.sensors)} sensors in ${r.seconds.toFixed(1)} s (${n(r.sensorsPerSecond)} sensors/s), job ${r.jobRunId}`,
    `  predictions ${n(r.predictions)}, events ${n(r.events)}, skipped ${n(r.skipped)}, failed ${n(r.failed)}`,
  ]
  for (const f of r.failures) lines.push(`  sensor ${f.sensorId}: ${f.error}`)
  if (r.failed > r.failures.length) lines.push(`  ... and ${n(r.failed - r.failures.length)} more`)
  return lines
}

export function explainProgressLine(p: ExplainProgress): string {
  return `${n(p.explained + p.skipped + p.failed)}/${n(p.selected)} · ${n(p.explained)} explained · ${n(p.skipped)} skipped · ${n(p.failed)} failed`
}

export function renderExplainAnomalies(r: ExplainAnomaliesResult): string[] {
  if (r.dryRun) {
    const lines = [`dry run: ${n(r.selected)} prediction(s) would be sent to ${r.explainerUrl}/explain/anomaly (nothing called, nothing written)`]
    for (const q of r.requests) lines.push(`  prediction ${q.predictionId}: POST ${q.url} ${JSON.stringify(q.body)}`)
    return lines
  }
  const lines = [`explain anomalies: selected ${n(r.selected)}, explained ${n(r.explained)}, skipped ${n(r.skipped)}, failed ${n(r.failed)}${r.jobRunId === null ? '' : ` (job ${r.jobRunId})`}`]
  for (const s of r.skips.slice(0, 10)) lines.push(`  skipped prediction ${s.predictionId}: ${s.reason}`)
  if (r.skipped > 10) lines.push(`  ... and ${n(r.skipped - 10)} more skipped`)
  for (const f of r.failures) lines.push(`  failed prediction ${f.predictionId}: ${f.reason}`)
  return lines
}
