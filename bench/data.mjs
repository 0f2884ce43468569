#!/usr/bin/env node
// @bench universal points: POST /ingest/data -> PostgreSQL vs psql \copy of the same points into data_points (interleaved rounds)
//
// One run, same points, same table, interleaved a -> b per round (performance.md §4; issue 12):
//   (a) `psql \copy` of the N points (CSV, the columns the service stores) into data_points, with its real
//       unique key (domain, source_id, stream_id, timestamp, sequence) and indexes: the ceiling;
//   (b) `ingest serve` on PostgreSQL, fed 100-point `/ingest/data` requests (an admin role key in X-API-Key)
//       by the closed-loop load generator of bench/lib/http-loadgen.mjs (child process, keep-alive,
//       --concurrency connections) until all N points are acked (HTTP 201).
// Data: --sources sources, each with the infrastructure streams cpu/memory/disk (built-in constraints,
// alerting domain) and 5 generic `telemetry` streams (no constraints, a small metadata object), so 8 series
// per source (200 at the default 25). A request holds 100 points of one (source, domain), its streams in
// turn; every point has a unique timestamp and a per-series sequence (keyed, idempotent), values inside
// the normal range (every stored point is `normal`).
// Before every measured segment: TRUNCATE data_points, stream_rule_state, stream_alerts,
// ingestion_audit_log + CHECKPOINT (so every series is seen for the first time: the seeding path runs).
// Every segment checks stored == acked == generated, no duplicate keys and that the stored key set equals
// the generated one. Prints per-round figures and the median [min..max] of per-round ratios, appends to
// bench/RESULTS.md.
import { fork, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'

import {
  appendResults,
  BENCH_DIR,
  benchFlags,
  busyMs,
  cleanEnv,
  cli,
  cpuMsByName,
  cpuStat,
  currentBin,
  fmtInt,
  fmtMB,
  fmtMs,
  freePort,
  gatesMarkdown,
  loopbackAdminUrl,
  machineInfo,
  machineLines,
  max,
  median,
  percentile,
  procCpuMs,
  procMem,
  ratioSpan,
  resolvePath,
  rng,
  run,
  runBenchmark,
  scratchDatabase,
  sleep,
  snapshotBuild,
  stealPct,
  stopChild,
  usageError,
} from './lib/common.mjs'
import { summarizeProfile } from './lib/cpuprofile-summary.mjs'

const USAGE = `npm run bench -- data [flags]
  --points N           points per measured segment (default 200000; rounded up to whole requests)
  --rounds R           interleaved rounds a -> b (default 3)
  --concurrency C      load-generator connections (default 50)
  --sources S          sources (default 25); each has 3 infrastructure + 5 telemetry streams (8 series)
  --packet-size P      points per request (default 100)
  --warmup-packets W   warm-up requests per server start, other points, then truncated (default 300)
  --seed X             data seed (default 1)
  --timeout SEC        deadline of one load run (default 180)
  --admin-url URL      PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres; loopback only)
  --cpu-prof DIR       run the round-1 server under node --cpu-prof into DIR and print a summary (no RESULTS.md entry)
  --batch-max N        BATCH_MAX_SIZE of the server under test (default: the service's)
  --flush-concurrency N  BATCH_FLUSH_CONCURRENCY of the server under test (default: the engine's)
  --node-options STR   NODE_OPTIONS of the server under test; noted in the results
  --no-append          do not append to bench/RESULTS.md
  --strict             exit 1 when a performance gate FAILs too (default: only exactness failures exit 1)
  --keep               keep the scratch database and temp folder`

const { flags, int } = benchFlags(
  {
    points: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '50' },
    sources: { type: 'string', default: '25' },
    'packet-size': { type: 'string', default: '100' },
    'warmup-packets': { type: 'string', default: '300' },
    seed: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '180' },
    'cpu-prof': { type: 'string' },
    'batch-max': { type: 'string' },
    'flush-concurrency': { type: 'string' },
    'node-options': { type: 'string' },
  },
  USAGE,
)
const PACKET = int('packet-size', 1, 10_000)
const N = Math.ceil(int('points', 1, 5_000_000) / PACKET) * PACKET
const ROUNDS = int('rounds', 1, 20)
const CONC = int('concurrency', 1, 1000)
const SOURCES = int('sources', 1, 10_000)
const WARMUP = int('warmup-packets', 0, 100_000)
const SEED = int('seed', 0, 2 ** 31)
const TIMEOUT_MS = int('timeout', 5, 3600) * 1000
if (flags['batch-max'] !== undefined) int('batch-max', 1, 1_000_000)
if (flags['flush-concurrency'] !== undefined) int('flush-concurrency', 1, 64)
const PROFILE_DIR = flags['cpu-prof'] ? resolvePath(flags['cpu-prof']) : undefined

