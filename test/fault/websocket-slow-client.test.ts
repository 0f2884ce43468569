import { readFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'

import { json, runCli } from '../helpers/fault/package.js'
import { ServiceProcess } from '../helpers/fault/service.js'
import { note, secs, sleep } from '../helpers/fault/util.js'
import { tempDir } from '../helpers/services.js'

/** The server's resident memory, from /proc (bytes). */
function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}

const SLOW_TIMEOUT_S = 3
const WARM_FRAMES = 200
const POINTS = 1000
/** One frame, sent again and again: after the first, its points are duplicates (cheap to answer, same-size acks). */
const frame = JSON.stringify({
  type: 'data',
  batch: Array.from({ length: POINTS }, (_, i) => ({ stream_id: `s${i % 20}`, value: i % 50, timestamp: new Date(Date.now() - 3_600_000 + i * 1000).toISOString(), sequence: i + 1 })),
})

function open(url: string, key: string): Promise<WebSocket> {
  const ws = new WebSocket(url, { headers: { 'x-api-key': key } })
  ws.on('error', () => undefined)
  return new Promise((resolve, reject) => {
    ws.once('message', (data: Buffer) => {
      const hello = JSON.parse(data.toString()) as { type: string }
      if (hello.type === 'connected') resolve(ws)
      else reject(new Error(data.toString()))
    })
    ws.once('open', () => ws.send(JSON.stringify({ type: 'connect', source_id: 'slow', domain: 'lab' })))
    ws.once('close', (code) => reject(new Error(`closed ${code}`)))
  })
}

/**
 * DESIGN §6/§7, WebSocket backpressure: a client that keeps SENDING data frames but never READS its acks
 * must not grow the server's memory without bound (the server stops reading it once its unread answers
 * pass WS_MAX_BUFFERED_BYTES) and is disconnected after WS_SLOW_CLIENT_TIMEOUT_SECONDS; the service
 * goes on serving others.
 */
describe('WebSocket client that sends but never reads (serve on SQLite, a real process)', () => {
  const dir = tempDir('ingest-ws-slow-')
  let svc: ServiceProcess
  let key: string
  const env = { INGEST_DATA_DIR: join(dir.path, 'data'), INGEST_API_KEY: 'fault-global-key-000000', WS_SLOW_CLIENT_TIMEOUT_SECONDS: String(SLOW_TIMEOUT_S), WS_MAX_BUFFERED_BYTES: '1048576' }

  beforeAll(async () => {
    expect((await runCli(['db', 'migrate'], { env, cwd: dir.path })).code).toBe(0)
    key = json<{ key: string }>(await runCli(['keys', 'create', '--role', 'admin', '--json'], { env, cwd: dir.path })).key
    svc = await ServiceProcess.create(env, dir.path)
  })
  afterAll(async () => {
    await svc?.destroy()
    dir.remove()
  })

  it(`keeps the server's RSS growth under 50 MB and disconnects the client within 30 s; others are still served`, async () => {
    const url = `ws://127.0.0.1:${svc.port}/ingest/stream`
    const pid = svc.pid as number
    // Warm up at full speed with a client that reads (JIT, pools, the heap's working size under this
    // load): the measure is what a client that stops reading adds to a busy server, not V8 growing
    // its heap to the load's size.
    const warm = await open(url, key)
    let acked = 0
    warm.on('message', () => acked++)
    for (let i = 0; i < WARM_FRAMES; i++) {
      warm.send(frame)
      while (i - acked >= 8) await sleep(2)
    }
    while (acked < WARM_FRAMES) await sleep(10)
    warm.close()
    await sleep(1000)
    const before = rssBytes(pid)

    const slow = await open(url, key)
    let closedAt = 0
    slow.on('close', () => (closedAt = Date.now()))
    slow.pause()
    const t0 = Date.now()
    let sent = 0
    let peak = before
    while (closedAt === 0 && Date.now() - t0 < 30_000) {
      // Bound the test's own memory: past 8 MB unsent, wait for the kernel (or the close).
      if (slow.bufferedAmount < 8 * 1024 * 1024 && slow.readyState === WebSocket.OPEN) {
        slow.send(frame)
        sent++
      }
      await sleep(5)
      peak = Math.max(peak, rssBytes(pid))
    }
    if (closedAt === 0) slow.terminate()
    await sleep(1000)
    const after = rssBytes(pid)
    note(`slow client: ${sent} frames of ${POINTS} points sent, closed after ${closedAt === 0 ? 'never' : secs(closedAt - t0)} s; server RSS ${(before / 2 ** 20).toFixed(0)} MB -> peak ${(peak / 2 ** 20).toFixed(0)} MB, end ${(after / 2 ** 20).toFixed(0)} MB`)

    expect(closedAt).toBeGreaterThan(0)
    expect(closedAt - t0).toBeLessThan(30_000)
    // It was dropped as slow (not for another reason), after the timeout.
    expect(svc.logLines(/websocket client too slow/)).toHaveLength(1)
    expect(closedAt - t0).toBeGreaterThanOrEqual(SLOW_TIMEOUT_S * 1000)
    expect(peak - before).toBeLessThan(50 * 2 ** 20)
    expect(after - before).toBeLessThan(50 * 2 ** 20)

    // The service is fine: a reading client is served.
    const ok = await open(url, key)
    ok.send(frame)
    const ack = JSON.parse(String(await new Promise((resolve) => ok.once('message', resolve)))) as { type: string; duplicates: number }
    expect(ack).toMatchObject({ type: 'ack', duplicates: POINTS })
    ok.close()
    expect(svc.logProblems([key])).toEqual([])
  })
})
