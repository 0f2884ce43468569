import { connect, createServer, type Server, type Socket } from 'node:net'

import { freePort } from './util.js'

export type ProxyMode = 'pass' | 'blackhole' | 'reset' | 'down'

/**
 * A small fault proxy on node:net (reliability.md §2.1), loopback only, in front of `targetPort`:
 * - `pass`: pipe both ways (an upstream that refuses or closes closes the client side too);
 * - `blackhole`: accept and read, never forward, never answer (a hung upstream);
 * - `reset`: accept, then TCP RST at once;
 * - `down`: the listener is closed (connection refused) and every open socket destroyed.
 * Every accepted connection is counted with its time, so a test can assert how often a client
 * tried to connect during an outage.
 */
export class FaultProxy {
  port = 0
  mode: ProxyMode = 'pass'
  /** Epoch ms of every accepted client connection. */
  readonly accepts: number[] = []
  private server: Server | undefined
  private readonly sockets = new Set<Socket>()
  private readonly pairs = new Map<Socket, Socket>()

  private constructor(readonly targetPort: number) {}

  static async create(targetPort: number, port?: number): Promise<FaultProxy> {
    const p = new FaultProxy(targetPort)
    p.port = port ?? (await freePort())
    await p.listen()
    return p
  }

  get accepted(): number {
    return this.accepts.length
  }

  /** Connections accepted in [fromMs, toMs). */
  acceptedBetween(fromMs: number, toMs = Number.POSITIVE_INFINITY): number {
    return this.accepts.filter((t) => t >= fromMs && t < toMs).length
  }

  private track(s: Socket): void {
    this.sockets.add(s)
    s.on('close', () => this.sockets.delete(s))
    s.on('error', () => undefined)
  }

  private listen(): Promise<void> {
    const server = createServer((client) => this.onConnection(client))
    this.server = server
    return new Promise((resolve, reject) => {
      server.once('error', reject)
      server.listen(this.port, '127.0.0.1', () => {
        server.off('error', reject)
        resolve()
      })
    })
  }

  private onConnection(client: Socket): void {
    this.accepts.push(Date.now())
    this.track(client)
    switch (this.mode) {
      case 'reset':
        client.resetAndDestroy()
        return
      case 'blackhole':
        client.on('data', () => undefined)
        return
      case 'down':
        client.destroy()
        return
      case 'pass': {
        const upstream = connect({ host: '127.0.0.1', port: this.targetPort })
        this.track(upstream)
        this.pairs.set(client, upstream)
        client.pipe(upstream)
        upstream.pipe(client)
        upstream.on('error', () => client.destroy())
        upstream.on('close', () => client.destroy())
        client.on('close', () => {
          upstream.destroy()
          this.pairs.delete(client)
        })
      }
    }
  }

  /** Switches mode; `down` closes the listener and every socket, leaving `down` listens again. */
  async setMode(mode: ProxyMode): Promise<void> {
    const was = this.mode
    this.mode = mode
    if (mode === 'down' && was !== 'down') {
      await this.closeListener()
      this.destroyAll()
    } else if (was === 'down' && mode !== 'down') {
      await this.listen()
    } else if (mode === 'blackhole' || mode === 'reset') {
      // Existing connections are cut too: a fault hits live sessions, not only new ones.
      for (const [client, upstream] of this.pairs) {
        if (mode === 'reset') {
          client.resetAndDestroy()
          upstream.destroy()
        } else {
          client.unpipe(upstream)
          upstream.unpipe(client)
          client.on('data', () => undefined)
          upstream.on('data', () => undefined)
        }
      }
    }
  }

  destroyAll(): void {
    for (const s of this.sockets) s.destroy()
    this.sockets.clear()
  }

  private closeListener(): Promise<void> {
    const server = this.server
    this.server = undefined
    if (!server) return Promise.resolve()
    return new Promise((resolve) => server.close(() => resolve()))
  }

  async close(): Promise<void> {
    this.mode = 'down'
    const closing = this.closeListener()
    this.destroyAll()
    await closing
  }
}