// Issue 12: /ingest/data -> PostgreSQL ≥ 0.35× the same run's \copy (floor), 0.5× target.
const T = { floor: 0.35, target: 0.5, rssMB: 300 }

const admin = loopbackAdminUrl(flags['admin-url'])

// ------------------------------------------------------------------ state and cleanup

const db = await scratchDatabase(admin, `ingest_bench_data_${process.pid}`)
const TMP = mkdtempSync(join(tmpdir(), `ingest-bench-data-${process.pid}-`))
const children = new Set()
let loadgen
let pgc

async function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  if (loadgen?.connected) loadgen.send({ type: 'exit' })
  await pgc?.end().catch(() => {})
  if (!flags.keep) {
    await db.drop()
    rmSync(TMP, { recursive: true, force: true })
  } else console.log(`kept: database ${db.name}, folder ${TMP}`)
}

const log = (...a) => console.log(...a)
const psqlConn = () => ['-h', admin.hostname.replace(/^\[|\]$/g, ''), '-p', admin.port || '5432', '-U', decodeURIComponent(admin.username || 'postgres')]

// ------------------------------------------------------------------ data

/** The series of one source: infrastructure streams with built-in constraints, generic telemetry streams. */
const INFRA = [
  { stream: 'cpu', lo: 5, hi: 75 }, // built-in: warning above 80, operational max 90
  { stream: 'memory', lo: 20, hi: 80 }, // warning above 85
  { stream: 'disk', lo: 10, hi: 75 }, // warning above 80
]
const TELEMETRY = [
  { stream: 'requests_per_s', lo: 0, hi: 5000, unit: '1/s' },
  { stream: 'latency_ms', lo: 0.5, hi: 250, unit: 'ms' },
  { stream: 'queue_depth', lo: 0, hi: 1000, unit: 'items' },
  { stream: 'error_rate', lo: 0, hi: 0.05, unit: 'ratio' },
  { stream: 'temperature', lo: -20, hi: 45, unit: 'celsius' },
]
const DOMAINS = [
  { domain: 'infrastructure', streams: INFRA, reasons: [{ code: 'NORMAL' }] },
  { domain: 'telemetry', streams: TELEMETRY, reasons: [{ code: 'NO_CONSTRAINTS' }] },
]
const SERIES = SOURCES * (INFRA.length + TELEMETRY.length)
const sourceId = (s) => `host-${String(s + 1).padStart(4, '0')}`

/**
 * Deterministic requests. Request p is for the pair (source, domain) number p % (2 × SOURCES); its points
 * go through that domain's streams in turn. Point k (global) has timestamp t0 + k·stepMs (unique), and
 * each series numbers its points 0, 1, 2... (`sequence`). Returns the load generator's lines (`0\tn\tbody`:
 * one key for all) and, per point, what the service stores.
 */
