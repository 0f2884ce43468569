#!/usr/bin/env node
// @bench HTTP packets -> PostgreSQL vs psql \copy, and the embedded SQLite path vs a plain better-sqlite3 loop (interleaved rounds)
//
// One run, same rows, same table, interleaved a -> b -> c per round (performance.md §4):
//   (a) `psql \copy` of the N readings (CSV, the columns the service stores) into sensor_readings;
//   (a0) context, not a gate: the same \copy into a scratch copy of the table with only its primary key,
//       so the report shows what the production table's secondary indexes cost (they, not the service,
//       set the ceiling (a));
//   (b) `ingest serve` on PostgreSQL, fed 100-reading packets by a closed-loop load generator (child
//       process, keep-alive, --concurrency connections) until all N readings are acked (HTTP 200); then,
//       against the same server, an open-loop segment (target a″): --open-packets other packets sent at a
//       fixed rate of --open-rate-fraction × the (b) rate just measured, latency taken from each packet's
//       scheduled send time (no coordinated omission; see lib/http-loadgen.mjs);
//   (c) `ingest serve` on the embedded SQLite database, same load, same packets; against two plain
//       in-process better-sqlite3 loops on a freshly migrated copy of the same schema (WAL, synchronous=FULL):
//       plain-per-packet (one durable transaction per 100-row packet: the naive per-request design; the gate)
//       and plain-bulk (one transaction per 10 000 rows: the physical ceiling).
// Before every measured segment: TRUNCATE (SQLite: DELETE + VACUUM), CHECKPOINT and `sync` (the kernel's
// writeback of earlier segments' files must not land in the next segment's fsyncs). Every segment checks
// stored == acked, no duplicate keys and that the stored (sensor_id, dedup_key) set equals the expected one
// (the open-loop segment: its own rows, checked on their own).
// Prints per-round figures and the median [min..max] of per-round ratios, appends to bench/RESULTS.md.
import { fork, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, closeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import Database from 'better-sqlite3'
import pg from 'pg'

import {
  appendResults,
  BENCH_DIR,
  benchFlags,
  cleanEnv,
  cli,
  cpuMsByName,
  busyMs,
  cpuStat,
  currentBin,
  fmtInt,
  fmtMB,
  fmtMs,
  freePort,
  gatesMarkdown,
  machineInfo,
  machineLines,
  max,
  median,
  percentile,
  procCpuMs,
  procMem,
  ratioSpan,
  rng,
  run,
  sleep,
  snapshotBuild,
  stealPct,
} from './lib/common.mjs'
import { summarizeProfile } from './lib/cpuprofile-summary.mjs'
import { fmtDeltas, histogramDeltas, scrape } from './lib/prom.mjs'

// The open-loop segment sends a fixed number of packets, but never for longer than this: a slow service
// (a low measured rate) must not turn one round into minutes.
const OPEN_MAX_S = 60

const USAGE = `npm run bench -- http [flags]
  --readings N         readings per measured segment (default 200000; rounded up to whole packets)
  --rounds R           interleaved rounds a -> a0 -> b (+ open loop) -> c (default 3)
  --concurrency C      load-generator connections (default 50)
  --devices D          devices (default 50)          --sensors S   sensors per device (default 20)
  --packet-size P      readings per packet (default 100)
  --warmup-packets W   warm-up packets before each service segment, other rows, then truncated (default 300)
  --open-packets O     packets of the open-loop segment after each (b), other rows (default 3000, ≈ 12 s at
                       25 000 readings/s; capped to what fits in ${OPEN_MAX_S} s at the rate; 0 = no open loop)
  --open-rate-fraction F  open-loop rate as a fraction of that round's (b) readings/s (default 0.5)
  --rules              give every sensor an out_of_range threshold far outside the data (thresholds evaluated)
  --seed X             data seed (default 1)
  --timeout SEC        deadline of one load run (default 180)
  --admin-url URL      PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres; loopback only)
  --cpu-prof DIR       run the round-1 servers under node --cpu-prof into DIR and print a summary (no RESULTS.md entry)
  --batch-max N        BATCH_MAX_SIZE of the servers under test (default 10000)
  --flush-concurrency N  BATCH_FLUSH_CONCURRENCY of the servers under test (default: the engine's, 3 on PostgreSQL)
  --node-options STR   NODE_OPTIONS of the servers under test (e.g. "--max-semi-space-size=64"); noted in the results
  --no-append          do not append to bench/RESULTS.md
  --strict             exit 1 when a performance target FAILs too (default: only exactness failures exit 1)
  --keep               keep the scratch database and temp folder`

const { flags, int } = benchFlags(
  {
    readings: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '50' },
    devices: { type: 'string', default: '50' },
    sensors: { type: 'string', default: '20' },
    'packet-size': { type: 'string', default: '100' },
    'warmup-packets': { type: 'string', default: '300' },
    'open-packets': { type: 'string', default: '3000' },
    'open-rate-fraction': { type: 'string', default: '0.5' },
    'node-options': { type: 'string' },
    'flush-concurrency': { type: 'string' },
    'batch-max': { type: 'string' },
    rules: { type: 'boolean', default: false },
    seed: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '180' },
    'cpu-prof': { type: 'string' },
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
const OPEN = int('open-packets', 0, 1_000_000)
const OPEN_FRACTION = Number(flags['open-rate-fraction'])
if (!(OPEN_FRACTION > 0 && OPEN_FRACTION <= 2)) {
  console.error('--open-rate-fraction must be a number in (0, 2]')
  process.exit(2)
}
const BULK = 10_000

// Targets (performance.md §0 a, a′, a″ and the issue). The open loop passes at its floor (p99 ≤ 20 ms);
// whether the 10 ms target is met is said next to it.
const T = { pgFloor: 0.35, pgTarget: 0.5, p99Ms: 25, rssMB: 300, sqliteFloor: 0.5, openP99Floor: 20, openP99Ms: 10, openP999Ms: 50 }

const admin = new URL(flags['admin-url'])
if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(admin.hostname)) {
  console.error(`--admin-url must point at loopback (got ${admin.hostname})`)
  process.exit(2)
}


// ------------------------------------------------------------------ state and cleanup

const DB_NAME = `ingest_bench_${process.pid}`
const dbUrl = new URL(admin)
dbUrl.pathname = `/${DB_NAME}`
const DB_URL = dbUrl.toString()
const TMP = mkdtempSync(join(tmpdir(), `ingest-bench-${process.pid}-`))
const children = new Set()
let loadgen
let adminCreated = false
let pgc

