#!/usr/bin/env node
// @bench CSV backfill: `ingest csv` (built CLI) -> PostgreSQL vs psql \copy of the same rows (data_points and sensor_readings, interleaved rounds); --rss-mb for the 1 GB RSS check
//
// One run, same rows, same table, interleaved per round (performance.md §0 c, §4.2 C; issue 13):
//   (a) `psql \copy` of the good rows of a generated long-format universal file (as the service stores
//       them) into data_points: the ceiling;
//   (b) `node bin/run.js csv FILE --domain D --source-id S` on the same file into the same table;
//   (c) `psql \copy` of the good rows of a generated IoT file (`sensor_id,timestamp,value`) into
//       sensor_readings (sensors registered with `ingest apply`, like bench/http.mjs);
//   (d) `node bin/run.js csv FILE` (IoT) on that file.
// Both are whole processes timed from spawn to exit (the CLI's start-up counts, like psql's). Every file
// holds one bad row (non-numeric value) per --bad-every rows: the CLI rejects them (--allow-rejects) and
// \copy never sees them. Before every segment: TRUNCATE of the written tables + csv_import_jobs, CHECKPOINT.
// Exactness every segment: stored == distinct keys == good rows of the file, and the stored key set equals
// the generated one (md5 over sorted keys). Peak RSS of the csv process: VmHWM polled every 20 ms.
//
// --rss-mb M: instead of the rounds, one ~M MB universal file streamed to disk, loaded once by `ingest csv`
// into PostgreSQL; records the process's peak RSS (gate < 300 MB) and stored == good rows.
import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { createWriteStream, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import pg from 'pg'

import {
  appendResults,
  benchFlags,
  cleanEnv,
  cli,
  cpuStat,
  currentBin,
  fmtInt,
  fmtMB,
  gatesMarkdown,
  loopbackAdminUrl,
  machineInfo,
  machineLines,
  max,
  median,
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
} from './lib/common.mjs'
import { summarizeProfile } from './lib/cpuprofile-summary.mjs'

const USAGE = `npm run bench -- csv [flags]
  --rows N             data rows per generated file, bad rows included (default 1000000)
  --rounds R           interleaved rounds (a) (b) (c) (d) (default 3)
  --bad-every K        one bad row (non-numeric value) every K rows (default 1000; 0: none)
  --streams S          universal streams of the one source (default 20)
  --devices D          IoT devices (default 10)
  --sensors S          sensors per device (default 10)
  --only universal|iot run one of the two pairs (default both)
  --seed X             data seed (default 1)
  --timeout SEC        deadline of one segment (default 600; at least 3 h for --rss-mb)
  --rss-mb M           the RSS check instead: one ~M MB file loaded once (e.g. 1024; universal, or IoT with --only iot)
  --cpu-prof DIR       run every csv process under node --cpu-prof into DIR, print a summary (no RESULTS.md entry)
  --node-options STR   NODE_OPTIONS of the csv process; noted in the results
  --cli-env K=V,...    more environment of the csv process (e.g. BATCH_MAX_SIZE=20000); noted in the results
  --admin-url URL      PostgreSQL admin URL (default postgres://postgres@127.0.0.1:5432/postgres; loopback only)
  --no-append          do not append to bench/RESULTS.md
  --strict             exit 1 when a performance gate FAILs too (default: only exactness failures exit 1)
  --keep               keep the scratch database and temp folder`

const { flags, int } = benchFlags(
  {
    rows: { type: 'string', default: '1000000' },
    rounds: { type: 'string', default: '3' },
    'bad-every': { type: 'string', default: '1000' },
    streams: { type: 'string', default: '20' },
    devices: { type: 'string', default: '10' },
    sensors: { type: 'string', default: '10' },
    only: { type: 'string' },
    seed: { type: 'string', default: '1' },
    timeout: { type: 'string', default: '600' },
    'rss-mb': { type: 'string' },
    'cpu-prof': { type: 'string' },
    'node-options': { type: 'string' },
    'cli-env': { type: 'string' },
  },
  USAGE,
)
const N = int('rows', 1, 50_000_000)
const ROUNDS = int('rounds', 1, 20)
const BAD_EVERY = int('bad-every', 0, 1_000_000_000)
const STREAMS = int('streams', 1, 10_000)
const DEVICES = int('devices', 1, 1000)
const SENSORS = int('sensors', 1, 1000)
const SEED = int('seed', 0, 2 ** 31)
const TIMEOUT_MS = int('timeout', 5, 7200) * 1000
const RSS_MB = flags['rss-mb'] !== undefined ? int('rss-mb', 1, 100_000) : undefined
const PROFILE_DIR = flags['cpu-prof'] ? resolvePath(flags['cpu-prof']) : undefined
if (flags.only !== undefined && !['universal', 'iot'].includes(flags.only)) {
  console.error('--only must be universal or iot')
  process.exit(2)
}
const CLI_ENV = Object.fromEntries(
  (flags['cli-env'] ?? '')
    .split(',')
    .filter(Boolean)
    .map((kv) => {
      const i = kv.indexOf('=')
      if (i <= 0) {
        console.error(`--cli-env: ${JSON.stringify(kv)} is not K=V`)
        process.exit(2)
      }
      return [kv.slice(0, i), kv.slice(i + 1)]
    }),
)
const envNote = () => [flags['node-options'] ? `NODE_OPTIONS=${flags['node-options']}` : '', ...Object.entries(CLI_ENV).map(([k, v]) => `${k}=${v}`)].filter(Boolean).join(', ')
const DO_UNIVERSAL = flags.only !== 'iot'
const DO_IOT = flags.only !== 'universal'

// Issue 13 / performance.md §0 c: CSV backfill ≥ 0.25× the same run's \copy (floor), 0.4× target (the issue's).
const T = { floor: 0.25, target: 0.4, rssMB: 300 }

const admin = loopbackAdminUrl(flags['admin-url'])
const db = await scratchDatabase(admin, `ingest_bench_csv_${process.pid}`)
const TMP = mkdtempSync(join(tmpdir(), `ingest-bench-csv-${process.pid}-`))
const children = new Set()
let pgc

async function cleanup() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await pgc?.end().catch(() => {})
  if (!flags.keep) {
    await db.drop()
    rmSync(TMP, { recursive: true, force: true })
  } else console.log(`kept: database ${db.name}, folder ${TMP}`)
}