function generate({ packets, t0ms, stepMs, seed, seqs }) {
  const rand = rng(seed)
  const lines = []
  const points = [] // { domain, source, stream, ms, seq, value, metadata }
  const pairs = SOURCES * DOMAINS.length
  for (let p = 0; p < packets; p++) {
    const pair = p % pairs
    const d = DOMAINS[pair % DOMAINS.length]
    const source = sourceId(Math.floor(pair / DOMAINS.length))
    const parts = []
    for (let j = 0; j < PACKET; j++) {
      const k = p * PACKET + j
      const st = d.streams[(j + Math.floor(p / pairs)) % d.streams.length]
      const series = `${d.domain}:${source}:${st.stream}`
      const seq = seqs.get(series) ?? 0
      seqs.set(series, seq + 1)
      const value = Math.round((st.lo + (st.hi - st.lo) * rand()) * 1000) / 1000
      const ms = t0ms + k * stepMs
      const metadata = st.unit ? { unit: st.unit } : undefined
      points.push({ domain: d.domain, source, stream: st.stream, ms, seq, value, metadata: JSON.stringify({ ...metadata, reasons: d.reasons }) })
      parts.push(`{"stream_id":"${st.stream}","value":${JSON.stringify(value)},"timestamp":"${new Date(ms).toISOString()}","sequence":${seq}${metadata ? `,"metadata":${JSON.stringify(metadata)}` : ''}}`)
    }
    lines.push(`0\t${PACKET}\t{"source_id":"${source}","domain":"${d.domain}","data_points":[${parts.join(',')}]}`)
  }
  return { lines, points }
}

/** `domain:source:stream:epoch_ms:sequence` of a point, the form pgVerify builds in SQL. */
const keyOf = (p) => `${p.domain}:${p.source}:${p.stream}:${p.ms}:${p.seq}`

function keysHash(points) {
  const keys = points.map(keyOf).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return createHash('md5').update(keys.join(',')).digest('hex')
}

// ------------------------------------------------------------------ PostgreSQL helpers

const PG_TABLES = 'data_points, stream_rule_state, stream_alerts, ingestion_audit_log'

async function pgReset() {
  await pgc.query(`TRUNCATE ${PG_TABLES}`)
  await pgc.query('CHECKPOINT')
}

async function pgVerify() {
  const r = await pgc.query(
    `WITH k AS (SELECT domain || ':' || source_id || ':' || stream_id || ':' || (extract(epoch FROM "timestamp") * 1000)::bigint || ':' || sequence AS key, classification FROM data_points)
     SELECT count(*)::int AS n, count(DISTINCT key)::int AS d, md5(string_agg(key, ',' ORDER BY key COLLATE "C")) AS h,
            count(*) FILTER (WHERE classification <> 'normal')::int AS other
       FROM k`,
  )
  return r.rows[0]
}

const COLS = 'stream_id, source_id, domain, value, "timestamp", classification, sequence, domain_metadata, ingested_at'
const csvQuote = (s) => `"${s.replaceAll('"', '""')}"`

/** One timed `psql \copy` of the CSV into data_points (the caller empties it first), verified. */
async function timedCopy(csvPath, expectedHash) {
  const c0 = cpuStat()
  const res = await run('psql', [...psqlConn(), '-d', db.name, '-X', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy data_points (${COLS}) FROM '${csvPath}' WITH (FORMAT csv)`], { timeoutMs: TIMEOUT_MS })
  const steal = stealPct(c0, cpuStat())
  if (res.code !== 0) throw new Error(`psql \\copy failed: ${res.stderr}`)
  const v = await pgVerify()
  return { ms: res.ms, rps: (N / res.ms) * 1000, stored: v.n, exact: v.n === N && v.d === N && v.h === expectedHash, steal }
}

// ------------------------------------------------------------------ server and load

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
    loadgen.send({ type: 'run', path: '/ingest/data', keyHeader: 'x-api-key', okStatus: 201, concurrency: CONC, deadlineMs: TIMEOUT_MS, ...opts })
  })
}

async function startServer(name, env, profileDir) {
  const port = await freePort()
  const logPath = join(TMP, `serve-${name}.log`)
  const fd = openSync(logPath, 'a')
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []
  const child = spawn(process.execPath, [...nodeArgs, currentBin(), 'serve', '--port', String(port), '--host', '127.0.0.1'], { env, cwd: TMP, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  children.add(child)
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve (${name}) exited ${child.exitCode} before ready:\n${readFileSync(logPath, 'utf8').slice(-2000)}`)
    try {
      if ((await fetch(`http://127.0.0.1:${port}/ready`)).status === 200) break
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`serve (${name}) not ready after 30 s:\n${readFileSync(logPath, 'utf8').slice(-2000)}`)
    await sleep(100)
  }
  return { child, port, logPath, pid: child.pid }
}

