#!/usr/bin/env node
// @bench HTTP packets -> PostgreSQL with the ML stream on (every clean reading XADDed to Redis) vs off, alternating rounds
//
// Issue 14's gate: ingestion with the ML stream on >= 0.9x ingestion with it off. One run, same rows, same
// server settings; the only difference between the two segments is REDIS_URL (a private redis-server, no
// persistence): on = the stream publishes to it, off = no Redis at all (the no-op stream). DEDUP_ENABLED=0 in
// both, so Redis serves only the stream. ML_PUBLISH_MIN_INTERVAL_SECONDS=0 by default: every clean reading is
// one XADD (the worst case; the default 1 s throttle publishes at most one per sensor per second of data).
// Rounds alternate the order (off -> on, then on -> off, ...) so drift over the run does not favour one side.
// Each segment: start `serve`, warm up on other rows, TRUNCATE, the closed-loop load (bench/lib/http-loadgen.mjs)
// until every packet is acked, verify stored == acked; with the stream on, read its counters from /metrics and
// check published + throttled + dropped == stored. Gate: the median of the per-round on/off ratios.
import { fork, spawn } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'

import {
  appendResults,
  BENCH_DIR,
  benchFlags,
  cleanEnv,
  cli,
  currentBin,
  fmtInt,
  fmtMs,
  freePort,
  gatesMarkdown,
  loopbackAdminUrl,
  machineInfo,
  machineLines,
  median,
  percentile,
  procCpuMs,
  ratioSpan,
  rng,
  runBenchmark,
  scratchDatabase,
  sleep,
  snapshotBuild,
  stopChild,
} from './lib/common.mjs'

const USAGE = `npm run bench -- stream [flags]
  --readings N         readings per measured segment (default 100000; rounded up to whole packets)
  --rounds R           rounds, each one segment off and one on, order alternating (default 4)
  --concurrency C      load-generator connections (default 50)
  --devices D          devices (default 20)          --sensors S   sensors per device (default 10)
  --packet-size P      readings per packet (default 100)
  --warmup-packets W   warm-up packets before each segment, other rows, then truncated (default 200)
  --min-interval SEC   ML_PUBLISH_MIN_INTERVAL_SECONDS with the stream on (default 0: every clean reading published)
  --seed X             data seed (default 1)
  --timeout SEC        deadline of one load run (default 180)
  --admin-url URL      PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres; loopback only)
  --no-append          do not append to bench/RESULTS.md
  --strict             exit 1 when the gate FAILs too (default: only exactness failures exit 1)
  --keep               keep the scratch database and temp folder`

const { flags, int } = benchFlags(
  {
    readings: { type: 'string', default: '100000' },
    rounds: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '50' },
    devices: { type: 'string', default: '20' },
    sensors: { type: 'string', default: '10' },
    'packet-size': { type: 'string', default: '100' },
    'warmup-packets': { type: 'string', default: '200' },
    'min-interval': { type: 'string', default: '0' },
    seed: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '180' },
  },
  USAGE,
)
const PACKET = int('packet-size', 1, 10_000)
const N = Math.ceil(int('readings', 1, 5_000_000) / PACKET) * PACKET
const ROUNDS = int('rounds', 1, 20)
const CONC = int('concurrency', 1, 1000)
const DEVICES = int('devices', 1, 1000)
const SENSORS = int('sensors', 1, 1000)
const WARMUP = int('warmup-packets', 0, 100_000)
const SEED = int('seed', 0, 2 ** 31)
const TIMEOUT_MS = int('timeout', 5, 3600) * 1000
const MIN_INTERVAL = Number(flags['min-interval'])
if (!(MIN_INTERVAL >= 0)) {
  console.error('--min-interval must be a number >= 0')
  process.exit(2)
}
const GATE = 0.9
const admin = loopbackAdminUrl(flags['admin-url'])
const log = (...a) => console.log(...a)

const TMP = mkdtempSync(join(tmpdir(), `ingest-bench-stream-${process.pid}-`))
const db = await scratchDatabase(admin, `ingest_bench_stream_${process.pid}`)
const children = new Set()
let loadgen
let pgc
let redis

async function cleanup() {
  if (loadgen?.connected) loadgen.send({ type: 'exit' })
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await pgc?.end().catch(() => {})
  if (!flags.keep) {
    await db.drop()
    rmSync(TMP, { recursive: true, force: true })
  } else log(`kept: database ${db.name}, folder ${TMP}`)
}

// ------------------------------------------------------------------ registry and data (as bench/http.mjs)

