import type { AddressInfo } from 'node:net'

import type { ServeRuntime } from '../app/serve.js'
import { buildApp } from './app.js'

export interface RunningServer {
  url: string
  port: number
  /** Stops accepting (new requests get 503), answers everything in flight, flushes, closes. */
  close(): Promise<{ graceful: boolean }>
}

/** The only place that listens. */
export async function startHttpServer(rt: ServeRuntime, options: { host: string; port: number }): Promise<RunningServer> {
  const app = buildApp(rt)
  await app.listen({ host: options.host, port: options.port })
  const address = app.server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address
  let closing: Promise<{ graceful: boolean }> | undefined
  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    close() {
      closing ??= (async () => {
        const deadlineMs = rt.config.http.shutdownTimeoutSeconds * 1000
        let timedOut = false
        const timer = setTimeout(() => {
          timedOut = true
          rt.logger.warn({ deadlineMs }, 'shutdown deadline reached: closing remaining connections')
          app.server.closeAllConnections()
        }, Math.max(0, deadlineMs - 500))
        timer.unref()
        try {
          await app.close()
          await rt.close()
        } finally {
          clearTimeout(timer)
        }
        return { graceful: !timedOut }
      })()
      return closing
    },
  }
}