/** Warnings and errors the server logged (pino JSON lines of level ≥ 40), for the report. */
function serverProblems(logPath) {
  const lines = readFileSync(logPath, 'utf8').split('\n').filter((l) => /"level":(4|5|6)0/.test(l))
  return { count: lines.length, first: lines[0]?.slice(0, 300) }
}

/** One service segment: start `serve`, warm up on other points, reset, run the measured load, verify. */
async function serviceSegment({ name, env, key, expectedHash, profileDir }) {
  const srv = await startServer(name, env, profileDir)
  try {
    if (WARMUP > 0) {
      // On empty tables: the \copy's rows (later times) would make every warm-up point late.
      await pgReset()
      const w = await loadRun({ port: srv.port, keys: [key], from: N / PACKET, to: N / PACKET + WARMUP })
      if (w.ackedPackets !== WARMUP) log(`  warning: warm-up acked ${w.ackedPackets}/${WARMUP} requests; failures ${JSON.stringify(w.failures)} ${w.samples.join(' | ')}`)
    }
    await pgReset()
    let rssMax = 0
    const sampler = setInterval(() => {
      const { rss } = procMem(srv.pid)
      if (rss > rssMax) rssMax = rss
    }, 100)
    const c0 = cpuStat()
    const srv0 = procCpuMs(srv.pid)
    const pg0 = cpuMsByName('postgres')
    const self0 = process.cpuUsage()
    const w0 = performance.now()
    const res = await loadRun({ port: srv.port, keys: [key], from: 0, to: N / PACKET })
    const wall = performance.now() - w0
    const srvMs = procCpuMs(srv.pid) - srv0
    const pgMs = cpuMsByName('postgres') - pg0
    const self1 = process.cpuUsage(self0)
    const c1 = cpuStat()
    clearInterval(sampler)
    const ours = srvMs + pgMs + res.cpuMs + (self1.user + self1.system) / 1000
    const { hwm } = procMem(srv.pid)
    const v = await pgVerify()
    const lat = res.latencies
    const out = {
      acked: res.ackedReadings,
      stored: v.n,
      distinct: v.d,
      hashOk: v.h === expectedHash,
      otherClass: v.other,
      rps: (res.ackedReadings / res.durationMs) * 1000,
      ms: res.durationMs,
      p50: percentile(lat, 50),
      p99: percentile(lat, 99),
      pmax: lat.length ? max(lat) : NaN,
      rssPeakKB: Math.max(hwm || 0, rssMax),
      cpuServerUs: (srvMs * 1000) / res.ackedReadings,
      cpuPgUs: (pgMs * 1000) / res.ackedReadings,
      cpuLoadgenUs: (res.cpuMs * 1000) / res.ackedReadings,
      steal: stealPct(c0, c1),
      otherCores: Math.max(0, busyMs(c0, c1) - ours) / wall,
      failures: res.failures,
      failureCount: Object.values(res.failures).reduce((a, b) => a + b, 0),
      gaveUp: res.gaveUp,
      timedOut: res.timedOut,
      inserted: res.inserted,
      duplicates: res.duplicates,
      rejected: res.rejected,
      deadLettered: res.deadLettered,
      samples: res.samples,
      problems: serverProblems(srv.logPath),
    }
    out.exact = out.acked === N && out.stored === N && out.distinct === N && out.hashOk && out.inserted === N && out.duplicates === 0 && out.rejected === 0 && out.deadLettered === 0 && !out.timedOut && out.gaveUp === 0
    return out
  } finally {
    const code = await stopChild(srv.child, 'SIGINT')
    children.delete(srv.child)
    if (code !== 0 && code !== null) log(`  note: serve (${name}) exited ${code}; log tail:\n${readFileSync(srv.logPath, 'utf8').slice(-1000)}`)
  }
}

