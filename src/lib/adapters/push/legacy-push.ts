import { request } from 'undici'

import type { Logger } from '../../log/index.js'
import type { AlertPush, PushOutcome } from '../../ports/alert-push.js'

export interface LegacyPushOptions {
  /** `BACKEND_URL`. */
  backendUrl: string
  /** `INTERNAL_API_KEY`, sent as X-Internal-Key. */
  internalApiKey: string
  logger: Logger
  /** Each push's outcome (metrics). */
  onOutcome(outcome: PushOutcome): void
  /** Per request, as the legacy service (5 s). */
  timeoutMs?: number
  /** Pushes in flight at once. */
  concurrency?: number
  /** Alerts waiting beyond those in flight; more are dropped and counted (a slow backend never grows memory). */
  maxQueued?: number
}

/**
 * `POST {BACKEND_URL}/notifications/internal/trigger-push` with `{"type":"alert","alertId":"<id>"}` per
 * opened alert (reference §6.8 step 6), over undici with a timeout, a few at a time, from a bounded queue.
 */
export function createLegacyPush(options: LegacyPushOptions): AlertPush {
  // A BACKEND_URL with a path prefix keeps it (`http://host/api` -> `http://host/api/notifications/...`).
  const url = new URL(options.backendUrl)
  url.pathname = `${url.pathname.replace(/\/$/, '')}/notifications/internal/trigger-push`
  const timeoutMs = options.timeoutMs ?? 5_000
  const concurrency = options.concurrency ?? 4
  const maxQueued = options.maxQueued ?? 10_000
  const queue: number[] = []
  const running = new Set<Promise<void>>()
  let closed = false

  const send = async (alertId: number): Promise<void> => {
    try {
      const res = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-internal-key': options.internalApiKey },
        body: JSON.stringify({ type: 'alert', alertId: String(alertId) }),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: AbortSignal.timeout(timeoutMs),
      })
      const text = await res.body.text()
      // The backend answers 200 {ok: false, error} for a bad key (reference §6.8): a failure too.
      const ok = res.statusCode >= 200 && res.statusCode < 300 && !answeredNotOk(text)
      options.onOutcome(ok ? 'sent' : 'failed')
      if (!ok) options.logger.warn({ alertId, status: res.statusCode, body: text.slice(0, 200) }, 'alert push refused')
    } catch (err) {
      options.onOutcome('failed')
      options.logger.warn({ alertId, err: (err as Error).message }, 'alert push failed')
    }
  }

  const pump = (): void => {
    while (running.size < concurrency && queue.length > 0) {
      const id = queue.shift() as number
      const p: Promise<void> = send(id).finally(() => {
        running.delete(p)
        pump()
      })
      running.add(p)
    }
  }

  return {
    announce(alertIds) {
      for (const id of alertIds) {
        if (closed || queue.length >= maxQueued) {
          options.onOutcome('dropped')
          continue
        }
        queue.push(id)
      }
      pump()
    },
    async close() {
      closed = true
      while (running.size > 0) await Promise.all(running)
    },
  }
}

function answeredNotOk(text: string): boolean {
  try {
    const body: unknown = JSON.parse(text)
    return typeof body === 'object' && body !== null && (body as { ok?: unknown }).ok === false
  } catch {
    return false
  }
}
