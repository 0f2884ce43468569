import type pg from 'pg'

/** The part of pg's Connection a submittable writes with (pg/lib/connection.js). */
interface PgConnection {
  stream: { write(chunk: Buffer): boolean }
}

/** Query ('Q'), CopyData ('d') and CopyDone ('c') protocol messages in one buffer: one socket write. */
export function copyInMessages(sql: string, data: string | Buffer): Buffer {
  const sqlBytes = Buffer.byteLength(sql, 'utf8')
  const dataBytes = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length
  const buf = Buffer.allocUnsafe(1 + 4 + sqlBytes + 1 + (dataBytes > 0 ? 1 + 4 + dataBytes : 0) + 1 + 4)
  let at = 0
  buf[at++] = 0x51 // Q
  buf.writeUInt32BE(4 + sqlBytes + 1, at)
  at += 4
  at += buf.write(sql, at, 'utf8')
  buf[at++] = 0
  if (dataBytes > 0) {
    buf[at++] = 0x64 // d
    buf.writeUInt32BE(4 + dataBytes, at)
    at += 4
    at += typeof data === 'string' ? buf.write(data, at, 'utf8') : data.copy(buf, at)
  }
  buf[at++] = 0x63 // c
  buf.writeUInt32BE(4, at)
  return buf
}

/**
 * `COPY ... FROM STDIN` with the data sent right behind the query, in the same write: the usual client
 * (pg-copy-streams) waits for the server's CopyInResponse before it sends any data, and under load that
 * answer waits behind the HTTP work in our event loop while PostgreSQL sits idle (measured: the COPY's
 * largest wait in pg_stat_activity was ClientRead). The protocol allows it: the server reads the
 * CopyData/CopyDone messages after it has started the COPY, and if the COPY fails first it answers
 * ErrorResponse + ReadyForQuery and ignores the CopyData/CopyDone that follow (postgres.c accepts and
 * drops them outside copy mode, "because a COPY failed, and the frontend is still sending data").
 *
 * A pg "submittable": `client.query(new PipelinedCopyIn(sql, data))` (text, or a binary COPY file as a
 * Buffer), then `await copy.done`. pg's
 * query_timeout works through `callback` like for its own queries.
 */
export class PipelinedCopyIn implements pg.Submittable {
  /** Rows the server reports copied. */
  rowCount = 0
  readonly done: Promise<number>
  callback: (err: Error | null) => void
  private settled = false

  constructor(
    private readonly sql: string,
    private readonly data: string | Buffer,
  ) {
    let settle!: (err: Error | null) => void
    this.done = new Promise<number>((resolve, reject) => {
      settle = (err) => (err ? reject(err) : resolve(this.rowCount))
    })
    this.callback = (err) => {
      if (this.settled) return
      this.settled = true
      settle(err)
    }
  }

  submit(connection: unknown): void {
    // One write: a write wakes the server, and every extra wake-up on a busy 2-core box is a chance
    // for it to preempt us between the query and its data.
    ;(connection as PgConnection).stream.write(copyInMessages(this.sql, this.data))
  }

  /** The data is already on its way. */
  handleCopyInResponse(): void {}

  handleCommandComplete(msg: { text?: string }): void {
    const m = /^COPY (\d+)/.exec(msg.text ?? '')
    if (m) this.rowCount = Number(m[1])
  }

  handleReadyForQuery(): void {
    this.callback(null)
  }

  /** A server error (pg then forgets this query, so ReadyForQuery does not reach it) or a timeout. */
  handleError(err: Error): void {
    this.callback(err)
  }

  // Not sent for a COPY FROM; defined so an unexpected message cannot crash pg's dispatcher.
  handleEmptyQuery(): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handlePortalSuspended(): void {}
}