// ------------------------------------------------------------------ main

const fmtCopy = (c) => `${fmtInt(N)} rows in ${(c.ms / 1000).toFixed(2)} s = ${fmtInt(c.rps)} rows/s  steal ${c.steal.toFixed(1)}%  stored ${c.stored}${c.exact ? '' : ' MISMATCH'}`

function fmtSeg(s) {
  const fail = s.failureCount ? `  failures ${JSON.stringify(s.failures)}` : ''
  const exact = s.exact ? 'yes' : `NO (acked ${s.acked}, stored ${s.stored}, distinct ${s.distinct}, inserted ${s.inserted}, duplicates ${s.duplicates}, rejected ${s.rejected}, dead-lettered ${s.deadLettered}, same keys ${s.hashOk})`
  return `${fmtInt(s.acked)} acked in ${(s.ms / 1000).toFixed(2)} s = ${fmtInt(s.rps)} points/s  p50 ${fmtMs(s.p50)} p99 ${fmtMs(s.p99)} max ${fmtMs(s.pmax)}  peak RSS ${fmtMB(s.rssPeakKB)}  CPU µs/point server ${s.cpuServerUs.toFixed(1)} postgres ${s.cpuPgUs.toFixed(1)} loadgen ${s.cpuLoadgenUs.toFixed(1)}  steal ${s.steal.toFixed(1)}% other load ${s.otherCores.toFixed(2)} cores  stored==acked==generated ${exact}${fail}`
}