const log = (...a) => console.log(...a)
const psqlConn = () => ['-h', admin.hostname.replace(/^\[|\]$/g, ''), '-p', admin.port || '5432', '-U', decodeURIComponent(admin.username || 'postgres'), '-d', db.name]
const isBad = (k) => BAD_EVERY > 0 && k % BAD_EVERY === BAD_EVERY - 1
const md5Sorted = (keys) => {
  keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  return createHash('md5').update(keys.join(',')).digest('hex')
}

// ------------------------------------------------------------------ data

const DOMAIN = 'telemetry' // no built-in constraints: every point is stored `normal`
const SOURCE = 'bench-csv'
const streamId = (i) => `s${String(i).padStart(3, '0')}`

/** Writes lines to a file through a stream, respecting back-pressure (memory flat for the 1 GB file). */
async function writeLines(path, produce) {
  const out = createWriteStream(path, { highWaterMark: 1 << 20 })
  let buf = ''
  for (const line of produce()) {
    buf += line
    if (buf.length >= 1 << 20) {
      if (!out.write(buf)) await new Promise((r) => out.once('drain', r))
      buf = ''
    }
  }
  await new Promise((resolve, reject) => out.end(buf, (err) => (err ? reject(err) : resolve())))
}

/**
 * The universal file: `stream_id,timestamp,value`, row k on stream k % S at t0 + k s (unique per row),
 * seeded values; and the \copy file of its good rows in data_points' columns. Returns the good rows'
 * count and the md5 of their keys (`domain:source:stream:epoch_ms:sequence`).
 */