const hex12 = (n) => n.toString(16).padStart(12, '0')
const deviceUuid = (d) => `00000000-0000-4000-8000-${hex12(d + 1)}`
const sensorUuid = (d, s) => `10000000-0000-4000-8000-${hex12(d * SENSORS + s + 1)}`

function registryYaml() {
  const lines = ['devices:']
  for (let d = 0; d < DEVICES; d++) {
    lines.push(`  - uuid: ${deviceUuid(d)}`, `    name: bench-${d + 1}`, '    sensors:')
    // min_readings_for_normal 0: every reading is clean (ML_PREDICTION), so every one is offered to the stream.
    for (let s = 0; s < SENSORS; s++) lines.push(`      - { uuid: ${sensorUuid(d, s)}, type: humidity, min_readings_for_normal: 0 }`)
  }
  return `${lines.join('\n')}\n`
}

/** Packet lines for the load generator: packet p of device p % D, reading k at t0 + k·step (unique keys). */
function packets(count, t0us, stepUs, seed) {
  const rand = rng(seed)
  const lines = []
  for (let p = 0; p < count; p++) {
    const d = p % DEVICES
    const parts = []
    for (let j = 0; j < PACKET; j++) {
      const k = p * PACKET + j
      const s = (j + Math.floor(p / DEVICES)) % SENSORS
      const value = Math.round((30 + 40 * rand()) * 1000) / 1000
      parts.push(`{"sensor_uuid":"${sensorUuid(d, s)}","value":${value},"sensor_ts":${(t0us + k * stepUs) / 1e6}}`)
    }
    lines.push(`${d}\t${PACKET}\t{"device_uuid":"${deviceUuid(d)}","readings":[${parts.join(',')}]}`)
  }
  return lines
}

// ------------------------------------------------------------------ processes

async function startRedis() {
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', TMP], { stdio: 'ignore' })
  children.add(child)
  const { Redis } = await import('ioredis')
  const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 })
  client.on('error', () => {})
  const deadline = Date.now() + 10_000
  for (;;) {
    try {
      if (client.status !== 'ready') await client.connect()
      if ((await client.ping()) === 'PONG') break
    } catch {
      if (Date.now() > deadline) throw new Error('redis-server did not start')
      await sleep(100)
    }
  }
  return { port, child, client }
}