async function main() {
  const t0 = performance.now()
  // A frozen copy of the build: others may rebuild dist/ while we run.
  await snapshotBuild(join(TMP, 'app'))
  const pgVersion = (await run('psql', [...psqlConn(), '-d', admin.pathname.slice(1) || 'postgres', '-AtXc', 'SHOW server_version'], {})).stdout.trim()
  const machine = machineInfo({ pgVersion })
  log(`data bench: ${fmtInt(N)} points (${N / PACKET} requests × ${PACKET}), ${SOURCES} sources × 8 streams = ${SERIES} series, ${ROUNDS} rounds, concurrency ${CONC}, warm-up ${WARMUP} requests, seed ${SEED}`)
  log(`scratch: database ${db.name}, folder ${TMP}`)

  await db.create()
  const env = cleanEnv({
    DATABASE_URL: db.url,
    RATE_LIMIT_ENABLED: '0',
    LOG_LEVEL: 'warn',
    ...(flags['node-options'] ? { NODE_OPTIONS: flags['node-options'] } : {}),
    ...(flags['flush-concurrency'] ? { BATCH_FLUSH_CONCURRENCY: flags['flush-concurrency'] } : {}),
    ...(flags['batch-max'] ? { BATCH_MAX_SIZE: flags['batch-max'] } : {}),
  })
  await cli(['db', 'migrate', '--json'], { env, cwd: TMP })
  if (process.env.BENCH_PG_LOG_STATEMENTS) await run('psql', [...psqlConn(), '-d', db.name, '-Xc', `ALTER DATABASE ${db.name} SET log_min_duration_statement = 0`], {})
  const created = await cli(['keys', 'create', '--role', 'admin', '--name', 'bench-data', '--json'], { env, cwd: TMP })
  if (typeof created.key !== 'string') throw new Error(`keys create --role admin --json answered no key: ${JSON.stringify(created).slice(0, 300)}`)
  pgc = new pg.Client({ connectionString: db.url })
  await pgc.connect()
  const ddl = (await pgc.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'data_points' ORDER BY indexname`)).rows.map((r) => r.indexdef.replace(/^CREATE (UNIQUE )?INDEX (\S+) ON \S+ USING btree /, '$1$2 '))

  // Measured points in [now-3000 s, now-100 s], warm-up points before them: every series only moves forward.
  const nowMs = Math.floor(Date.now() / 1000) * 1000
  const seqs = new Map()
  const warmStep = WARMUP > 0 ? Math.max(1, Math.min(1000, Math.floor(500_000 / (WARMUP * PACKET)))) : 1
  const warm = generate({ packets: WARMUP, t0ms: nowMs - 3_500_000, stepMs: warmStep, seed: SEED + 7919, seqs })
  const stepMs = Math.max(1, Math.min(1000, Math.floor(2_900_000 / N)))
  const measured = generate({ packets: N / PACKET, t0ms: nowMs - 3_000_000, stepMs, seed: SEED, seqs: new Map() })
  const packetsFile = join(TMP, 'requests.tsv')
  writeFileSync(packetsFile, `${[...measured.lines, ...warm.lines].join('\n')}\n`)
  const ingestIso = new Date(nowMs).toISOString()
  const csvPath = join(TMP, 'points.csv')
  writeFileSync(csvPath, measured.points.map((p) => `${p.stream},${p.source},${p.domain},${p.value},${new Date(p.ms).toISOString()},normal,${p.seq},${csvQuote(p.metadata)},${ingestIso}`).join('\n') + '\n')
  const expectedHash = keysHash(measured.points)
  loadgen = await startLoadgen(packetsFile)
  log(`setup ${((performance.now() - t0) / 1000).toFixed(1)} s (CSV ${(statSync(csvPath).size / 1024 ** 2).toFixed(1)} MB, requests ${(statSync(packetsFile).size / 1024 ** 2).toFixed(1)} MB)`)

  const rounds = []
  let exactAll = true
  for (let r = 1; r <= ROUNDS; r++) {
    log(`\nround ${r}/${ROUNDS}`)
    const round = { r }
    const profileDir = PROFILE_DIR && r === 1 ? PROFILE_DIR : undefined
    await pgReset()
    round.copy = await timedCopy(csvPath, expectedHash)
    log(`  (a) psql \\copy          ${fmtCopy(round.copy)}`)
    round.svc = await serviceSegment({ name: `pg-${r}`, env, key: created.key, expectedHash, profileDir })
    round.ratio = round.svc.rps / round.copy.rps
    log(`  (b) /ingest/data -> PG   ${fmtSeg(round.svc)}`)
    log(`      ratio (b)/(a) = ${round.ratio.toFixed(3)}×`)
    if (round.svc.problems.count) log(`      server logged ${round.svc.problems.count} warning/error lines; first: ${round.svc.problems.first}`)
    if (round.svc.samples.length) log(`      first failed / rejected answers: ${round.svc.samples.join(' | ')}`)
    if (round.svc.otherClass) log(`      note: ${round.svc.otherClass} stored points are not classified normal`)
    exactAll &&= round.copy.exact && round.svc.exact
    rounds.push(round)
    if (profileDir) {
      const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(profileDir, f)).sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)
      if (files[0]) log(`\n--- CPU profile of the server, round 1 ---\n${summarizeProfile(files[0], 30)}\n`)
      else log(`  no .cpuprofile written in ${profileDir}`)
    }
  }

  // ---------------------------------------------------------------- summary
  const col = (f) => rounds.map(f)
  const ratios = col((r) => r.ratio)
  const p99 = median(col((r) => r.svc.p99))
  const p50 = median(col((r) => r.svc.p50))
  const rss = max(col((r) => r.svc.rssPeakKB)) / 1024
  const gates = [
    { gate: '/ingest/data -> PostgreSQL ÷ psql \\copy into data_points (median of rounds)', measured: ratioSpan(ratios), want: `≥ ${T.floor}× floor (target ${T.target}×)`, pass: median(ratios) >= T.floor, note: median(ratios) >= T.target ? 'target met' : `below the ${T.target}× target` },
    { gate: 'serve peak RSS (max of rounds)', measured: `${rss.toFixed(0)} MB`, want: `≤ ${T.rssMB} MB`, pass: rss <= T.rssMB },
    { gate: 'stored == acked == generated, no duplicates, same key set (every segment)', measured: exactAll ? 'yes' : 'NO', want: 'yes', pass: exactAll },
  ]
  const verdict = (g) => (g.pass ? 'PASS' : 'FAIL')
  log('\nsummary (ratios are per round, same run; absolute rows/s are context only)')
  log(`  (b)/(a) ${ratioSpan(ratios, 3)}  (a) median ${fmtInt(median(col((r) => r.copy.rps)))} rows/s, (b) median ${fmtInt(median(col((r) => r.svc.rps)))} points/s, p50 ${fmtMs(p50)} p99 ${fmtMs(p99)} (closed loop c=${CONC}, context)`)
  for (const g of gates) log(`  ${verdict(g).padEnd(4)}  ${g.gate}: ${g.measured}  (want ${g.want})${g.note ? `  ${g.note}` : ''}`)
  const totalS = (performance.now() - t0) / 1000
  log(`total ${totalS.toFixed(0)} s`)

  if (PROFILE_DIR) log('\n--cpu-prof run: the profiled server perturbs the figures, so nothing is appended to bench/RESULTS.md')
  else if (!flags['no-append']) {
    const md = [
      `## data: POST /ingest/data -> PostgreSQL (${machine.date})`,
      '',
      ...machineLines(machine),
      `- data: ${fmtInt(N)} points per segment = ${N / PACKET} requests × ${PACKET}, ${SOURCES} sources × (infrastructure cpu/memory/disk with built-in constraints + 5 telemetry streams without constraints, with metadata) = ${SERIES} series, seed ${SEED}; every point timed (unique timestamp) and sequenced, values in the normal range; one admin role key (X-API-Key)`,
      `- load: closed loop, ${CONC} keep-alive connections, ack = HTTP 201; ${WARMUP} warm-up requests of other points per server start, then TRUNCATE ${PG_TABLES} + CHECKPOINT (every series is new to the measured segment); ${ROUNDS} rounds a → b; total ${totalS.toFixed(0)} s`,
      `- service env: production defaults + RATE_LIMIT_ENABLED=0, LOG_LEVEL=warn${flags['node-options'] ? `, NODE_OPTIONS=${flags['node-options']}` : ''}${flags['flush-concurrency'] ? `, BATCH_FLUSH_CONCURRENCY=${flags['flush-concurrency']}` : ''}${flags['batch-max'] ? `, BATCH_MAX_SIZE=${flags['batch-max']}` : ''}; data_points indexes: ${ddl.map((d) => `\`${d}\``).join(', ')}`,
      '',
      '| round | (a) \\copy rows/s | (b) /ingest/data points/s | (b)/(a) | p50 | p99 | peak RSS | CPU µs/point server / postgres / loadgen | steal | other load (cores) | non-201 | stored==acked==generated |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rounds.map(
        (r) =>
          `| ${r.r} | ${fmtInt(r.copy.rps)} | ${fmtInt(r.svc.rps)} | ${r.ratio.toFixed(3)}× | ${fmtMs(r.svc.p50)} | ${fmtMs(r.svc.p99)} | ${fmtMB(r.svc.rssPeakKB)} | ${r.svc.cpuServerUs.toFixed(1)} / ${r.svc.cpuPgUs.toFixed(1)} / ${r.svc.cpuLoadgenUs.toFixed(1)} | ${r.svc.steal.toFixed(1)}% | ${r.svc.otherCores.toFixed(2)} | ${r.svc.failureCount} | ${r.copy.exact && r.svc.exact ? 'yes' : '**NO**'} |`,
      ),
      '',
      ...gatesMarkdown(gates),
    ].join('\n')
    appendResults(md)
    log('appended to bench/RESULTS.md')
  }
  if (!exactAll) {
    log('FAIL: stored != acked != generated (or duplicates / different keys) in at least one segment')
    return 1
  }
  if (flags.strict && gates.some((g) => !g.pass)) return 1
  return 0
}

if (!(N > 0)) usageError('--points must be > 0')
await runBenchmark('data', main, cleanup)
