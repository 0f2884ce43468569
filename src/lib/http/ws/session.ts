import { randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'

import type { WebSocket } from 'ws'

import type { Config } from '../../config/index.js'
import { AppError } from '../../errors/index.js'
import type { Logger } from '../../log/index.js'
import type { AuditRow } from '../../ports/universal-store.js'
import type { HttpRuntime } from '../runtime.js'
import { ackFrame, checkConnect, CLOSE, decodeFrame, echoOf, type ParsedBatch, parseDataFrame, type ServerFrame } from './frames.js'

type RawData = Buffer | ArrayBuffer | Buffer[]

/** What the answer to one client frame is: a frame, a close, or both (the frame first). */
interface Outgoing {
  frame?: ServerFrame
  close?: { code: number; reason: string }
}

export interface SessionOptions {
  rt: HttpRuntime
  ws: WebSocket
  /** The TCP socket under `ws` ('drain' tells when the client has read its answers). */
  socket: Socket
  clientIp: string
  /** `X-API-Key` of the upgrade request, if any (the query string is never read). */
  headerKey: string | undefined
  logger: Logger
  limits: Config['websocket'] & { maxItems: number; maxJsonDepth: number }
}

const NOTHING: Outgoing = Object.freeze({})
const now = (out: Outgoing): { reply: Promise<Outgoing> } => ({ reply: Promise.resolve(out) })

/**
 * One `/ingest/stream` connection (reference §1.16, DESIGN §6/§7). Frames are dispatched one at a time in
 * arrival order (a `connect` is authorised before the next frame is looked at); a `data` frame's commit
 * runs concurrently with the next frames', at most `maxInFlight` per connection; answers are written in
 * frame order, each ack after its batch's COMMIT. Memory is bounded per connection: past `maxInFlight`
 * unanswered frames, or while the client has more than `maxBufferedBytes` of answers unread, the socket
 * is not read (TCP pushes back on the sender); a client that stays that slow for `slowClientTimeoutMs`
 * is disconnected. Timers are decided on the runtime's clock by `tick()`, so tests move time by hand.
 */
export class StreamSession {
  readonly id = randomUUID()
  private state: 'connecting' | 'open' | 'closing' = 'connecting'
  private target: { domain: string; sourceId: string; credential: string | null } | undefined
  private dispatchTail: Promise<unknown> = Promise.resolve()
  private outTail: Promise<void> = Promise.resolve()
  /** Frames read and not yet answered. */
  private pending = 0
  private slowSince: number | null = null
  private draining = false
  private readonly openedAt: number
  private lastPingAt: number
  private awaitingPong = false
  private terminateAt: number | null = null
  /** Resolves when the socket is closed (either side). */
  readonly closed: Promise<void>

  constructor(private readonly o: SessionOptions) {
    this.openedAt = this.lastPingAt = o.rt.clock.now()
    o.ws.on('message', (data: RawData, isBinary: boolean) => this.onMessage(data, isBinary))
    o.ws.on('pong', () => {
      this.awaitingPong = false
    })
    const onDrain = () => this.checkBuffered()
    o.socket.on('drain', onDrain)
    this.closed = new Promise((resolve) => {
      o.ws.once('close', (code: number, reason: Buffer) => {
        o.socket.off('drain', onDrain)
        o.logger.debug({ session: this.id, code, reason: reason.toString() }, 'websocket closed')
        resolve()
      })
    })
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.state === 'closing') return
    this.pending++
    this.updateReading()
    const dispatched = this.dispatchTail.then(() => this.dispatch(data, isBinary))
    this.dispatchTail = dispatched
    this.outTail = this.outTail.then(async () => {
      const out = await (await dispatched).reply
      this.pending--
      this.write(out)
      this.updateReading()
    })
  }

  /** Never rejects: a bug answers 1011. */
  private async dispatch(data: RawData, isBinary: boolean): Promise<{ reply: Promise<Outgoing> }> {
    try {
      if (this.state === 'closing') return now(NOTHING)
      const decoded = decodeFrame(data, isBinary, this.o.limits.maxJsonDepth)
      if (this.state === 'connecting') {
        if (!decoded.ok) return now(this.fail(decoded.error, CLOSE.unsupported))
        return now(await this.connect(decoded.value))
      }
      if (!decoded.ok) return now(isBinary ? this.fail(decoded.error, CLOSE.unsupported) : { frame: { type: 'error', error: decoded.error } })
      const frame = decoded.value
      const type = frame['type']
      if (type === 'disconnect') {
        this.state = 'closing'
        return now({ close: { code: CLOSE.normal, reason: '' } })
      }
      if (type !== 'data') return now({ frame: { type: 'error', error: `Unknown message type: ${String(type).slice(0, 100)}` } })
      const parsed = parseDataFrame(frame, this.o.limits.maxItems)
      if (!parsed.ok) return now({ frame: { type: 'error', error: parsed.error, ...echoOf(frame) } })
      const total = (frame['batch'] as unknown[]).length
      return { reply: this.ingest(parsed.value, total) }
    } catch (err) {
      this.o.logger.error({ err, session: this.id }, 'websocket frame failed')
      return now(this.fail('Internal error', CLOSE.internal))
    }
  }

  /** An error frame, then the close; later frames are ignored. */
  private fail(error: string, code: number): Outgoing {
    this.state = 'closing'
    return { frame: { type: 'error', error }, close: { code, reason: error.slice(0, 120) } }
  }

  private async connect(frame: Record<string, unknown>): Promise<Outgoing> {
    const { rt } = this.o
    const c = checkConnect(frame, this.o.headerKey)
    const refused = (error: string, code: number, apiKey: string | undefined): Outgoing => {
      const domain = typeof frame['domain'] === 'string' ? frame['domain'].slice(0, 50) : '?'
      const sourceId = typeof frame['source_id'] === 'string' ? frame['source_id'].slice(0, 255) : '?'
      this.audit([{ seriesId: `${domain}:${sourceId}:*`, domain, sourceId, value: null, classification: null, transport: 'websocket', credential: rt.auth.credential(apiKey), clientIp: this.o.clientIp, dataTime: rt.clock.now(), status: 'refused', error: `${code} ${error}`, metadata: null }])
      return this.fail(error, code)
    }
    if (!c.ok) return refused(c.error, c.close, this.o.headerKey)
    let auth
    try {
      auth = await rt.auth.source({ apiKey: c.apiKey, sourceIp: this.o.clientIp, sourceId: c.sourceId, domain: c.domain, transport: 'websocket' })
    } catch (err) {
      this.o.logger.error({ err, session: this.id }, 'websocket authentication failed')
      return this.fail('Authentication service unavailable', CLOSE.internal)
    }
    if (!auth.ok) {
      rt.metrics.authFailures.inc({ route: '/ingest/stream', reason: auth.code })
      return refused(auth.reason === 'forbidden' ? (auth.detail ?? 'Not authorized') : 'Invalid API key', CLOSE.policy, c.apiKey)
    }
    this.target = { domain: c.domain, sourceId: c.sourceId, credential: auth.credential }
    this.state = 'open'
    return { frame: { type: 'connected', session_id: this.id } }
  }

  /** Commits a batch; the ack after the COMMIT. A 503 (breaker, full queue) is an error frame: resend the batch. */
  private async ingest(batch: ParsedBatch, total: number): Promise<Outgoing> {
    const { rt } = this.o
    const t = this.target as NonNullable<StreamSession['target']>
    const caller = { transport: 'websocket' as const, credential: t.credential, clientIp: this.o.clientIp }
    try {
      if (batch.rejected.length > 0) {
        const time = rt.clock.now()
        this.audit(batch.rejected.map((r) => ({ seriesId: `${t.domain}:${t.sourceId}:${r.stream_id}`, domain: t.domain, sourceId: t.sourceId, value: null, classification: null, ...caller, dataTime: time, status: 'rejected', error: r.reason, metadata: null })))
      }
      const receipt = await rt.points.ingestPoints({ domain: t.domain, sourceId: t.sourceId, points: batch.points }, caller)
      return { frame: ackFrame(batch, receipt, total) }
    } catch (err) {
      if (err instanceof AppError && err.httpStatus === 503) {
        const retryAfter = (err as { retryAfterSeconds?: number }).retryAfterSeconds ?? (err.code === 'QUEUE_FULL' ? 1 : 5)
        return { frame: { type: 'error', error: err.code === 'QUEUE_FULL' ? 'Server busy: ingest queue full' : 'Service unavailable', code: err.code, retry_after: retryAfter, ...batch.echo } }
      }
      this.o.logger.error({ err, session: this.id }, 'websocket batch failed')
      this.state = 'closing'
      return { frame: { type: 'error', error: 'Internal error', ...batch.echo }, close: { code: CLOSE.internal, reason: 'Internal error' } }
    }
  }

  /** Best effort: an audit failure never changes the answer. */
  private audit(rows: AuditRow[]): void {
    this.o.rt.universal.points.audit(rows).catch((err: unknown) => this.o.logger.warn({ err }, 'audit row not written'))
  }

  private write(out: Outgoing): void {
    const { ws } = this.o
    if (ws.readyState !== ws.OPEN) return
    if (out.frame) ws.send(JSON.stringify(out.frame))
    if (out.close) {
      // The client's close frame must be read to finish the handshake.
      ws.resume()
      ws.close(out.close.code, out.close.reason)
    } else this.checkBuffered()
  }

  /** Notes when the client stops reading its answers (and when it catches up). */
  private checkBuffered(): void {
    const over = this.o.ws.bufferedAmount > this.o.limits.maxBufferedBytes
    if (over && this.slowSince === null) {
      this.slowSince = this.o.rt.clock.now()
      this.o.logger.debug({ session: this.id, buffered: this.o.ws.bufferedAmount }, 'websocket client is not reading: reading paused')
    } else if (!over && this.slowSince !== null) this.slowSince = null
    this.updateReading()
  }

  private updateReading(): void {
    const { ws } = this.o
    if (this.state === 'closing' && this.pending === 0) {
      if (ws.isPaused) ws.resume()
      return
    }
    const pause = this.pending >= this.o.limits.maxInFlight || this.slowSince !== null || this.draining
    if (pause && !ws.isPaused) ws.pause()
    else if (!pause && ws.isPaused) ws.resume()
  }

  /** The timers: connect deadline, slow client, ping/pong. Called about once a second. */
  tick(): void {
    const { ws, limits, logger } = this.o
    if (ws.readyState === ws.CLOSED) return
    const t = this.o.rt.clock.now()
    if (this.terminateAt !== null) {
      if (t >= this.terminateAt) ws.terminate()
      return
    }
    if (this.state === 'connecting' && this.pending === 0 && t - this.openedAt >= limits.connectTimeoutMs) {
      this.write(this.fail(`Expected 'connect' message within ${limits.connectTimeoutMs / 1000} s`, CLOSE.policy))
      return
    }
    if (this.slowSince !== null) {
      this.checkBuffered()
      if (this.slowSince !== null && t - this.slowSince >= limits.slowClientTimeoutMs) {
        logger.warn({ session: this.id, buffered: ws.bufferedAmount, clientIp: this.o.clientIp }, 'websocket client too slow: disconnected')
        this.state = 'closing'
        ws.close(CLOSE.policy, 'client too slow: answers not read')
        // It is not reading, so it will not answer the close: the socket goes at the next tick.
        this.terminateAt = t
        return
      }
    }
    if (limits.pingIntervalMs <= 0) return
    if (ws.isPaused) {
      // A connection we are not reading cannot show us its pong.
      this.awaitingPong = false
      this.lastPingAt = t
    } else if (this.awaitingPong) {
      if (t - this.lastPingAt >= limits.pongTimeoutMs) {
        logger.info({ session: this.id, clientIp: this.o.clientIp }, 'websocket client did not answer a ping: dropped')
        ws.terminate()
      }
    } else if (t - this.lastPingAt >= limits.pingIntervalMs) {
      this.lastPingAt = t
      this.awaitingPong = true
      ws.ping()
    }
  }

  /** Graceful shutdown: stop reading, answer every frame already read (after its commit), then close 1001. */
  async shutdown(graceMs: number): Promise<void> {
    const { ws } = this.o
    this.draining = true
    this.updateReading()
    for (;;) {
      const tail = this.outTail
      await tail
      if (tail === this.outTail) break
    }
    if (ws.readyState === ws.OPEN) {
      this.state = 'closing'
      ws.resume()
      ws.close(CLOSE.goingAway, 'server shutting down')
    }
    let timer: NodeJS.Timeout | undefined
    const late = await Promise.race([this.closed.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)))])
    clearTimeout(timer)
    if (late) ws.terminate()
  }
}
