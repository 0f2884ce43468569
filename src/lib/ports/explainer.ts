import type { ExplainRequestBody } from '../domain/ml/index.js'

/**
 * The external AI explainer (`POST $AI_EXPLAINER_URL/explain/anomaly`). `explain` resolves with the
 * parsed JSON answer of a 2xx response and rejects on anything else (refused, timeout, non-2xx, not JSON).
 */
export interface Explainer {
  explain(body: ExplainRequestBody): Promise<unknown>
  close(): Promise<void>
}
