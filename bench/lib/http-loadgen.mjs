// HTTP load generator, run as a child process (child_process.fork) so its CPU is not the server's. The
// parent sends {type:'load', file} once, then any number of {type:'run', ...} (closed loop) or
// {type:'run-open', rate, ...} (open loop); each run answers {type:'result', ...}. {type:'exit'} ends it.
//
// Closed loop ('run'): `concurrency` workers share one keep-alive Agent (maxSockets = concurrency); each
// takes the next packet of the list and POSTs it to `path` (default /ingest/packets) with its key in the
// `keyHeader` header (default x-device-key) until every packet is acked (HTTP `okStatus`, default 200) or
// the deadline passes. Latency = ack − start of the acked attempt. Its rate is the
// server's maximum, and its latency is set by the load it puts in flight (Little's law), not by the server.
//
// Open loop ('run-open'): packet i is due at t0 + i/rate (packets/s) whatever happened to the ones before,
// and is handed to the same kind of Agent (at most `concurrency` keep-alive sockets; when all are busy it
// waits in the Agent's queue). Latency = ack − due time, so waiting for a socket, retries and the
// generator's own timer lateness all count: no coordinated omission. A timer that fires early (Node
// truncates to whole ms) sends early; then the latency is taken from the actual send, never less.
//
// In both, another status than `okStatus` or a socket error is a failure: it is counted by status and the packet is retried (at
// most `maxAttempts` times, honouring Retry-After up to 1 s).
import { readFileSync } from 'node:fs'
import http from 'node:http'

let packets = [] // { dev, n, body: Buffer }

function load(file) {
  const text = readFileSync(file, 'utf8')
  packets = []
  let start = 0
  while (start < text.length) {
    let end = text.indexOf('\n', start)
    if (end < 0) end = text.length
    const line = text.slice(start, end)
    start = end + 1
    if (!line) continue
    const t1 = line.indexOf('\t')
    const t2 = line.indexOf('\t', t1 + 1)
    packets.push({ dev: Number(line.slice(0, t1)), n: Number(line.slice(t1 + 1, t2)), body: Buffer.from(line.slice(t2 + 1)) })
  }
  return packets.length
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function post({ agent, port, path, keyHeader }, key, body, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.request(
      { agent, host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length, [keyHeader]: key } },
      (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), retryAfter: Number(res.headers['retry-after'] ?? 0) }))
        res.on('error', (e) => resolve({ status: `error:${e.code ?? e.message}`, body: '' }))
      },
    )
    // Node starts this timer when the request gets a socket, so time queued in the Agent does not count.
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('request timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e) => resolve({ status: `error:${e.code ?? e.message}`, body: '' }))
    req.end(body)
  })
}

/** The counters of one run, shared by its concurrent senders. */
function newTally() {
  return { ackedPackets: 0, ackedReadings: 0, inserted: 0, duplicates: 0, rejected: 0, deadLettered: 0, gaveUp: 0, timedOut: false, failures: {}, samples: [], firstSend: Infinity, lastAck: 0 }
}

function countAck(t, p, body) {
  t.ackedPackets++
  t.ackedReadings += p.n
  try {
    const b = JSON.parse(body)
    t.inserted += b.inserted ?? 0
    t.duplicates += b.duplicates ?? 0
    t.rejected += b.rejected ?? 0
    t.deadLettered += b.dead_lettered ?? 0
    if ((b.rejected ?? 0) > 0 && t.samples.length < 3) t.samples.push(`ack with rejections: ${body.slice(0, 300)}`)
  } catch {
    if (t.samples.length < 3) t.samples.push(`ack with a non-JSON body: ${body.slice(0, 200)}`)
  }
}

/**
 * POSTs one packet until it is acked, retrying failures, counting into `t`. Resolves {sentAt, ackAt} of
 * the acked attempt, or null when it gave up or the deadline passed (then t.timedOut is set).
 */