async function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  if (loadgen?.connected) loadgen.send({ type: 'exit' })
  try {
    await pgc?.end()
  } catch {
    /* already gone */
  }
  if (adminCreated && !flags.keep) {
    const c = new pg.Client({ connectionString: admin.toString() })
    try {
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`)
    } catch (err) {
      console.error(`could not drop ${DB_NAME}: ${err.message}`)
    } finally {
      await c.end().catch(() => {})
    }
  }
  if (!flags.keep) rmSync(TMP, { recursive: true, force: true })
  else console.log(`kept: database ${DB_NAME}, folder ${TMP}`)
}
let stopping = false
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    if (stopping) return
    stopping = true
    console.error(`\n${sig}: stopping servers, dropping ${DB_NAME}`)
    await cleanup()
    process.exit(130)
  })
}

const log = (...a) => console.log(...a)
const pgUrlForPsql = () => ['-h', admin.hostname.replace(/^\[|\]$/g, ''), '-p', admin.port || '5432', '-U', decodeURIComponent(admin.username || 'postgres'), '-d', DB_NAME]

// ------------------------------------------------------------------ registry, keys

const hex12 = (n) => n.toString(16).padStart(12, '0')
const deviceUuid = (d) => `00000000-0000-4000-8000-${hex12(d + 1)}`
const sensorUuid = (d, s) => `10000000-0000-4000-8000-${hex12(d * SENSORS + s + 1)}`
const TYPES = ['humidity', 'voltage']
const sensorType = (s) => TYPES[s % TYPES.length]

function applyYaml() {
  const lines = ['devices:']
  for (let d = 0; d < DEVICES; d++) {
    lines.push(`  - uuid: ${deviceUuid(d)}`, `    name: bench-${d + 1}`, '    sensors:')
    for (let s = 0; s < SENSORS; s++) {
      // min_readings_for_normal 0: no warm-up classification, every reading takes the clean path.
      const th = flags.rules ? `, thresholds: [ { name: far, condition: out_of_range, min: -1000000, max: 1000000, severity: warning } ]` : ''
      lines.push(`      - { uuid: ${sensorUuid(d, s)}, type: ${sensorType(s)}, min_readings_for_normal: 0${th} }`)
    }
  }
  return `${lines.join('\n')}\n`
}

/** db migrate, apply, one device key per device; returns sensor ids by uuid and keys by device index. */
async function provision(label, env) {
  await cli(['db', 'migrate', '--json'], { env, cwd: TMP })
  const applied = await cli(['apply', join(TMP, 'registry.yaml'), '--json'], { env, cwd: TMP })
  const ids = new Map()
  for (const d of applied.devices) for (const s of d.sensors) ids.set(s.uuid, s.id)
  if (ids.size !== DEVICES * SENSORS) throw new Error(`${label}: apply registered ${ids.size} sensors, expected ${DEVICES * SENSORS}`)
  const keys = []
  for (let d = 0; d < DEVICES; d++) keys.push((await cli(['keys', 'create', '--device', deviceUuid(d), '--name', `bench-${d + 1}`, '--json'], { env, cwd: TMP })).key)
  return { ids, keys }
}

// ------------------------------------------------------------------ data

/**
 * Deterministic packets (seeded values; times relative to the run start so the age window accepts
 * them). Packet p belongs to device p % D and holds PACKET readings over its sensors; reading k (global)
 * has sensor_ts = t0 + k·step, unique, so no dedup key repeats. Returns the packet lines for the load
 * generator and, per reading, what the service would store.
 */
function generate({ packets, t0us, stepUs, seed }) {
  const rand = rng(seed)
  const lines = []
  const readings = [] // { d, s, value, ts }
  for (let p = 0; p < packets; p++) {
    const d = p % DEVICES
    const parts = []
    for (let j = 0; j < PACKET; j++) {
      const k = p * PACKET + j
      const s = (j + Math.floor(p / DEVICES)) % SENSORS
      const type = sensorType(s)
      const raw = type === 'humidity' ? 30 + 40 * rand() : 220 + 20 * rand()
      const value = Math.round(raw * 1000) / 1000
      const ts = (t0us + k * stepUs) / 1e6
      readings.push({ d, s, value, ts })
      parts.push(`{"sensor_uuid":"${sensorUuid(d, s)}","value":${JSON.stringify(value)},"sensor_ts":${JSON.stringify(ts)}}`)
    }
    lines.push(`${d}\t${PACKET}\t{"device_uuid":"${deviceUuid(d)}","readings":[${parts.join(',')}]}`)
  }
  return { lines, readings }
}

const CLASS = 'ML_PREDICTION'
const REASONS = '[{"code":"CLEAN"}]'

/** The rows the service stores for these readings, with this database's sensor ids. */
function rowsFor(readings, ids, ingestIso) {
  return readings.map((r) => {
    const sid = ids.get(sensorUuid(r.d, r.s))
    return { sid, value: r.value, ingestIso, devIso: new Date(r.ts * 1000).toISOString(), dedup: `${sid}:${r.ts.toFixed(6)}:${r.value.toFixed(6)}` }
  })
}

function keysHash(pairs) {
  const sorted = pairs.sort((a, b) => a[0] - b[0] || (a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
  const h = createHash('md5')
  sorted.forEach(([sid, key], i) => h.update(`${i ? ',' : ''}${sid}:${key}`))
  return h.digest('hex')
}

// ------------------------------------------------------------------ PostgreSQL helpers

const PG_TABLES = 'sensor_readings, sensor_readings_latest, sensor_rule_state, alert_notifications, alerts, ml_events'

async function pgReset() {
  await pgc.query(`TRUNCATE ${PG_TABLES}`)
  await pgc.query('CHECKPOINT')
  await settleDisk()
}

/**
 * Waits for the kernel to write back the dirty pages earlier segments left (the SQLite segment's files,
 * the checkpoint's data files), so their writeback does not land in the next measured segment's fsyncs.
 */
async function settleDisk() {
  const res = await run('sync', [], { timeoutMs: 120_000 })
  if (res.code !== 0) log(`  note: sync exited ${res.code}`)
}

async function pgVerify(table = 'sensor_readings') {
  const r = await pgc.query(
    `SELECT count(*)::int AS n, count(DISTINCT (sensor_id, dedup_key))::int AS d,
            md5(string_agg(sensor_id::text || ':' || dedup_key, ',' ORDER BY sensor_id, dedup_key COLLATE "C")) AS h,
            count(*) FILTER (WHERE classification <> '${CLASS}')::int AS other
       FROM ${table}`,
  )
  return r.rows[0]
}

// (a0): the production table's columns, defaults and identity, only the primary key; no secondary index.
const NOIDX = 'sensor_readings_noidx'

async function noidxCreate() {
  await pgc.query(`CREATE TABLE ${NOIDX} (LIKE sensor_readings INCLUDING DEFAULTS INCLUDING IDENTITY)`)
  await pgc.query(`ALTER TABLE ${NOIDX} ADD PRIMARY KEY (id)`)
  // (a0) vs (a) isolates the indexes only if the production table has nothing else LIKE leaves out.
  const r = await pgc.query(
    `SELECT (SELECT count(*) FROM pg_constraint WHERE conrelid = 'sensor_readings'::regclass AND contype NOT IN ('p', 'n'))::int
          + (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sensor_readings'::regclass AND NOT tgisinternal)::int AS extra`,
  )
  return r.rows[0].extra
}

// ------------------------------------------------------------------ SQLite helpers

const SQLITE_TABLES = ['sensor_readings', 'sensor_readings_latest', 'sensor_rule_state', 'alert_notifications', 'alerts', 'ml_events']

function sqliteReset(path) {
  const db = new Database(path)
  try {
    db.pragma('busy_timeout = 10000')
    for (const t of SQLITE_TABLES) db.exec(`DELETE FROM ${t}`)
    db.exec('VACUUM')
    db.pragma('wal_checkpoint(TRUNCATE)')
  } finally {
    db.close()
  }
}

function sqliteVerify(path) {
  const db = new Database(path, { readonly: true })
  try {
    db.pragma('busy_timeout = 10000')
    const pairs = db.prepare('SELECT sensor_id, dedup_key FROM sensor_readings').raw().all()
    const d = db.prepare('SELECT count(*) FROM (SELECT DISTINCT sensor_id, dedup_key FROM sensor_readings)').pluck().get()
    const other = db.prepare(`SELECT count(*) FROM sensor_readings WHERE classification <> '${CLASS}'`).pluck().get()
    return { n: pairs.length, d, other, h: keysHash(pairs) }
  } finally {
    db.close()
  }
}

const SQLITE_INSERT = `INSERT INTO sensor_readings (sensor_id, value, "timestamp", device_timestamp, dedup_key, sequence, classification, reason_codes, transport) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`

/** The plain loop: a fresh copy of the migrated template, prepared INSERT, `perTx` rows per durable transaction. */
function plainSqlite(template, params, perTx, name) {
  const dir = join(TMP, `plain-${name}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir)
  const path = join(dir, 'ingest.db')
  copyFileSync(template, path)
  const db = new Database(path)
  try {
    // The same pragmas as the service's connection (src/lib/adapters/storage/sqlite/connection.ts).
    db.pragma('busy_timeout = 20')
    db.pragma('journal_mode = WAL')
    db.pragma('synchronous = FULL')
    db.pragma('foreign_keys = ON')
    const stmt = db.prepare(SQLITE_INSERT)
    const tx = db.transaction((from, to) => {
      for (let i = from; i < to; i++) stmt.run(params[i])
    })
    const c0 = cpuStat()
    const self0 = process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < params.length; i += perTx) tx.immediate(i, Math.min(params.length, i + perTx))
    const ms = performance.now() - t0
    const self1 = process.cpuUsage(self0)
    const c1 = cpuStat()
    const steal = stealPct(c0, c1)
    const otherCores = Math.max(0, busyMs(c0, c1) - (self1.user + self1.system) / 1000) / ms
    const n = db.prepare('SELECT count(*) FROM sensor_readings').pluck().get()
    return { ms, rps: (params.length / ms) * 1000, stored: n, steal, otherCores }
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

// ------------------------------------------------------------------ server and load

function startLoadgen(file) {
  return new Promise((resolve, reject) => {
    const child = fork(join(BENCH_DIR, 'lib', 'http-loadgen.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    children.add(child)
    child.once('error', reject)
    child.once('message', (m) => (m.type === 'loaded' ? resolve({ child, packets: m.packets }) : reject(new Error(m.message))))
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

async function startServer(name, env, profileDir) {
  const port = await freePort()
  const logPath = join(TMP, `serve-${name}.log`)
  const fd = openSync(logPath, 'a')
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []
  const serverEnv = { ...env, ...(flags['node-options'] ? { NODE_OPTIONS: flags['node-options'] } : {}), ...(flags['flush-concurrency'] ? { BATCH_FLUSH_CONCURRENCY: flags['flush-concurrency'] } : {}), ...(flags['batch-max'] ? { BATCH_MAX_SIZE: flags['batch-max'] } : {}) }
  const child = spawn(process.execPath, [...nodeArgs, currentBin(), 'serve', '--port', String(port), '--host', '127.0.0.1'], { env: serverEnv, cwd: TMP, stdio: ['ignore', fd, fd] })
  closeSync(fd)
  children.add(child)
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve (${name}) exited ${child.exitCode} before ready:\n${readFileSync(logPath, 'utf8').slice(-2000)}`)
    try {
      const r = await fetch(`http://127.0.0.1:${port}/ready`)
      if (r.status === 200) break
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`serve (${name}) not ready after 30 s:\n${readFileSync(logPath, 'utf8').slice(-2000)}`)
    await sleep(100)
  }
  return { child, port, logPath, pid: child.pid }
}