function startLoadgen(file) {
  return new Promise((resolve, reject) => {
    const child = fork(join(BENCH_DIR, 'lib', 'http-loadgen.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.add(child)
    child.once('error', reject)
    child.once('message', (m) => (m.type === 'loaded' ? resolve(child) : reject(new Error(m.message))))
    child.send({ type: 'load', file })
  })
}

function loadRun(opts) {
  return new Promise((resolve, reject) => {
    const onExit = (code) => reject(new Error(`load generator exited ${code}`))
    loadgen.once('exit', onExit)
    loadgen.once('message', (m) => {
      loadgen.off('exit', onExit)
      if (m.type === 'result') resolve(m.result)
      else reject(new Error(`load generator: ${m.message}`))
    })
    loadgen.send({ type: 'run', concurrency: CONC, deadlineMs: TIMEOUT_MS, ...opts })
  })
}

async function startServer(name, env) {
  const port = await freePort()
  const logPath = join(TMP, `serve-${name}.log`)
  const fd = openSync(logPath, 'a')
  const child = spawn(process.execPath, [currentBin(), 'serve', '--port', String(port), '--host', '127.0.0.1'], { env, cwd: TMP, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  children.add(child)
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve (${name}) exited ${child.exitCode}:\n${readFileSync(logPath, 'utf8').slice(-2000)}`)
    const ok = await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.status === 200, () => false)
    if (ok) return { child, port, logPath }
    if (Date.now() > deadline) throw new Error(`serve (${name}) not ready after 30 s:\n${readFileSync(logPath, 'utf8').slice(-2000)}`)
    await sleep(100)
  }
}

/** The ML stream's entry counters (ingest_ml_stream_entries_total) from /metrics, by stream:outcome. */
async function streamCounters(port) {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { headers: { 'x-api-key': 'bench-global-key' } })).text()
  const out = {}
  for (const m of text.matchAll(/^ingest_ml_stream_entries_total\{stream="([^"]+)",outcome="([^"]+)"\} (\S+)$/gm)) out[`${m[1]}:${m[2]}`] = Number(m[3])
  const enabled = /^ingest_ml_stream_enabled 1$/m.test(text)
  return { enabled, counters: out }
}

const TABLES = 'sensor_readings, sensor_readings_latest, sensor_rule_state, alert_notifications, alerts, ml_events'

async function segment({ name, env, keys, on }) {
  const srv = await startServer(name, env)
  try {
    if (WARMUP > 0) await loadRun({ port: srv.port, keys, from: N / PACKET, to: N / PACKET + WARMUP })
    await pgc.query(`TRUNCATE ${TABLES}`)
    await pgc.query('CHECKPOINT')
    const before = await streamCounters(srv.port)
    const cpu0 = procCpuMs(srv.child.pid)
    const redis0 = procCpuMs(redis.child.pid)
    const res = await loadRun({ port: srv.port, keys, from: 0, to: N / PACKET })
    const cpuMs = procCpuMs(srv.child.pid) - cpu0
    const redisMs = procCpuMs(redis.child.pid) - redis0
    const stored = (await pgc.query('SELECT count(*)::int AS n, count(DISTINCT (sensor_id, dedup_key))::int AS d FROM sensor_readings')).rows[0]
    // The stream publishes after the answers: give its last pipelines a moment before reading its counters.
    await sleep(on ? 500 : 0)
    const after = await streamCounters(srv.port)
    const delta = (k) => (after.counters[k] ?? 0) - (before.counters[k] ?? 0)
    const s = 'readings:validated'
    const stream = { enabled: after.enabled, published: delta(`${s}:published`), throttled: delta(`${s}:throttled`), dropped: delta(`${s}:dropped`) }
    const exact = res.ackedReadings === N && stored.n === N && stored.d === N && res.inserted === N && !res.timedOut && res.gaveUp === 0
    // On: every stored (clean) reading was published, throttled or counted as dropped; off: the stream is off.
    const streamOk = on ? stream.enabled && stream.published + stream.throttled + stream.dropped === N && stream.published > 0 : !stream.enabled
    return { rps: (res.ackedReadings / res.durationMs) * 1000, ms: res.durationMs, p50: percentile(res.latencies, 50), p99: percentile(res.latencies, 99), cpuUs: (cpuMs * 1000) / Math.max(1, res.ackedReadings), redisUs: (redisMs * 1000) / Math.max(1, res.ackedReadings), exact, streamOk, stream, stored: stored.n, failures: res.failures }
  } finally {
    await stopChild(srv.child, 'SIGINT')
    children.delete(srv.child)
  }
}

const fmtSeg = (s) => `${fmtInt(s.rps)} readings/s  p50 ${fmtMs(s.p50)} p99 ${fmtMs(s.p99)}  server CPU ${s.cpuUs.toFixed(1)} µs/reading${s.stream.enabled ? ` (redis-server ${s.redisUs.toFixed(1)})` : ''}  stored ${fmtInt(s.stored)}${s.exact ? '' : ' MISMATCH'}${s.stream.enabled ? `  stream: published ${fmtInt(s.stream.published)} throttled ${fmtInt(s.stream.throttled)} dropped ${fmtInt(s.stream.dropped)}` : '  stream off'}${s.streamOk ? '' : ' STREAM COUNTS WRONG'}`

async function main() {
  await snapshotBuild(join(TMP, 'app'))
  const machine = machineInfo()
  log(`stream bench: ${fmtInt(N)} readings per segment (${N / PACKET} packets × ${PACKET}), ${DEVICES} devices × ${SENSORS} sensors, ${ROUNDS} rounds (off/on alternating), concurrency ${CONC}, ML_PUBLISH_MIN_INTERVAL_SECONDS=${MIN_INTERVAL}`)
  await db.create()
  redis = await startRedis()
  writeFileSync(join(TMP, 'registry.yaml'), registryYaml())
  const base = { DATABASE_URL: db.url, RATE_LIMIT_ENABLED: '0', LOG_LEVEL: 'warn', DEDUP_ENABLED: '0', INGEST_API_KEY: 'bench-global-key', INGEST_DATA_DIR: join(TMP, 'data') }
  const offEnv = cleanEnv(base)
  const onEnv = cleanEnv({ ...base, REDIS_URL: `redis://127.0.0.1:${redis.port}`, REDIS_KEY_PREFIX: 'bench:', ML_PUBLISH_MIN_INTERVAL_SECONDS: String(MIN_INTERVAL) })
  await cli(['db', 'migrate', '--json'], { env: offEnv, cwd: TMP })
  await cli(['apply', join(TMP, 'registry.yaml'), '--json'], { env: offEnv, cwd: TMP })
  const keys = []
  for (let d = 0; d < DEVICES; d++) keys.push((await cli(['keys', 'create', '--device', deviceUuid(d), '--name', `bench-${d + 1}`, '--json'], { env: offEnv, cwd: TMP })).key)
  pgc = new pg.Client({ connectionString: db.url })
  await pgc.connect()

  const nowS = Math.floor(Date.now() / 1000)
  const file = join(TMP, 'packets.tsv')
  const measured = packets(N / PACKET, (nowS - 3000) * 1e6, Math.max(1, Math.floor(2_900e6 / N)), SEED)
  const warm = packets(WARMUP, (nowS - 3500) * 1e6, Math.max(1, Math.floor(400e6 / Math.max(1, WARMUP * PACKET))), SEED + 7919)
  writeFileSync(file, `${[...measured, ...warm].join('\n')}\n`)
  loadgen = await startLoadgen(file)

  const rounds = []
  for (let r = 1; r <= ROUNDS; r++) {
    const order = r % 2 === 1 ? ['off', 'on'] : ['on', 'off']
    log(`\nround ${r}/${ROUNDS} (${order.join(' -> ')})`)
    const round = { r, order }
    for (const which of order) {
      round[which] = await segment({ name: `${which}-${r}`, env: which === 'on' ? onEnv : offEnv, keys, on: which === 'on' })
      log(`  stream ${which.padEnd(3)}  ${fmtSeg(round[which])}`)
    }
    round.ratio = round.on.rps / round.off.rps
    log(`  on/off = ${round.ratio.toFixed(3)}×`)
    rounds.push(round)
  }
  const xlen = await redis.client.xlen('bench:readings:validated')
  redis.client.disconnect()

  const ratios = rounds.map((r) => r.ratio)
  const serveExtra = median(rounds.map((r) => r.on.cpuUs - r.off.cpuUs))
  const redisUs = median(rounds.map((r) => r.on.redisUs))
  const exactAll = rounds.every((r) => r.on.exact && r.off.exact && r.on.streamOk && r.off.streamOk)
  const med = median(ratios)
  const gates = [
    { gate: 'HTTP -> PostgreSQL with the ML stream on ÷ off (median of rounds)', measured: `${med.toFixed(3)}× ${ratioSpan(ratios, 3)}`, want: `≥ ${GATE}×`, pass: med >= GATE },
    { gate: 'stored == acked (every segment); stream on: published + throttled + dropped == stored', measured: exactAll ? 'yes' : 'NO', want: 'yes', pass: exactAll },
  ]
  const md = [
    `## stream — ${machine.date.slice(0, 10)} — ML stream on vs off (issue 14)`,
    '',
    ...machineLines(machine),
    `- command: \`npm run bench -- stream --readings ${N} --rounds ${ROUNDS} --concurrency ${CONC} --devices ${DEVICES} --sensors ${SENSORS} --min-interval ${MIN_INTERVAL}\``,
    `- on: REDIS_URL set (private redis-server, no persistence), every clean reading offered to readings:validated (ML_PUBLISH_MIN_INTERVAL_SECONDS=${MIN_INTERVAL}, MAXLEN ~ 10000; stream length at the end ${fmtInt(xlen)}); off: no Redis (the no-op stream). DEDUP_ENABLED=0 in both.`,
    '',
    '| round | order | off readings/s | on readings/s | on/off | off p99 | on p99 | serve CPU µs/reading off / on | redis-server CPU µs/reading (on) | published / throttled / dropped |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rounds.map((r) => `| ${r.r} | ${r.order.join('→')} | ${fmtInt(r.off.rps)} | ${fmtInt(r.on.rps)} | ${r.ratio.toFixed(3)}× | ${fmtMs(r.off.p99)} | ${fmtMs(r.on.p99)} | ${r.off.cpuUs.toFixed(1)} / ${r.on.cpuUs.toFixed(1)} | ${r.on.redisUs.toFixed(1)} | ${fmtInt(r.on.stream.published)} / ${fmtInt(r.on.stream.throttled)} / ${fmtInt(r.on.stream.dropped)} |`),
    '',
    ...gatesMarkdown(gates),
    '',
    `CPU cost of the stream per published reading (medians): serve +${serveExtra.toFixed(1)} µs, redis-server ${redisUs.toFixed(1)} µs (on the same 2 cores here; elsewhere in production).`,
  ].join('\n')
  log(`\n${md}`)
  if (!flags['no-append']) appendResults(md)
  if (!exactAll) return 1
  return flags.strict && !gates.every((g) => g.pass) ? 1 : 0
}

await runBenchmark('stream', main, cleanup)