async function deliver(t, ctx, p) {
  for (let attempt = 1; ; attempt++) {
    if (performance.now() > ctx.deadline) {
      t.timedOut = true
      return null
    }
    const ts = performance.now()
    if (ts < t.firstSend) t.firstSend = ts
    const r = await post(ctx, ctx.keys[p.dev], p.body, ctx.requestTimeoutMs)
    const te = performance.now()
    if (r.status === ctx.okStatus) {
      t.lastAck = Math.max(t.lastAck, te)
      countAck(t, p, r.body)
      return { sentAt: ts, ackAt: te }
    }
    t.failures[r.status] = (t.failures[r.status] ?? 0) + 1
    if (t.samples.length < 3) t.samples.push(`${r.status}: ${r.body.slice(0, 300)}`)
    if (attempt >= ctx.maxAttempts) {
      t.gaveUp++
      return null
    }
    await sleep(r.retryAfter > 0 ? Math.min(1000, r.retryAfter * 1000) : Math.min(1000, 20 * attempt))
  }
}

function context({ port, keys, path = '/ingest/packets', keyHeader = 'x-device-key', okStatus = 200, concurrency = 50, deadlineMs = 180_000, requestTimeoutMs = 30_000, maxAttempts = 5 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency })
  return { agent, port, path, keyHeader, okStatus, keys, concurrency, deadline: performance.now() + deadlineMs, requestTimeoutMs, maxAttempts }
}

function report(t, list, latencies, cpu0, extra) {
  const cpu = process.cpuUsage(cpu0)
  const { firstSend, lastAck, ...counts } = t
  return { packets: list.length, ...counts, latencies, durationMs: lastAck > 0 ? lastAck - firstSend : NaN, cpuMs: (cpu.user + cpu.system) / 1000, ...extra }
}

async function runLoad({ from = 0, to = packets.length, ...opts }) {
  const ctx = context(opts)
  const list = packets.slice(from, to)
  const t = newTally()
  const latencies = []
  const cpu0 = process.cpuUsage()
  let next = 0
  async function worker() {
    while (next < list.length && !t.timedOut) {
      const a = await deliver(t, ctx, list[next++])
      if (a) latencies.push(a.ackAt - a.sentAt)
    }
  }
  await Promise.all(Array.from({ length: Math.min(ctx.concurrency, list.length) }, worker))
  ctx.agent.destroy()
  return report(t, list, latencies, cpu0)
}

/** Open loop at `rate` packets/s; see the header. Also answers the generator's send lag per packet. */
async function runOpen({ from = 0, to = packets.length, rate, ...opts }) {
  if (!(rate > 0)) throw new Error(`run-open: rate must be > 0 packets/s (got ${rate})`)
  const ctx = context(opts)
  const list = packets.slice(from, to)
  const t = newTally()
  const latencies = []
  const lags = []
  const pending = []
  const cpu0 = process.cpuUsage()
  const interval = 1000 / rate
  const t0 = performance.now() + 1
  for (let i = 0; i < list.length && !t.timedOut; i++) {
    const due = t0 + i * interval
    const wait = due - performance.now()
    if (wait > 0) await sleep(wait)
    const sentAt = performance.now()
    if (sentAt > ctx.deadline) {
      t.timedOut = true
      break
    }
    lags.push(sentAt - due)
    const start = Math.min(due, sentAt)
    pending.push(deliver(t, ctx, list[i]).then((a) => a && latencies.push(a.ackAt - start)))
  }
  await Promise.all(pending)
  ctx.agent.destroy()
  // The rate achieved is measured from the first due time, so a slow start counts against it.
  return report(t, list, latencies, cpu0, { lags, durationMs: t.lastAck > 0 ? t.lastAck - t0 : NaN, scheduledMs: (list.length - 1) * interval })
}

process.on('message', async (msg) => {
  try {
    if (msg.type === 'load') process.send({ type: 'loaded', packets: load(msg.file) })
    else if (msg.type === 'run') process.send({ type: 'result', result: await runLoad(msg) })
    else if (msg.type === 'run-open') process.send({ type: 'result', result: await runOpen(msg) })
    else if (msg.type === 'exit') process.exit(0)
  } catch (err) {
    process.send({ type: 'error', message: err?.stack ?? String(err) })
  }
})
// The parent going away must not leave us behind.
process.on('disconnect', () => process.exit(0))
