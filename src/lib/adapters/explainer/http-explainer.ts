import { Agent, request } from 'undici'

import type { ExplainRequestBody } from '../../domain/ml/index.js'
import type { Explainer } from '../../ports/explainer.js'

export interface HttpExplainerOptions {
  /** AI_EXPLAINER_URL without a trailing slash. */
  baseUrl: string
  /** The whole call (connect, headers, body) must finish within this. */
  timeoutMs: number
  /** Connections kept to the explainer (the job's concurrency). */
  connections: number
}

/** The explainer over HTTP with undici: one keep-alive agent, a deadline per call. */
export function createHttpExplainer(options: HttpExplainerOptions): Explainer {
  const dispatcher = new Agent({ connections: options.connections, connectTimeout: options.timeoutMs, headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs })
  const url = `${options.baseUrl.replace(/\/+$/, '')}/explain/anomaly`
  return {
    async explain(body: ExplainRequestBody) {
      const res = await request(url, {
        method: 'POST',
        dispatcher,
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(options.timeoutMs),
      })
      const text = await res.body.text()
      if (res.statusCode < 200 || res.statusCode >= 300) throw new Error(`explainer answered ${res.statusCode}: ${text.slice(0, 200)}`)
      try {
        return JSON.parse(text) as unknown
      } catch {
        throw new Error(`explainer answered ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`)
      }
    },
    close: () => dispatcher.close(),
  }
}