async function stopServer(srv) {
  if (srv.child.exitCode !== null) return srv.child.exitCode
  const exited = new Promise((r) => srv.child.once('exit', (code) => r(code)))
  srv.child.kill('SIGINT')
  const code = await Promise.race([exited, sleep(30_000).then(() => 'timeout')])
  if (code === 'timeout') {
    srv.child.kill('SIGKILL')
    await exited
  }
  children.delete(srv.child)
  return code
}

/** Warnings and errors the server logged (pino JSON lines of level ≥ 40), for the report. */
function serverProblems(logPath) {
  const lines = readFileSync(logPath, 'utf8').split('\n').filter((l) => /"level":(4|5|6)0/.test(l))
  return { count: lines.length, first: lines[0]?.slice(0, 300) }
}

/**
 * Starts the CPU accounting of a segment; the returned function ends it, given the load generator's CPU ms,
 * and answers the CPU of server and postgres, steal, and the cores other processes used (noise guard).
 */
function cpuMeter(pid) {
  const c0 = cpuStat()
  const srv0 = procCpuMs(pid)
  const pg0 = cpuMsByName('postgres')
  const self0 = process.cpuUsage()
  const w0 = performance.now()
  return (loadgenMs) => {
    const wall = performance.now() - w0
    const srvMs = procCpuMs(pid) - srv0
    const pgMs = cpuMsByName('postgres') - pg0
    const self1 = process.cpuUsage(self0)
    const c1 = cpuStat()
    // Noise guard: CPU the machine spent on processes that are not ours (others' builds and tests).
    const ours = srvMs + pgMs + loadgenMs + (self1.user + self1.system) / 1000
    return { srvMs, pgMs, steal: stealPct(c0, c1), otherCores: Math.max(0, busyMs(c0, c1) - ours) / wall }
  }
}