async function universalFiles(rows, t0, { copyPath } = {}) {
  const rand = rng(SEED)
  const csvPath = join(TMP, `universal-${rows}.csv`)
  const keys = copyPath ? [] : null
  const copyLines = copyPath ? [] : null
  const ingestIso = new Date().toISOString()
  let good = 0
  await writeLines(csvPath, function* () {
    yield 'stream_id,timestamp,value\n'
    for (let k = 0; k < rows; k++) {
      const s = streamId(k % STREAMS)
      const ms = t0 + k * 1000
      const iso = new Date(ms).toISOString()
      const value = Math.round(rand() * 1_000_000) / 1000
      if (isBad(k)) {
        yield `${s},${iso},n/a\n`
        continue
      }
      good++
      yield `${s},${iso},${value}\n`
      if (copyLines) {
        // The line number of row k is k + 2 (header first): the csv_line metadata the service stores.
        copyLines.push(`${s},${SOURCE},${DOMAIN},${value},${iso},normal,-1,"{""csv_line"": ${k + 2}}",${ingestIso}\n`)
        keys.push(`${DOMAIN}:${SOURCE}:${s}:${ms}:-1`)
      }
    }
  })
  if (copyPath) {
    await writeLines(copyPath, function* () {
      yield* copyLines
    })
  }
  return { csvPath, good, hash: keys ? md5Sorted(keys) : null }
}

const hex12 = (n) => n.toString(16).padStart(12, '0')
const deviceUuid = (d) => `00000000-0000-4000-8000-${hex12(d + 1)}`
const sensorUuid = (d, s) => `10000000-0000-4000-8000-${hex12(d * SENSORS + s + 1)}`

function applyYaml() {
  const lines = ['devices:']
  for (let d = 0; d < DEVICES; d++) {
    lines.push(`  - uuid: ${deviceUuid(d)}`, `    name: bench-csv-${d + 1}`, '    sensors:')
    // min_readings_for_normal 0: no warm-up classification; no thresholds.
    for (let s = 0; s < SENSORS; s++) lines.push(`      - { uuid: ${sensorUuid(d, s)}, type: humidity, min_readings_for_normal: 0 }`)
  }
  return `${lines.join('\n')}\n`
}

/** The IoT file (`sensor_id,timestamp,value`, row k on sensor k % n at t0 + k ms) and the \copy file of its good rows. */
async function iotFiles(rows, t0, ids, copyPath, classification = '', reasons = '') {
  const reasonsCell = `"${reasons.replaceAll('"', '""')}"`
  const rand = rng(SEED + 17)
  const csvPath = join(TMP, `iot-${rows}.csv`)
  const keys = copyPath ? [] : null
  const copyLines = copyPath ? [] : null
  const ingestIso = new Date().toISOString()
  let good = 0
  await writeLines(csvPath, function* () {
    yield 'sensor_id,timestamp,value\n'
    for (let k = 0; k < rows; k++) {
      const sid = ids[k % ids.length]
      const ms = t0 + k
      const iso = new Date(ms).toISOString()
      const value = Math.round((30 + 40 * rand()) * 1000) / 1000
      if (isBad(k)) {
        yield `${sid},${iso},n/a\n`
        continue
      }
      good++
      yield `${sid},${iso},${value}\n`
      if (!copyLines) continue
      const dedup = `${sid}:${(ms / 1000).toFixed(6)}:${value.toFixed(6)}`
      copyLines.push(`${sid},${value},${ingestIso},${iso},${dedup},,${classification},${reasonsCell},csv\n`)
      keys.push(`${sid}:${dedup}`)
    }
  })
  if (copyPath) {
    await writeLines(copyPath, function* () {
      yield* copyLines
    })
  }
  return { csvPath, good, hash: keys ? md5Sorted(keys) : null }
}

// ------------------------------------------------------------------ PostgreSQL

