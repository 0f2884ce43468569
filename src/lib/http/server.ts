import type { AddressInfo } from 'node:net'

import { buildApp } from './app.js'
import type { HttpRuntime } from './runtime.js'

export interface RunningServer {
  url: string
  port: number
  /** Stops accepting (new requests get 503), answers everything in flight, flushes, closes. */
  close(): Promise<{ graceful: boolean }>
}

/** The only place that listens. */
export async function startHttpServer(rt: HttpRuntime, options: { host: string; port: number }): Promise<RunningServer> {
  const state = { closing: false }
  const app = buildApp(rt, state)
  await app.listen({ host: options.host, port: options.port })
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing: Promise<{ graceful: boolean }> | undefined
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close() {
      closing ??= (async () => {
        // Leave time inside SHUTDOWN_TIMEOUT_SECONDS for the releasers (pools, Redis) after the drain.
        const deadlineMs = Math.max(0, rt.config.http.shutdownTimeoutSeconds * 1000 - 1500)
        state.closing = true
        let timer: NodeJS.Timeout | undefined
        const deadline = new Promise<'deadline'>((resolve) => {
          timer = setTimeout(() => resolve('deadline'), deadlineMs)
          timer.unref()
        })
        const drain = (async () => {
          await app.close()
          await rt.close()
          return 'drained' as const
        })()
        drain.catch((err: unknown) => rt.logger.error({ err }, 'shutdown failed'))
        const outcome = await Promise.race([drain, deadline])
        clearTimeout(timer)
        if (outcome === 'deadline') {
          // Whatever could not commit by now was never acknowledged: stop waiting for it.
          rt.logger.warn({ deadlineMs }, 'shutdown deadline reached: closing remaining connections; unflushed items were not acknowledged')
          app.server.closeAllConnections()
          return { graceful: false }
        }
        return { graceful: true }
      })()
      return closing
    },
  }
}