/**
 * The open-loop segment, on a server that is up and warm: reset the tables (the closed loop's rows and
 * dirty pages must not weigh on it), send the open block at OPEN_FRACTION × `rps` readings/s, verify those
 * rows alone. `open` = { from (first packet index), packets, hashOf(n packets) }.
 */
async function openSegment({ srv, keys, reset, verify, rps, open }) {
  const rate = (OPEN_FRACTION * rps) / PACKET // packets/s
  const packets = Math.min(open.packets, Math.max(1, Math.floor(rate * OPEN_MAX_S)))
  await reset()
  const before = await scrape(srv.port)
  const meter = cpuMeter(srv.pid)
  const res = await loadRun({ type: 'run-open', port: srv.port, keys, from: open.from, to: open.from + packets, rate })
  const cpu = meter(res.cpuMs)
  // Where the tail comes from: the server's own histograms over this segment (flush phases, queue wait, GC).
  const tail = histogramDeltas(before, await scrape(srv.port))
  const v = await verify()
  const lat = res.latencies
  const expected = packets * PACKET
  const out = {
    packets,
    capped: packets < open.packets,
    rateWant: rate * PACKET,
    rateGot: (res.ackedReadings / res.durationMs) * 1000,
    acked: res.ackedReadings,
    stored: v.n,
    distinct: v.d,
    hashOk: v.h === open.hashOf(packets),
    otherClass: v.other,
    inserted: res.inserted,
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
    p999: percentile(lat, 99.9),
    pmax: lat.length ? max(lat) : NaN,
    lagP99: percentile(res.lags, 99),
    lagMax: res.lags.length ? max(res.lags) : NaN,
    steal: cpu.steal,
    otherCores: cpu.otherCores,
    failures: res.failures,
    failureCount: Object.values(res.failures).reduce((a, b) => a + b, 0),
    samples: res.samples,
    tail,
  }
  out.exact = out.acked === expected && out.stored === out.acked && out.distinct === out.stored && out.hashOk && out.inserted === out.acked && !res.timedOut && res.gaveUp === 0
  return out
}

/**
 * One service segment: start `serve`, warm up on other rows, reset the tables, run the measured load
 * (sampling the server's RSS every 100 ms and the CPU of server, postgres and the load generator), verify;
 * with `open`, then the open-loop segment on the same server (out.open).
 */
async function serviceSegment({ name, env, keys, reset, verify, expectedHash, profileDir, open }) {
  const srv = await startServer(name, env, profileDir)
  try {
    if (WARMUP > 0) {
      const w = await loadRun({ port: srv.port, keys, from: N / PACKET, to: N / PACKET + WARMUP })
      if (w.ackedPackets !== WARMUP) log(`  warning: warm-up acked ${w.ackedPackets}/${WARMUP} packets; failures ${JSON.stringify(w.failures)} ${w.samples.join(' | ')}`)
    }
    await reset()
    let rssMax = 0
    const sampler = setInterval(() => {
      const { rss } = procMem(srv.pid)
      if (rss > rssMax) rssMax = rss
    }, 100)
    const meter = cpuMeter(srv.pid)
    const res = await loadRun({ port: srv.port, keys, from: 0, to: N / PACKET })
    const cpu = meter(res.cpuMs)
    clearInterval(sampler)
    const { hwm } = procMem(srv.pid)
    const v = await verify()
    const problems = serverProblems(srv.logPath)
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
      p999: percentile(lat, 99.9),
      pmax: lat.length ? max(lat) : NaN,
      rssPeakKB: Math.max(hwm || 0, rssMax),
      cpuServerUs: (cpu.srvMs * 1000) / res.ackedReadings,
      cpuPgUs: (cpu.pgMs * 1000) / res.ackedReadings,
      cpuLoadgenUs: (res.cpuMs * 1000) / res.ackedReadings,
      steal: cpu.steal,
      otherCores: cpu.otherCores,
      failures: res.failures,
      failureCount: Object.values(res.failures).reduce((a, b) => a + b, 0),
      gaveUp: res.gaveUp,
      timedOut: res.timedOut,
      inserted: res.inserted,
      duplicates: res.duplicates,
      rejected: res.rejected,
      samples: res.samples,
      problems,
    }
    out.exact = out.acked === N && out.stored === out.acked && out.distinct === out.stored && out.hashOk && out.inserted === out.acked && !out.timedOut && out.gaveUp === 0
    // Only a measured rate gives the open loop its rate; a failed closed loop already fails the run.
    if (open && Number.isFinite(out.rps) && out.rps > 0) {
      out.open = await openSegment({ srv, keys, reset, verify, rps: out.rps, open })
      out.problems = serverProblems(srv.logPath) // both segments' lines
    }
    return out
  } finally {
    const code = await stopServer(srv)
    if (code !== 0 && code !== null) log(`  note: serve (${name}) exited ${code}; log tail:\n${readFileSync(srv.logPath, 'utf8').slice(-1000)}`)
  }
}

// ------------------------------------------------------------------ main

const COLS = 'sensor_id, value, "timestamp", device_timestamp, dedup_key, sequence, classification, reason_codes, transport'