const TABLES = {
  universal: 'data_points, stream_rule_state, stream_alerts, ingestion_audit_log, csv_import_jobs',
  iot: 'sensor_readings, sensor_readings_latest, sensor_rule_state, alert_notifications, alerts, ml_events, csv_import_jobs',
}
const COPY_COLS = {
  universal: 'stream_id, source_id, domain, value, "timestamp", classification, sequence, domain_metadata, ingested_at',
  iot: 'sensor_id, value, "timestamp", device_timestamp, dedup_key, sequence, classification, reason_codes, transport',
}
const VERIFY = {
  universal: `WITH k AS (SELECT domain || ':' || source_id || ':' || stream_id || ':' || (extract(epoch FROM "timestamp") * 1000)::bigint || ':' || sequence AS key FROM data_points)
    SELECT count(*)::int AS n, count(DISTINCT key)::int AS d, md5(string_agg(key, ',' ORDER BY key COLLATE "C")) AS h FROM k`,
  iot: `WITH k AS (SELECT sensor_id::text || ':' || dedup_key AS key FROM sensor_readings)
    SELECT count(*)::int AS n, count(DISTINCT key)::int AS d, md5(string_agg(key, ',' ORDER BY key COLLATE "C")) AS h FROM k`,
}

async function reset(kind) {
  await pgc.query(`TRUNCATE ${TABLES[kind]}`)
  await pgc.query('CHECKPOINT')
  const s = await run('sync', [], { timeoutMs: 120_000 })
  if (s.code !== 0) log(`  note: sync exited ${s.code}`)
}

async function verify(kind, { hash = true } = {}) {
  if (!hash) return (await pgc.query(`SELECT count(*)::int AS n FROM ${kind === 'iot' ? 'sensor_readings' : 'data_points'}`)).rows[0]
  return (await pgc.query(VERIFY[kind])).rows[0]
}

/** One timed `psql \copy` (the caller reset the tables), verified. */
async function timedCopy(kind, copyPath, expect) {
  const c0 = cpuStat()
  const table = kind === 'iot' ? 'sensor_readings' : 'data_points'
  const res = await run('psql', [...psqlConn(), '-X', '-v', 'ON_ERROR_STOP=1', '-c', `\\copy ${table} (${COPY_COLS[kind]}) FROM '${copyPath}' WITH (FORMAT csv)`], { timeoutMs: TIMEOUT_MS })
  const steal = stealPct(c0, cpuStat())
  if (res.code !== 0) throw new Error(`psql \\copy into ${table} failed: ${res.stderr}`)
  const v = await verify(kind)
  return { ms: res.ms, rps: (expect.good / res.ms) * 1000, stored: v.n, exact: v.n === expect.good && v.d === expect.good && v.h === expect.hash, steal }
}

/** One timed `ingest csv` process: wall time spawn -> exit, peak RSS (VmHWM polled), CPU, its --json summary. */
async function timedCsv(args, env, { profileDir, timeoutMs = TIMEOUT_MS } = {}) {
  const nodeArgs = profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []
  const c0 = cpuStat()
  const t0 = performance.now()
  const child = spawn(process.execPath, [...nodeArgs, currentBin(), 'csv', ...args, '--json', '--allow-rejects'], { env, cwd: TMP, stdio: ['ignore', 'pipe', 'pipe'] })
  children.add(child)
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
  let hwm = 0
  let cpuMs = 0
  const sample = () => {
    const m = procMem(child.pid)
    if (m.hwm > hwm) hwm = m.hwm
    const c = procCpuMs(child.pid)
    if (c > cpuMs) cpuMs = c
  }
  const sampler = setInterval(sample, 20)
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  const code = await new Promise((r) => child.once('exit', (c, sig) => r(c ?? sig)))
  const ms = performance.now() - t0
  clearInterval(sampler)
  clearTimeout(timer)
  children.delete(child)
  const steal = stealPct(c0, cpuStat())
  if (code !== 0) throw new Error(`ingest csv ${args.join(' ')} exited ${code}:\n${stderr.slice(-2000)}\n${stdout.slice(-1000)}`)
  let summary
  try {
    summary = JSON.parse(stdout)
  } catch {
    throw new Error(`ingest csv --json: stdout is not JSON:\n${stdout.slice(0, 500)}`)
  }
  return { ms, hwmKB: hwm, cpuMs, steal, summary }
}

