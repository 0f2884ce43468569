import { z } from 'zod'

import { explainRequestBody, fitJson, type ExplainRequestBody } from '../../domain/ml/index.js'
import { UsageError } from '../../errors/index.js'
import type { Explainer } from '../../ports/explainer.js'
import type { AnomalyToExplain } from '../../ports/prediction-store.js'
import type { AppContext } from '../context.js'
import { startJobRun } from '../job-runs.js'

export interface ExplainAnomaliesOptions {
  /** --anomaly-threshold (0.8). */
  threshold: number
  /** --batch-size (50): the most predictions selected. */
  limit: number
  concurrency: number
  timeoutMs: number
  dryRun: boolean
  /** Default: the HTTP explainer at AI_EXPLAINER_URL. */
  explainer?: Explainer
  onProgress?: (p: ExplainProgress) => void
}

export interface ExplainProgress {
  selected: number
  explained: number
  skipped: number
  failed: number
}

export interface ExplainSkip {
  predictionId: number
  reason: string
}

export interface ExplainAnomaliesResult extends ExplainProgress {
  jobRunId: number | null
  dryRun: boolean
  explainerUrl: string
  /** --dry-run: the requests that would be sent. */
  requests: Array<{ predictionId: number; url: string; body: ExplainRequestBody }>
  /** Why rows were skipped (explainer failures, invalid answers, rows explained meanwhile). */
  skips: ExplainSkip[]
  /** Rows whose explanation could not be stored (database errors). */
  failures: ExplainSkip[]
}

/**
 * The answer we store: a JSON object; the fields the backend reads (reference §13.2) must have their
 * types when present, and `explanation` must be there. Unknown fields are kept.
 */
export const explanationSchema = z.looseObject({
  explanation: z.string().min(1),
  severity: z.string().optional(),
  possible_causes: z.array(z.string()).optional(),
  recommended_action: z.string().optional(),
  confidence: z.number().optional(),
})

const MAX_LISTED = 50

const errorText = (err: unknown): string => {
  const e = err as { name?: string; message?: string; cause?: { code?: string; message?: string } }
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return 'explainer timed out'
  const cause = e?.cause?.code ?? e?.cause?.message
  return `${e?.message ?? String(err)}${cause && !String(e?.message).includes(cause) ? ` (${cause})` : ''}`.slice(0, 300)
}

/**
 * `ingest explain anomalies` (DESIGN §11): predictions with is_anomaly, anomaly_score >= threshold and no
 * explanation, newest first, are sent to the explainer with bounded concurrency and a deadline each; a
 * valid answer is stored as JSON (shortened to valid JSON within the column on SQL Server) and committed
 * on its own. An unreachable, slow or failing explainer, or an invalid answer, skips the row; the run goes on.
 */
export async function explainAnomalies(ctx: AppContext, options: ExplainAnomaliesOptions): Promise<ExplainAnomaliesResult> {
  if (!(options.threshold >= 0 && options.threshold <= 1)) throw new UsageError('--anomaly-threshold must be between 0 and 1')
  if (!(Number.isSafeInteger(options.limit) && options.limit >= 1)) throw new UsageError('--batch-size must be a whole number of 1 or more')
  if (!(Number.isSafeInteger(options.concurrency) && options.concurrency >= 1)) throw new UsageError('--concurrency must be a whole number of 1 or more')
  if (!(options.timeoutMs > 0)) throw new UsageError('--timeout must be above 0')
  const store = ctx.iot.predictions
  const url = ctx.config.ml.explainerUrl
  const rows = await store.anomaliesToExplain({ threshold: options.threshold, limit: options.limit })
  const sensorIds = [...new Set(rows.map((r) => r.sensorId))]
  const thresholds = await store.thresholds(sensorIds)
  const bodyOf = (r: AnomalyToExplain): ExplainRequestBody =>
    explainRequestBody({ sensorType: r.sensorType, predictedValue: r.predictedValue, anomalyScore: r.anomalyScore, thresholds: thresholds.get(r.sensorId) ?? [] })
  const result: ExplainAnomaliesResult = { jobRunId: null, dryRun: options.dryRun, explainerUrl: url, selected: rows.length, explained: 0, skipped: 0, failed: 0, requests: [], skips: [], failures: [] }
  if (options.dryRun) {
    result.requests = rows.map((r) => ({ predictionId: r.id, url: `${url}/explain/anomaly`, body: bodyOf(r) }))
    return result
  }

  const run = await startJobRun(ctx, 'explain anomalies', { threshold: options.threshold, limit: options.limit, concurrency: options.concurrency, timeoutMs: options.timeoutMs })
  result.jobRunId = run.id
  let explainer = options.explainer
  let owned = false
  if (!explainer) {
    const { createHttpExplainer } = await import('../../adapters/explainer/http-explainer.js')
    explainer = createHttpExplainer({ baseUrl: url, timeoutMs: options.timeoutMs, connections: options.concurrency })
    owned = true
  }
  const skip = (predictionId: number, reason: string): void => {
    result.skipped++
    if (result.skips.length < MAX_LISTED) result.skips.push({ predictionId, reason })
  }
  const progress = (): void => options.onProgress?.({ selected: result.selected, explained: result.explained, skipped: result.skipped, failed: result.failed })
  const maxChars = store.explanationMaxChars

  const explainOne = async (r: AnomalyToExplain, ex: Explainer): Promise<void> => {
    let answer: unknown
    try {
      answer = await ex.explain(bodyOf(r))
    } catch (err) {
      ctx.logger.warn({ predictionId: r.id, err: errorText(err) }, 'explainer call failed; row skipped')
      return skip(r.id, errorText(err))
    }
    const parsed = explanationSchema.safeParse(answer)
    if (!parsed.success) return skip(r.id, `invalid answer: ${parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ')}`.slice(0, 300))
    const json = maxChars === null ? JSON.stringify(parsed.data) : fitJson(parsed.data, maxChars)
    try {
      if (await store.saveExplanation(r.id, json)) result.explained++
      else skip(r.id, 'explained meanwhile by another run')
    } catch (err) {
      result.failed++
      if (result.failures.length < MAX_LISTED) result.failures.push({ predictionId: r.id, reason: errorText(err) })
      ctx.logger.error({ predictionId: r.id, err }, 'storing an explanation failed')
    }
  }

  try {
    let next = 0
    const ex = explainer
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const r = rows[next++]
        if (!r) continue
        await explainOne(r, ex)
        progress()
      }
    }
    await Promise.all(Array.from({ length: Math.min(options.concurrency, Math.max(1, rows.length)) }, worker))
  } catch (err) {
    await run.fail(err, counts(result)).catch(() => undefined)
    throw err
  } finally {
    if (owned) await explainer.close().catch(() => undefined)
  }
  if (result.failed > 0) await run.fail(new Error(`${result.failed} explanation(s) could not be stored; first: ${result.failures[0]?.reason}`), counts(result))
  else await run.succeed(counts(result))
  return result
}

function counts(r: ExplainProgress): Record<string, number> {
  return { selected: r.selected, explained: r.explained, skipped: r.skipped, failed: r.failed }
}