/** One timed `psql \copy` of the CSV into `table` (the caller empties it first), verified against the expected rows. */
async function timedCopy(table, csvPath, expectedHash) {
  const c0 = cpuStat()
  const res = await run('psql', [...pgUrlForPsql(), '-X', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${table} (${COLS}) FROM '${csvPath}' WITH (FORMAT csv)`], { timeoutMs: TIMEOUT_MS })
  const steal = stealPct(c0, cpuStat())
  if (res.code !== 0) throw new Error(`psql \\copy into ${table} failed: ${res.stderr}`)
  const v = await pgVerify(table)
  return { ms: res.ms, rps: (N / res.ms) * 1000, stored: v.n, exact: v.n === N && v.d === N && v.h === expectedHash, steal }
}

/** "UNIQUE ux_sensor_readings_dedup (sensor_id, dedup_key)" from pg_indexes.indexdef. */
const shortDdl = (d) => d.replace(/^CREATE (UNIQUE )?INDEX (\S+) ON \S+ USING btree /, '$1$2 ')

const fmtCopy = (c) => `${fmtInt(N)} rows in ${(c.ms / 1000).toFixed(2)} s = ${fmtInt(c.rps)} rows/s  steal ${c.steal.toFixed(1)}%  stored ${c.stored}${c.exact ? '' : ' MISMATCH'}`

function fmtOpen(o) {
  const fail = o.failureCount ? `  failures ${JSON.stringify(o.failures)}` : ''
  const cap = o.capped ? ` (capped to ${OPEN_MAX_S} s of --open-packets ${fmtInt(OPEN)})` : ''
  return `${fmtInt(o.packets)} packets${cap} at ${fmtInt(o.rateWant)} readings/s wanted, ${fmtInt(o.rateGot)} achieved  p50 ${fmtMs(o.p50)} p99 ${fmtMs(o.p99)} p99.9 ${fmtMs(o.p999)} max ${fmtMs(o.pmax)}  send lag p99 ${fmtMs(o.lagP99, 2)} max ${fmtMs(o.lagMax, 2)}  steal ${o.steal.toFixed(1)}% other load ${o.otherCores.toFixed(2)} cores  stored==acked ${o.exact ? 'yes' : `NO (acked ${o.acked}, stored ${o.stored}, distinct ${o.distinct}, inserted ${o.inserted}, same rows ${o.hashOk})`}${fail}`
}

function fmtSeg(s) {
  const fail = s.failureCount ? `  failures ${JSON.stringify(s.failures)}` : ''
  return `${fmtInt(s.acked)} acked in ${(s.ms / 1000).toFixed(2)} s = ${fmtInt(s.rps)} readings/s  p50 ${fmtMs(s.p50)} p99 ${fmtMs(s.p99)} p99.9 ${fmtMs(s.p999)} max ${fmtMs(s.pmax)}  peak RSS ${fmtMB(s.rssPeakKB)}  CPU µs/reading server ${s.cpuServerUs.toFixed(1)}${s.cpuPgUs > 0.05 ? ` postgres ${s.cpuPgUs.toFixed(1)}` : ''} loadgen ${s.cpuLoadgenUs.toFixed(1)}  steal ${s.steal.toFixed(1)}% other load ${s.otherCores.toFixed(2)} cores  stored==acked ${s.exact ? 'yes' : `NO (stored ${s.stored}, distinct ${s.distinct}, inserted ${s.inserted}, same rows ${s.hashOk})`}${fail}`
}

async function main() {
  const t0 = performance.now()
  // A frozen copy of the build: others may rebuild dist/ while we run.
  await snapshotBuild(join(TMP, 'app'))
  const pgVersion = (await run('psql', [...pgUrlForPsql().slice(0, 6), '-d', admin.pathname.slice(1) || 'postgres', '-AtXc', 'SHOW server_version'], {})).stdout.trim()
  const machine = machineInfo({ pgVersion })
  log(`http bench: ${fmtInt(N)} readings (${N / PACKET} packets × ${PACKET}), ${DEVICES} devices × ${SENSORS} sensors, ${ROUNDS} rounds, concurrency ${CONC}, warm-up ${WARMUP} packets, ${flags.rules ? 'thresholds evaluated (--rules)' : 'clean path (no thresholds)'}, seed ${SEED}`)
  log(`scratch: database ${DB_NAME}, folder ${TMP}`)

  // Scratch database, production schema.
  const a = new pg.Client({ connectionString: admin.toString() })
  await a.connect()
  await a.query(`CREATE DATABASE ${DB_NAME}`)
  adminCreated = true
  await a.end()

  writeFileSync(join(TMP, 'registry.yaml'), applyYaml())
  const pgEnv = cleanEnv({ DATABASE_URL: DB_URL, RATE_LIMIT_ENABLED: '0', LOG_LEVEL: 'warn' })
  const sqliteDir = join(TMP, 'sqlite-service')
  const templateDir = join(TMP, 'sqlite-template')
  const sqliteEnv = cleanEnv({ INGEST_DATA_DIR: sqliteDir, RATE_LIMIT_ENABLED: '0', LOG_LEVEL: 'warn' })
  const templateEnv = cleanEnv({ INGEST_DATA_DIR: templateDir, LOG_LEVEL: 'warn' })
  // PostgreSQL and SQLite provisioning in parallel (2 cores; ~0.25 s per CLI call).
  const [pgReg, sqReg] = await Promise.all([provision('postgres', pgEnv), provision('sqlite', sqliteEnv), cli(['db', 'migrate', '--json'], { env: templateEnv, cwd: TMP })])
  const template = join(templateDir, 'ingest.db')
  {
    const db = new Database(template)
    db.pragma('wal_checkpoint(TRUNCATE)')
    db.close()
  }
  pgc = new pg.Client({ connectionString: DB_URL })
  await pgc.connect()
  const ddl = (await pgc.query(`SELECT indexdef FROM pg_indexes WHERE tablename = 'sensor_readings' ORDER BY indexname`)).rows.map((r) => r.indexdef)
  const noidxExtra = await noidxCreate()
  if (noidxExtra) log(`note: sensor_readings has ${noidxExtra} constraint(s)/trigger(s) that ${NOIDX} lacks: (a0) vs (a) is not the indexes alone`)

  // Data: measured rows in [now-3000 s, now-100 s], warm-up rows in [now-3500 s, now-3000 s), open-loop
  // rows in [now-100 s, now-10 s): each server sees device times that only move forward (warm-up ->
  // measured -> open), so the open block takes the same path as the measured one.
  const nowS = Math.floor(Date.now() / 1000)
  const stepUs = Math.max(1, Math.min(1000, Math.floor(2_900e6 / N)))
  const measured = generate({ packets: N / PACKET, t0us: (nowS - 3000) * 1e6, stepUs, seed: SEED })
  const warmStep = WARMUP > 0 ? Math.max(1, Math.min(1000, Math.floor(500e6 / (WARMUP * PACKET)))) : 1
  const warm = generate({ packets: WARMUP, t0us: (nowS - 3500) * 1e6, stepUs: warmStep, seed: SEED + 7919 })
  const openStep = OPEN > 0 ? Math.max(1, Math.min(1000, Math.floor(90e6 / (OPEN * PACKET)))) : 1
  const openData = generate({ packets: OPEN, t0us: (nowS - 100) * 1e6, stepUs: openStep, seed: SEED + 104_729 })
  const packetsFile = join(TMP, 'packets.tsv')
  writeFileSync(packetsFile, `${[...measured.lines, ...warm.lines, ...openData.lines].join('\n')}\n`)
  const ingestIso = new Date(nowS * 1000).toISOString()
  const openRows = rowsFor(openData.readings, pgReg.ids, ingestIso)
  const openHashes = new Map() // packets -> hash of the first packets × PACKET open rows (capped runs send a prefix)
  const open = {
    from: N / PACKET + WARMUP,
    packets: OPEN,
    hashOf: (n) => openHashes.get(n) ?? openHashes.set(n, keysHash(openRows.slice(0, n * PACKET).map((r) => [r.sid, r.dedup]))).get(n),
  }
  const pgRows = rowsFor(measured.readings, pgReg.ids, ingestIso)
  const sqRows = rowsFor(measured.readings, sqReg.ids, ingestIso)
  const csvPath = join(TMP, 'readings.csv')
  const reasonsCsv = `"${REASONS.replaceAll('"', '""')}"`
  writeFileSync(csvPath, pgRows.map((r) => `${r.sid},${r.value},${r.ingestIso},${r.devIso},${r.dedup},,${CLASS},${reasonsCsv},http`).join('\n') + '\n')
  const sqParams = sqRows.map((r) => [r.sid, r.value, r.ingestIso, r.devIso, r.dedup, null, CLASS, REASONS, 'http'])
  const pgHash = keysHash(pgRows.map((r) => [r.sid, r.dedup]))
  const sqHash = keysHash(sqRows.map((r) => [r.sid, r.dedup]))
  const csvMB = statSync(csvPath).size / 1024 ** 2
  ;({ child: loadgen } = await startLoadgen(packetsFile))
  log(`setup ${((performance.now() - t0) / 1000).toFixed(1)} s (CSV ${csvMB.toFixed(1)} MB, packets ${(statSync(packetsFile).size / 1024 ** 2).toFixed(1)} MB)`)

  const rounds = []
  let exactAll = true
  for (let r = 1; r <= ROUNDS; r++) {
    log(`\nround ${r}/${ROUNDS}`)
    const round = { r }
    const profiling = flags['cpu-prof'] && r === 1

    // (a) psql \copy; (a0) the same into the table without secondary indexes (context)
    await pgReset()
    round.copy = await timedCopy('sensor_readings', csvPath, pgHash)
    log(`  (a) psql \\copy          ${fmtCopy(round.copy)}`)
    await pgc.query(`TRUNCATE ${NOIDX}`)
    await pgc.query('CHECKPOINT')
    round.copyNoidx = await timedCopy(NOIDX, csvPath, pgHash)
    // Emptied at once: its rows and dirty pages are not part of what follows.
    await pgc.query(`TRUNCATE ${NOIDX}`)
    log(`  (a0) \\copy, PK only     ${fmtCopy(round.copyNoidx)}  (a)/(a0) = ${(round.copy.rps / round.copyNoidx.rps).toFixed(3)}×`)

    // (b) HTTP -> PostgreSQL
    round.pg = await serviceSegment({
      name: `pg-${r}`,
      env: pgEnv,
      keys: pgReg.keys,
      reset: pgReset,
      verify: pgVerify,
      expectedHash: pgHash,
      profileDir: profiling ? join(flags['cpu-prof'], 'pg') : undefined,
      open: OPEN > 0 ? open : undefined,
    })
    round.pgRatio = round.pg.rps / round.copy.rps
    log(`  (b) HTTP -> PostgreSQL   ${fmtSeg(round.pg)}`)
    log(`      ratio (b)/(a) = ${round.pgRatio.toFixed(3)}×`)
    if (round.pg.open) {
      log(`      open loop            ${fmtOpen(round.pg.open)}`)
      for (const line of fmtDeltas(round.pg.open.tail)) log(`        ${line}`)
    }

    // (c) HTTP -> SQLite, then the two plain loops
    const sqlitePath = join(sqliteDir, 'ingest.db')
    round.sq = await serviceSegment({
      name: `sqlite-${r}`,
      env: sqliteEnv,
      keys: sqReg.keys,
      reset: async () => sqliteReset(sqlitePath),
      verify: async () => sqliteVerify(sqlitePath),
      expectedHash: sqHash,
      profileDir: profiling ? join(flags['cpu-prof'], 'sqlite') : undefined,
    })
    log(`  (c) HTTP -> SQLite       ${fmtSeg(round.sq)}`)
    round.perPacket = plainSqlite(template, sqParams, PACKET, 'per-packet')
    log(`      plain-per-packet     ${fmtInt(N)} rows in ${(round.perPacket.ms / 1000).toFixed(2)} s = ${fmtInt(round.perPacket.rps)} rows/s (one durable transaction per ${PACKET}-row packet)  other load ${round.perPacket.otherCores.toFixed(2)} cores  stored ${round.perPacket.stored}`)
    round.bulk = plainSqlite(template, sqParams, BULK, 'bulk')
    log(`      plain-bulk           ${fmtInt(N)} rows in ${(round.bulk.ms / 1000).toFixed(2)} s = ${fmtInt(round.bulk.rps)} rows/s (one transaction per ${fmtInt(BULK)} rows: the physical ceiling)  other load ${round.bulk.otherCores.toFixed(2)} cores  stored ${round.bulk.stored}`)
    round.sqRatio = round.sq.rps / round.perPacket.rps
    round.sqBulkRatio = round.sq.rps / round.bulk.rps
    log(`      ratio (c)/plain-per-packet = ${round.sqRatio.toFixed(3)}× (gated)   (c)/plain-bulk = ${round.sqBulkRatio.toFixed(3)}× (context)`)

    for (const s of [round.pg, round.pg.open, round.sq].filter(Boolean)) {
      if (s.problems?.count) log(`      server logged ${s.problems.count} warning/error lines; first: ${s.problems.first}`)
      if (s.samples.length) log(`      first non-200 / rejected answers: ${s.samples.join(' | ')}`)
      if (s.otherClass) log(`      note: ${s.otherClass} stored rows are not classified ${CLASS}`)
    }
    round.openExact = OPEN === 0 || round.pg.open?.exact === true
    const exact = round.copy.exact && round.copyNoidx.exact && round.pg.exact && round.openExact && round.sq.exact && round.perPacket.stored === N && round.bulk.stored === N
    exactAll &&= exact
    rounds.push(round)

    if (profiling) {
      for (const which of ['pg', 'sqlite']) {
        const dir = join(flags['cpu-prof'], which)
        const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)).sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)
        if (files[0]) log(`\n--- CPU profile of the ${which} server, round 1 ---\n${summarizeProfile(files[0], 30)}\n`)
        else log(`  no .cpuprofile written in ${dir}`)
      }
    }
  }

  await pgc.query(`DROP TABLE ${NOIDX}`)

  // ---------------------------------------------------------------- summary
  const col = (f) => rounds.map(f)
  const pgRatios = col((r) => r.pgRatio)
  const sqRatios = col((r) => r.sqRatio)
  const sqBulkRatios = col((r) => r.sqBulkRatio)
  const pgP99 = median(col((r) => r.pg.p99))
  const pgP50 = median(col((r) => r.pg.p50))
  const pgRss = max(col((r) => r.pg.rssPeakKB)) / 1024
  const sqRss = max(col((r) => r.sq.rssPeakKB)) / 1024
  const copyMed = median(col((r) => r.copy.rps))
  const noidxMed = median(col((r) => r.copyNoidx.rps))
  const copyVsNoidx = median(col((r) => r.copy.rps / r.copyNoidx.rps))
  // Little's law: a closed loop keeps CONC × PACKET readings in flight, so its mean latency is that over
  // the committed rate; a p99 at the target needs at least this rate, whatever the design.
  const inFlight = CONC * PACKET
  const littleRate = inFlight / (T.p99Ms / 1000)
  const little = `Little's law: ${fmtInt(inFlight)} readings in flight (${CONC} × ${PACKET}) ÷ ${T.p99Ms} ms = at least ${fmtInt(littleRate)} readings/s committed to meet it, vs psql \\copy ${fmtInt(copyMed)} rows/s this run ((a0) PK only ${fmtInt(noidxMed)})`
  const opens = rounds.map((r) => r.pg.open).filter(Boolean)
  const openPct = `${Math.round(OPEN_FRACTION * 100)}%`
  const openP50 = median(opens.map((o) => o.p50))
  const openP99 = median(opens.map((o) => o.p99))
  const openP999 = median(opens.map((o) => o.p999))
  const openGates =
    OPEN === 0
      ? []
      : [
          { gate: `HTTP -> PostgreSQL open loop at ${openPct} of max: p99 (median of rounds)`, measured: `${fmtMs(openP99)} (p50 ${fmtMs(openP50)})`, want: `≤ ${T.openP99Ms} ms target (floor ≤ ${T.openP99Floor} ms)`, pass: openP99 <= T.openP99Floor, note: openP99 <= T.openP99Ms ? 'target met' : `above the ${T.openP99Ms} ms target` },
          { gate: `HTTP -> PostgreSQL open loop at ${openPct} of max: p99.9 (median of rounds)`, measured: fmtMs(openP999), want: `≤ ${T.openP999Ms} ms`, pass: openP999 <= T.openP999Ms },
        ]
  const gates = [
    { gate: 'HTTP -> PostgreSQL ÷ psql \\copy (median of rounds)', measured: ratioSpan(pgRatios), want: `≥ ${T.pgFloor}× floor (target ${T.pgTarget}×)`, pass: median(pgRatios) >= T.pgFloor, note: median(pgRatios) >= T.pgTarget ? 'target met' : 'below the 0.5× target' },
    { gate: 'HTTP -> PostgreSQL p99 at c=' + CONC + ' (median of rounds)', measured: `${fmtMs(pgP99)} (p50 ${fmtMs(pgP50)})`, want: `≤ ${T.p99Ms} ms`, pass: pgP99 <= T.p99Ms, note: little },
    ...openGates,
    { gate: 'serve (PostgreSQL) peak RSS (max of rounds)', measured: `${pgRss.toFixed(0)} MB`, want: `≤ ${T.rssMB} MB`, pass: pgRss <= T.rssMB },
    { gate: 'HTTP -> SQLite ÷ plain-per-packet (median of rounds)', measured: ratioSpan(sqRatios), want: `≥ ${T.sqliteFloor}×`, pass: median(sqRatios) >= T.sqliteFloor, note: `vs plain-bulk ${ratioSpan(sqBulkRatios)} (context, not gated)` },
    { gate: 'serve (SQLite) peak RSS (max of rounds)', measured: `${sqRss.toFixed(0)} MB`, want: `≤ ${T.rssMB} MB`, pass: sqRss <= T.rssMB },
    { gate: 'stored == acked, no duplicates, same rows (every segment)', measured: exactAll ? 'yes' : 'NO', want: 'yes', pass: exactAll },
  ]
  const verdict = (g) => (g.pass ? 'PASS' : 'FAIL')

  log('\nsummary (ratios are per round, same run; absolute rows/s are context only)')
  log(`  PostgreSQL: (b)/(a) ${ratioSpan(pgRatios, 3)}  (a) median ${fmtInt(copyMed)} rows/s, (b) median ${fmtInt(median(col((r) => r.pg.rps)))} readings/s`)
  log(`              (a0) \\copy, PK only: median ${fmtInt(noidxMed)} rows/s; (a)/(a0) ${copyVsNoidx.toFixed(3)}× (the secondary indexes set (a); context, not gated)`)
  if (opens.length) log(`              open loop at ${openPct} of (b): p50 ${fmtMs(openP50)} p99 ${fmtMs(openP99)} p99.9 ${fmtMs(openP999)} (medians), achieved ${opens.map((o) => fmtInt(o.rateGot)).join(' / ')} readings/s`)
  log(`  SQLite:     (c)/plain-per-packet ${ratioSpan(sqRatios, 3)} [the gate], (c)/plain-bulk ${ratioSpan(sqBulkRatios, 3)} [ceiling, context]`)
  log(`              (c) median ${fmtInt(median(col((r) => r.sq.rps)))} readings/s, plain-per-packet ${fmtInt(median(col((r) => r.perPacket.rps)))}, plain-bulk ${fmtInt(median(col((r) => r.bulk.rps)))} rows/s`)
  for (const g of gates) log(`  ${verdict(g).padEnd(4)}  ${g.gate}: ${g.measured}  (want ${g.want})${g.note ? `  ${g.note}` : ''}`)
  const totalS = (performance.now() - t0) / 1000
  log(`total ${totalS.toFixed(0)} s`)

  if (flags['cpu-prof']) log('\n--cpu-prof run: profiled servers perturb the figures, so nothing is appended to bench/RESULTS.md')
  else if (!flags['no-append']) {
    const secondary = ddl.filter((d) => !/_pkey /.test(d)).map(shortDdl)
    const md = [
      `## http: HTTP packets -> PostgreSQL and SQLite (${machine.date})`,
      '',
      ...machineLines(machine),
      `- data: ${fmtInt(N)} readings per segment = ${N / PACKET} packets × ${PACKET}, ${DEVICES} devices × ${SENSORS} sensors (humidity/voltage), seed ${SEED}, each reading a unique sensor_ts; ${flags.rules ? '**--rules**: an out_of_range threshold on every sensor, never violated' : 'no thresholds, no delta rule (clean path)'}`,
      `- load: closed loop, ${CONC} keep-alive connections, ack = HTTP 200; ${WARMUP} warm-up packets of other rows per server start, then TRUNCATE + CHECKPOINT; ${ROUNDS} rounds a → a0 → b → c; total ${totalS.toFixed(0)} s`,
      OPEN > 0
        ? `- open loop (PostgreSQL): after each (b), same server, TRUNCATE + CHECKPOINT, then ${fmtInt(OPEN)} packets of other rows (at most ${OPEN_MAX_S} s) at a fixed ${OPEN_FRACTION}× that round's (b) readings/s, at most ${CONC} keep-alive connections; latency = ack − scheduled send time (waiting for a free connection counts: no coordinated omission)`
        : '- open loop: off (--open-packets 0)',
      `- service env: production defaults + RATE_LIMIT_ENABLED=0, LOG_LEVEL=warn${flags['node-options'] ? `, NODE_OPTIONS=${flags['node-options']}` : ''}${flags['flush-concurrency'] ? `, BATCH_FLUSH_CONCURRENCY=${flags['flush-concurrency']}` : ''}${flags['batch-max'] ? `, BATCH_MAX_SIZE=${flags['batch-max']}` : ''}; sensor_readings indexes: ${ddl.map((d) => `\`${shortDdl(d)}\``).join(', ')}`,
      '',
      '**PostgreSQL**: (a) `psql \\copy` of the same rows vs (b) `ingest serve`',
      '',
      '| round | (a) \\copy rows/s | (a0) \\copy, PK only rows/s | (b) HTTP readings/s | (b)/(a) | p50 | p99 | p99.9 | open loop readings/s wanted / achieved | open p50 | open p99 | open p99.9 | peak RSS | CPU µs/reading server / postgres / loadgen | other load (cores) | non-200 (closed + open) | stored==acked |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rounds.map((r) => {
        const o = r.pg.open
        const openCols = o ? `${fmtInt(o.rateWant)} / ${fmtInt(o.rateGot)} | ${fmtMs(o.p50)} | ${fmtMs(o.p99)} | ${fmtMs(o.p999)}` : 'n/a | n/a | n/a | n/a'
        return `| ${r.r} | ${fmtInt(r.copy.rps)} | ${fmtInt(r.copyNoidx.rps)} | ${fmtInt(r.pg.rps)} | ${r.pgRatio.toFixed(3)}× | ${fmtMs(r.pg.p50)} | ${fmtMs(r.pg.p99)} | ${fmtMs(r.pg.p999)} | ${openCols} | ${fmtMB(r.pg.rssPeakKB)} | ${r.pg.cpuServerUs.toFixed(1)} / ${r.pg.cpuPgUs.toFixed(1)} / ${r.pg.cpuLoadgenUs.toFixed(1)} | ${r.pg.otherCores.toFixed(2)} | ${r.pg.failureCount + (o?.failureCount ?? 0)} | ${r.copy.exact && r.copyNoidx.exact && r.pg.exact && r.openExact ? 'yes' : '**NO**'} |`
      }),
      '',
      `(a0) is the same \\copy into \`${NOIDX}\` (LIKE sensor_readings, only the primary key on id): (a) runs at ${copyVsNoidx.toFixed(2)}× of it (median of rounds), so the production table's ${secondary.length} secondary indexes (${secondary.map((d) => `\`${d}\``).join(', ')}) are what sets (a)${noidxExtra ? ` (note: ${noidxExtra} constraint(s)/trigger(s) of sensor_readings are not on the scratch table either)` : ''}.`,
      '',
      'Open-loop tail breakdown (the server\'s own histograms over each open-loop segment; bucket bounds):',
      '',
      ...rounds.flatMap((r) => (r.pg.open ? [`- round ${r.r}: ${fmtDeltas(r.pg.open.tail).join('; ')}`] : [])),
      '',
      '**SQLite**: (c) `ingest serve` on the embedded database vs plain better-sqlite3 loops on a fresh copy of the same schema (WAL, synchronous=FULL). The gate is vs **plain-per-packet** (one durable transaction per packet); plain-bulk (10 000 rows per transaction) is the physical ceiling, for context.',
      '',
      '| round | (c) HTTP readings/s | plain-per-packet rows/s | plain-bulk rows/s | (c)/per-packet | (c)/bulk | p50 | p99 | peak RSS | CPU µs/reading server / loadgen | other load (cores) | non-200 | stored==acked |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|',
      ...rounds.map(
        (r) =>
          `| ${r.r} | ${fmtInt(r.sq.rps)} | ${fmtInt(r.perPacket.rps)} | ${fmtInt(r.bulk.rps)} | ${r.sqRatio.toFixed(3)}× | ${r.sqBulkRatio.toFixed(3)}× | ${fmtMs(r.sq.p50)} | ${fmtMs(r.sq.p99)} | ${fmtMB(r.sq.rssPeakKB)} | ${r.sq.cpuServerUs.toFixed(1)} / ${r.sq.cpuLoadgenUs.toFixed(1)} | ${r.sq.otherCores.toFixed(2)} | ${r.sq.failureCount} | ${r.sq.exact && r.perPacket.stored === N && r.bulk.stored === N ? 'yes' : '**NO**'} |`,
      ),
      '',
      ...gatesMarkdown(gates),
    ].join('\n')
    appendResults(md)
    log('appended to bench/RESULTS.md')
  }
  if (!exactAll) {
    log('FAIL: stored != acked (or duplicates / different rows) in at least one segment')
    return 1
  }
  if (flags.strict && gates.some((g) => !g.pass)) return 1
  return 0
}

let code = 1
try {
  code = await main()
} catch (err) {
  console.error(`http bench failed: ${err?.stack ?? err}`)
  code = 1
} finally {
  await cleanup()
}
process.exit(code)