async function csvSegment(kind, csvArgs, env, expect, profileDir) {
  const t = await timedCsv(csvArgs, env, { profileDir })
  const v = await verify(kind)
  const s = t.summary
  const exact = v.n === expect.good && v.d === expect.good && v.h === expect.hash && s.stored === expect.good && s.rejected === expect.rows - expect.good && s.duplicates === 0
  return { ...t, rps: (expect.good / t.ms) * 1000, importRps: s.seconds > 0 ? expect.good / s.seconds : NaN, stored: v.n, distinct: v.d, hashOk: v.h === expect.hash, exact, cpuNodeUs: (t.cpuMs * 1000) / expect.good }
}

function printProfile(dir) {
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)).sort((x, y) => statSync(y).mtimeMs - statSync(x).mtimeMs)
  if (files[0]) log(`\n--- CPU profile of the csv process ---\n${summarizeProfile(files[0], 30)}\n`)
  else log(`  no .cpuprofile written in ${dir}`)
}

// ------------------------------------------------------------------ main

const fmtCopy = (c) => `${fmtInt(c.rps)} rows/s (${(c.ms / 1000).toFixed(2)} s)  steal ${c.steal.toFixed(1)}%  stored ${fmtInt(c.stored)}${c.exact ? '' : ' MISMATCH'}`
const fmtCsv = (s) =>
  `${fmtInt(s.rps)} rows/s (${(s.ms / 1000).toFixed(2)} s; import alone ${fmtInt(s.importRps)} rows/s)  peak RSS ${fmtMB(s.hwmKB)}  CPU µs/row node ${s.cpuNodeUs.toFixed(1)}  steal ${s.steal.toFixed(1)}%  stored ${fmtInt(s.stored)} rejected ${fmtInt(s.summary.rejected)}${s.exact ? '' : ` MISMATCH (distinct ${s.distinct}, same keys ${s.hashOk}, summary stored ${s.summary.stored} duplicates ${s.summary.duplicates})`}`

async function setup() {
  await snapshotBuild(join(TMP, 'app'))
  const pgVersion = (await run('psql', [...psqlConn().slice(0, -2), '-d', admin.pathname.slice(1) || 'postgres', '-AtXc', 'SHOW server_version'], {})).stdout.trim()
  await db.create()
  const env = cleanEnv({ DATABASE_URL: db.url, LOG_LEVEL: 'warn', ...(flags['node-options'] ? { NODE_OPTIONS: flags['node-options'] } : {}), ...CLI_ENV })
  await cli(['db', 'migrate', '--json'], { env, cwd: TMP })
  pgc = new pg.Client({ connectionString: db.url })
  await pgc.connect()
  return { env, machine: machineInfo({ pgVersion }) }
}

/** `ingest apply` of DEVICES × SENSORS sensors; their ids. */
async function registerSensors(env) {
  writeFileSync(join(TMP, 'registry.yaml'), applyYaml())
  const applied = await cli(['apply', join(TMP, 'registry.yaml'), '--json'], { env, cwd: TMP })
  const ids = applied.devices.flatMap((d) => d.sensors.map((s) => s.id))
  if (ids.length !== DEVICES * SENSORS) throw new Error(`apply registered ${ids.length} sensors, expected ${DEVICES * SENSORS}`)
  return ids
}

