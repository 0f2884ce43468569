// Closed-loop HTTP load generator, run as a child process (child_process.fork) so its CPU is not the
// server's. The parent sends {type:'load', file} once, then any number of {type:'run', ...}; each run
// answers {type:'result', ...}. {type:'exit'} ends it.
//
// A run: `concurrency` workers share one keep-alive Agent (maxSockets = concurrency); each takes the next
// packet of the list and POSTs it to /ingest/packets with its device key until every packet is acked
// (HTTP 200) or the deadline passes. A non-200 or a socket error is a failure: it is counted by status and
// the packet is retried (at most `maxAttempts` times, honouring Retry-After up to 1 s).
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

function post(agent, port, key, body, timeoutMs) {
  return new Promise((resolve) => {
    const req = http.request(
      { agent, host: '127.0.0.1', port, path: '/ingest/packets', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': body.length, 'x-device-key': key } },
      (res) => {
        const chunks = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString('utf8'), retryAfter: Number(res.headers['retry-after'] ?? 0) }))
        res.on('error', (e) => resolve({ status: `error:${e.code ?? e.message}`, body: '' }))
      },
    )
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error('request timeout'), { code: 'TIMEOUT' })))
    req.on('error', (e) => resolve({ status: `error:${e.code ?? e.message}`, body: '' }))
    req.end(body)
  })
}

async function runLoad({ port, keys, from = 0, to = packets.length, concurrency = 50, deadlineMs = 180_000, requestTimeoutMs = 30_000, maxAttempts = 5 }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency })
  const list = packets.slice(from, to)
  const latencies = new Float64Array(list.length)
  let nLat = 0
  const failures = {}
  const samples = [] // first few failure bodies, for the report
  let next = 0
  let ackedPackets = 0
  let ackedReadings = 0
  let inserted = 0
  let duplicates = 0
  let rejected = 0
  let deadLettered = 0
  let gaveUp = 0
  let firstSend = Infinity
  let lastAck = 0
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const deadline = t0 + deadlineMs
  let timedOut = false

  async function worker() {
    for (;;) {
      const i = next++
      if (i >= list.length) return
      const p = list[i]
      const key = keys[p.dev]
      for (let attempt = 1; ; attempt++) {
        if (performance.now() > deadline) {
          timedOut = true
          return
        }
        const ts = performance.now()
        if (ts < firstSend) firstSend = ts
        const r = await post(agent, port, key, p.body, requestTimeoutMs)
        const te = performance.now()
        if (r.status === 200) {
          latencies[nLat++] = te - ts
          lastAck = Math.max(lastAck, te)
          ackedPackets++
          ackedReadings += p.n
          try {
            const b = JSON.parse(r.body)
            inserted += b.inserted ?? 0
            duplicates += b.duplicates ?? 0
            rejected += b.rejected ?? 0
            deadLettered += b.dead_lettered ?? 0
            if ((b.rejected ?? 0) > 0 && samples.length < 3) samples.push(`200 with rejections: ${r.body.slice(0, 300)}`)
          } catch {
            if (samples.length < 3) samples.push(`200 with a non-JSON body: ${r.body.slice(0, 200)}`)
          }
          break
        }
        failures[r.status] = (failures[r.status] ?? 0) + 1
        if (samples.length < 3) samples.push(`${r.status}: ${r.body.slice(0, 300)}`)
        if (attempt >= maxAttempts) {
          gaveUp++
          break
        }
        const wait = r.retryAfter > 0 ? Math.min(1000, r.retryAfter * 1000) : Math.min(1000, 20 * attempt)
        await new Promise((res) => setTimeout(res, wait))
      }
    }
  }

  await Promise.all(Array.from({ length: Math.min(concurrency, list.length) }, worker))
  agent.destroy()
  const cpu = process.cpuUsage(cpu0)
  return {
    packets: list.length,
    ackedPackets,
    ackedReadings,
    inserted,
    duplicates,
    rejected,
    deadLettered,
    gaveUp,
    timedOut,
    failures,
    samples,
    latencies: Array.from(latencies.subarray(0, nLat)),
    durationMs: lastAck > 0 ? lastAck - firstSend : NaN,
    cpuMs: (cpu.user + cpu.system) / 1000,
  }
}

process.on('message', async (msg) => {
  try {
    if (msg.type === 'load') process.send({ type: 'loaded', packets: load(msg.file) })
    else if (msg.type === 'run') process.send({ type: 'result', result: await runLoad(msg) })
    else if (msg.type === 'exit') process.exit(0)
  } catch (err) {
    process.send({ type: 'error', message: err?.stack ?? String(err) })
  }
})
// The parent going away must not leave us behind.
process.on('disconnect', () => process.exit(0))