async function rssMain() {
  const t0 = performance.now()
  const { env, machine } = await setup()
  const iot = flags.only === 'iot'
  const rowBytes = iot ? 35 : 36 // "s007,2026-11-06T12:34:56.000Z,123.456\n", "42,2026-11-06T12:34:56.000Z,51.123\n"
  const rows = Math.ceil((RSS_MB * 1024 * 1024) / rowBytes)
  const kind = iot ? 'iot' : 'universal'
  log(`csv RSS check: ~${RSS_MB} MB ${kind} file (${fmtInt(rows)} rows), scratch ${db.name}, ${TMP}`)
  const f = iot ? await iotFiles(rows, Date.now() - rows - 3_600_000, await registerSensors(env), null) : await universalFiles(rows, Date.now() - (rows + 10) * 1000)
  const size = statSync(f.csvPath).size
  log(`generated ${(size / 1024 ** 2).toFixed(0)} MB in ${((performance.now() - t0) / 1000).toFixed(0)} s; loading...`)
  await reset(kind)
  // A 1 GB file takes long on this box: the segment deadline is at least 3 h here.
  const t = await timedCsv([f.csvPath, ...(iot ? [] : ['--domain', DOMAIN, '--source-id', SOURCE]), '--rejects', join(TMP, 'rss.rejects.csv')], env, { timeoutMs: Math.max(TIMEOUT_MS, 3 * 3600_000) })
  const v = await verify(kind, { hash: false })
  const exact = v.n === f.good && t.summary.stored === f.good && t.summary.rejected === rows - f.good
  const rssMB = t.hwmKB / 1024
  log(`ingest csv: ${fmtInt(rows)} rows in ${(t.ms / 1000).toFixed(1)} s = ${fmtInt((f.good / t.ms) * 1000)} rows/s; peak RSS (VmHWM) ${rssMB.toFixed(0)} MB; stored ${fmtInt(v.n)} of ${fmtInt(f.good)} good rows${exact ? '' : ' MISMATCH'}`)
  const gates = [
    { gate: `ingest csv peak RSS (VmHWM) on a ${(size / 1024 ** 3).toFixed(2)} GiB file`, measured: `${rssMB.toFixed(0)} MB`, want: `< ${T.rssMB} MB`, pass: rssMB < T.rssMB },
    { gate: 'stored == good rows of the file', measured: exact ? 'yes' : `NO (stored ${v.n}, good ${f.good})`, want: 'yes', pass: exact },
  ]
  if (!flags['no-append']) {
    appendResults(
      [
        `## csv: RSS of \`ingest csv\` on a ${(size / 1024 ** 3).toFixed(2)} GiB ${kind} file -> PostgreSQL (${machine.date})`,
        '',
        ...machineLines(machine),
        `- data: ${fmtInt(rows)} rows (${fmtInt(size)} bytes) ${iot ? `\`sensor_id,timestamp,value\` over ${DEVICES * SENSORS} sensors` : `\`stream_id,timestamp,value\`, ${STREAMS} streams of one source (--domain ${DOMAIN})`}, one bad row every ${BAD_EVERY}; \`npm run bench -- csv --rss-mb ${RSS_MB}${iot ? ' --only iot' : ''}\``,
        `- ingest csv: ${(t.ms / 1000).toFixed(1)} s (${fmtInt((f.good / t.ms) * 1000)} rows/s), CPU µs/row of the process ${((t.cpuMs * 1000) / f.good).toFixed(1)}; peak RSS = VmHWM of the process polled every 20 ms${envNote() ? `; ${envNote()}` : ''}`,
        '',
        ...gatesMarkdown(gates),
      ].join('\n'),
    )
    log('appended to bench/RESULTS.md')
  }
  for (const g of gates) log(`  ${g.pass ? 'PASS' : 'FAIL'}  ${g.gate}: ${g.measured} (want ${g.want})`)
  if (!exact) return 1
  return flags.strict && gates.some((g) => !g.pass) ? 1 : 0
}

async function main() {
  if (RSS_MB !== undefined) return rssMain()
  const t0 = performance.now()
  const { env, machine } = await setup()
  log(`csv bench: ${fmtInt(N)} rows per file (one bad row every ${BAD_EVERY}), ${ROUNDS} rounds, ${DO_UNIVERSAL ? `universal (${STREAMS} streams)` : ''}${DO_UNIVERSAL && DO_IOT ? ' + ' : ''}${DO_IOT ? `IoT (${DEVICES} × ${SENSORS} sensors)` : ''}, seed ${SEED}`)
  log(`scratch: database ${db.name}, folder ${TMP}`)

  const now = Math.floor(Date.now() / 1000) * 1000
  let uni
  let iot
  if (DO_UNIVERSAL) {
    uni = { ...(await universalFiles(N, now - (N + 3600) * 1000, { copyPath: join(TMP, 'universal-copy.csv') })), copyPath: join(TMP, 'universal-copy.csv'), rows: N }
  }
  if (DO_IOT) {
    const ids = await registerSensors(env)
    // The classification the service stores for a clean reading: probe it with one CSV row, then reset.
    const probe = join(TMP, 'probe.csv')
    writeFileSync(probe, `sensor_id,timestamp,value\n${ids[0]},${new Date(now - 86_400_000).toISOString()},50\n`)
    await timedCsv([probe, '--rejects', join(TMP, 'probe.rejects.csv')], env)
    const cls = (await pgc.query('SELECT classification, reason_codes::text AS r FROM sensor_readings LIMIT 1')).rows[0]
    if (!cls) throw new Error('the probe row was not stored')
    iot = { ...(await iotFiles(N, now - N - 3_600_000, ids, join(TMP, 'iot-copy.csv'), cls.classification, cls.r)), copyPath: join(TMP, 'iot-copy.csv'), rows: N }
  }
  log(`setup ${((performance.now() - t0) / 1000).toFixed(1)} s (files: ${[uni, iot].filter(Boolean).map((f) => `${(statSync(f.csvPath).size / 1024 ** 2).toFixed(1)} MB`).join(', ')})`)

  const rounds = []
  let exactAll = true
  for (let r = 1; r <= ROUNDS; r++) {
    log(`\nround ${r}/${ROUNDS}`)
    const round = { r }
    if (uni) {
      await reset('universal')
      round.uCopy = await timedCopy('universal', uni.copyPath, uni)
      log(`  (a) psql \\copy -> data_points        ${fmtCopy(round.uCopy)}`)
      await reset('universal')
      round.uCsv = await csvSegment('universal', [uni.csvPath, '--domain', DOMAIN, '--source-id', SOURCE, '--rejects', join(TMP, 'u.rejects.csv')], env, uni, PROFILE_DIR)
      round.uRatio = round.uCsv.rps / round.uCopy.rps
      log(`  (b) ingest csv -> data_points        ${fmtCsv(round.uCsv)}`)
      log(`      ratio (b)/(a) = ${round.uRatio.toFixed(3)}×`)
      if (PROFILE_DIR) printProfile(PROFILE_DIR)
      exactAll &&= round.uCopy.exact && round.uCsv.exact
    }
    if (iot) {
      await reset('iot')
      round.iCopy = await timedCopy('iot', iot.copyPath, iot)
      log(`  (c) psql \\copy -> sensor_readings    ${fmtCopy(round.iCopy)}`)
      await reset('iot')
      round.iCsv = await csvSegment('iot', [iot.csvPath, '--rejects', join(TMP, 'i.rejects.csv')], env, iot, PROFILE_DIR)
      round.iRatio = round.iCsv.rps / round.iCopy.rps
      log(`  (d) ingest csv -> sensor_readings    ${fmtCsv(round.iCsv)}`)
      log(`      ratio (d)/(c) = ${round.iRatio.toFixed(3)}×`)
      if (PROFILE_DIR) printProfile(PROFILE_DIR)
      exactAll &&= round.iCopy.exact && round.iCsv.exact
    }
    rounds.push(round)
    // Sleep a moment so the profile files of the rounds do not share a millisecond name.
    if (PROFILE_DIR) await sleep(50)
  }

  const gates = []
  const ratioGate = (label, xs) => ({ gate: `ingest csv -> PostgreSQL ÷ psql \\copy, ${label} (median of rounds)`, measured: ratioSpan(xs), want: `≥ ${T.floor}× floor (target ${T.target}×)`, pass: median(xs) >= T.floor, note: median(xs) >= T.target ? 'target met' : `below the ${T.target}× target` })
  if (uni) gates.push(ratioGate('data_points', rounds.map((r) => r.uRatio)))
  if (iot) gates.push(ratioGate('sensor_readings', rounds.map((r) => r.iRatio)))
  const rss = max(rounds.flatMap((r) => [r.uCsv?.hwmKB, r.iCsv?.hwmKB].filter((x) => x !== undefined))) / 1024
  gates.push({ gate: `ingest csv peak RSS on ${fmtInt(N)}-row files (max of rounds)`, measured: `${rss.toFixed(0)} MB`, want: `≤ ${T.rssMB} MB`, pass: rss <= T.rssMB })
  gates.push({ gate: 'stored == distinct keys == good rows of the file, same key set as \\copy (every segment)', measured: exactAll ? 'yes' : 'NO', want: 'yes', pass: exactAll })
  log('\nsummary (ratios are per round, same run; absolute rows/s are context only)')
  for (const g of gates) log(`  ${g.pass ? 'PASS' : 'FAIL'}  ${g.gate}: ${g.measured}  (want ${g.want})${g.note ? `  ${g.note}` : ''}`)
  const totalS = (performance.now() - t0) / 1000
  log(`total ${totalS.toFixed(0)} s`)

  if (PROFILE_DIR) log('\n--cpu-prof run: the profiler perturbs the figures, so nothing is appended to bench/RESULTS.md')
  else if (!flags['no-append']) {
    const idx = async (t) => (await pgc.query(`SELECT indexdef FROM pg_indexes WHERE tablename = $1 ORDER BY indexname`, [t])).rows.map((x) => `\`${x.indexdef.replace(/^CREATE (UNIQUE )?INDEX (\S+) ON \S+ USING btree /, '$1$2 ')}\``).join(', ')
    const row = (r, copy, csv, ratio) =>
      `| ${r.r} | ${fmtInt(copy.rps)} | ${fmtInt(csv.rps)} | ${fmtInt(csv.importRps)} | ${ratio.toFixed(3)}× | ${fmtMB(csv.hwmKB)} | ${csv.cpuNodeUs.toFixed(1)} | ${csv.steal.toFixed(1)}% | ${copy.exact && csv.exact ? 'yes' : '**NO**'} |`
    const head = ['| round | \\copy rows/s | ingest csv rows/s (whole process) | import alone rows/s | csv/\\copy | peak RSS | CPU µs/row of the csv process | steal | stored==good rows |', '|---|---|---|---|---|---|---|---|---|']
    const md = [
      `## csv: \`ingest csv\` -> PostgreSQL vs psql \\copy (${machine.date})`,
      '',
      ...machineLines(machine),
      `- data: ${fmtInt(N)} rows per file, one bad row (\`n/a\` value) every ${BAD_EVERY} (rejected by the CLI, absent from the \\copy file); seed ${SEED}; ${ROUNDS} rounds (a) (b) (c) (d); TRUNCATE + CHECKPOINT + sync before every segment; total ${totalS.toFixed(0)} s`,
      `- timing: whole processes, spawn to exit (node start-up and the CLI's setup count, like psql's); "import alone" is the CLI's own \`seconds\` (context). Peak RSS: VmHWM polled every 20 ms. Flags: \`--json --allow-rejects --rejects FILE\`${envNote() ? `; ${envNote()}` : ''}`,
      ...(uni ? ['', `**Universal**: \`stream_id,timestamp,value\` (${STREAMS} streams, one source, \`--domain ${DOMAIN} --source-id ${SOURCE}\`, ${(statSync(uni.csvPath).size / 1024 ** 2).toFixed(1)} MB) -> data_points (indexes: ${await idx('data_points')})`, '', ...head, ...rounds.map((r) => row(r, r.uCopy, r.uCsv, r.uRatio))] : []),
      ...(iot ? ['', `**IoT**: \`sensor_id,timestamp,value\` (${DEVICES * SENSORS} sensors registered with \`ingest apply\`, ${(statSync(iot.csvPath).size / 1024 ** 2).toFixed(1)} MB) -> sensor_readings (indexes: ${await idx('sensor_readings')})`, '', ...head, ...rounds.map((r) => row(r, r.iCopy, r.iCsv, r.iRatio))] : []),
      '',
      ...gatesMarkdown(gates),
    ].join('\n')
    appendResults(md)
    log('appended to bench/RESULTS.md')
  }
  if (!exactAll) {
    log('FAIL: stored != good rows (or duplicates / a different key set) in at least one segment')
    return 1
  }
  return flags.strict && gates.some((g) => !g.pass) ? 1 : 0
}

await runBenchmark('csv', main, cleanup)
