#!/usr/bin/env node
// @bench batch predict on PostgreSQL: sensors/s of `ingest batch predict --once` over 10 000 sensors x 60 readings (floor 5 000, target 20 000)
//
// A scratch database on the loopback PostgreSQL, migrated by the CLI; 10 000 sensors with 60 readings each
// (every 10th with a threshold its forecast violates, so events and notifications are part of the work).
// Each round resets the predictions, events and watermarks (models stay after round 1, as in production),
// runs the built CLI `batch predict --once --json` (a frozen copy of the build) and reads its own timing
// (`sensorsPerSecond`: from listing the sensors to the last commit) and the process's wall time. Checks
// exactness every round: one prediction per sensor, the expected number of events. Appends to
// bench/RESULTS.md unless --no-append.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import {
  appendResults,
  benchFlags,
  busyMs,
  cleanEnv,
  cli,
  cpuStat,
  fmtInt,
  gatesMarkdown,
  loopbackAdminUrl,
  machineInfo,
  machineLines,
  max,
  median,
  min,
  runBenchmark,
  scratchDatabase,
  snapshotBuild,
  stealPct,
} from './lib/common.mjs'

const USAGE = 'npm run bench -- predict [--sensors 10000] [--readings 60] [--rounds 3] [--concurrency 2] [--engine baseline|taylor] [--admin-url URL] [--no-append] [--strict] [--keep]'
const { flags, int } = benchFlags(
  {
    sensors: { type: 'string', default: '10000' },
    readings: { type: 'string', default: '60' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '2' },
    engine: { type: 'string', default: 'baseline' },
  },
  USAGE,
)
const sensors = int('sensors', 10, 1_000_000)
const readings = int('readings', 2, 1000)
const rounds = int('rounds', 1, 20)
const concurrency = int('concurrency', 1, 64)
const engine = flags.engine === 'taylor' ? 'taylor' : 'baseline'
const FLOOR = 5000
const TARGET = 20000

const adminUrl = loopbackAdminUrl(flags['admin-url'])
const db = await scratchDatabase(adminUrl, `ingest_bench_predict_${process.pid}`)
const snap = mkdtempSync(join(tmpdir(), `ingest-bench-predict-${process.pid}-`))

const CLK_TCK = 100

/** /proc/<pid>/stat fields after the command: [state, ppid, ...]; utime 11, stime 12, cutime 13, cstime 14. */
function statFields(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return { comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), f: s.slice(s.lastIndexOf(')') + 2).split(' ').map(Number) }
}

/**
 * CPU ms of PostgreSQL: every live postgres process, plus the postmaster's reaped children (the job's
 * backends exit with the CLI; their CPU lands in the postmaster's cutime/cstime). Other sessions' work
 * on the same server counts too: the `other cores` column tells how busy the machine was besides us.
 */
function pgCpuMs() {
  let ticks = 0
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const { comm, f } = statFields(d)
      if (comm !== 'postgres') continue
      ticks += f[11] + f[12]
      let parent = 'init'
      try {
        parent = statFields(f[1]).comm
      } catch {
        /* no parent visible */
      }
      if (parent !== 'postgres') ticks += f[13] + f[14]
    } catch {
      /* exited meanwhile */
    }
  }
  return (ticks * 1000) / CLK_TCK
}

/** CPU ms of this process's reaped children (the CLI runs). */
const childrenCpuMs = () => {
  const { f } = statFields('self')
  return ((f[13] + f[14]) * 1000) / CLK_TCK
}

async function psql(pgClient, sql) {
  await pgClient.query(sql)
}

async function main() {
  await snapshotBuild(join(snap, 'app'))
  await db.create()
  const env = cleanEnv({ DATABASE_URL: db.url, LOG_LEVEL: 'warn' })
  await cli(['db', 'migrate', '--json'], { env })
  const { default: pg } = await import('pg')
  const c = new pg.Client({ connectionString: db.url })
  await c.connect()
  try {
    const seedStart = Date.now()
    await psql(c, `INSERT INTO devices (device_uuid, name) VALUES (gen_random_uuid(), 'bench')`)
    await psql(c, `INSERT INTO sensors (device_id, sensor_uuid, sensor_type, name) SELECT d.id, gen_random_uuid(), 'temperature', 's' || g FROM devices d, generate_series(1, ${sensors}) g`)
    await psql(
      c,
      `INSERT INTO sensor_readings (sensor_id, value, "timestamp", device_timestamp)
       SELECT s.id, 20 + (g % 7) * 0.1, now() - g * interval '1 minute', now() - g * interval '1 minute' FROM sensors s, generate_series(1, ${readings}) g`,
    )
    // Every 10th sensor's mean (~20.3) violates "greater_than 20.1".
    await psql(c, `INSERT INTO alert_thresholds (sensor_id, name, condition_type, threshold_value_min, severity) SELECT id, 'hot', 'greater_than', 20.1, 'warning' FROM sensors WHERE id % 10 = 0`)
    await psql(c, 'VACUUM ANALYZE')
    console.error(`seeded ${fmtInt(sensors)} sensors x ${readings} readings in ${((Date.now() - seedStart) / 1000).toFixed(1)} s`)
    const expectedEvents = Number((await c.query('SELECT COUNT(DISTINCT sensor_id) AS n FROM alert_thresholds')).rows[0].n)

    const results = []
    for (let round = 1; round <= rounds; round++) {
      await psql(c, 'TRUNCATE predictions, ml_watermarks, ml_events, alert_notifications RESTART IDENTITY')
      const started = Date.now()
      const c0 = cpuStat()
      const pg0 = pgCpuMs()
      const cli0 = childrenCpuMs()
      const self0 = process.cpuUsage()
      const out = await cli(['batch', 'predict', '--once', '--json', '--concurrency', String(concurrency), '--engine', engine], { env, timeoutMs: 600_000 })
      const wallMs = Date.now() - started
      const pgMs = pgCpuMs() - pg0
      const cliMs = childrenCpuMs() - cli0
      const selfUs = process.cpuUsage(self0)
      const c1 = cpuStat()
      const steal = stealPct(c0, c1)
      const otherCores = Math.max(0, busyMs(c0, c1) - pgMs - cliMs - (selfUs.user + selfUs.system) / 1000) / wallMs
      const stored = Number((await c.query('SELECT COUNT(*) AS n, COUNT(DISTINCT sensor_id) AS d FROM predictions')).rows[0].n)
      const distinct = Number((await c.query('SELECT COUNT(DISTINCT sensor_id) AS d FROM predictions')).rows[0].d)
      const events = Number((await c.query(`SELECT COUNT(*) AS n FROM ml_events WHERE event_code = 'PRED_THRESHOLD_BREACH'`)).rows[0].n)
      const notes = Number((await c.query(`SELECT COUNT(*) AS n FROM alert_notifications WHERE source = 'ml_event'`)).rows[0].n)
      const exact = stored === sensors && distinct === sensors && events === expectedEvents && notes === expectedEvents && out.failed === 0
      const pgUs = (pgMs * 1000) / sensors
      const cliUs = (cliMs * 1000) / sensors
      results.push({ round, jobRate: out.sensorsPerSecond, seconds: out.seconds, wallRate: sensors / (wallMs / 1000), wallMs, exact, events, pgUs, cliUs, steal, otherCores })
      console.error(
        `round ${round}: ${fmtInt(out.sensorsPerSecond)} sensors/s (job ${out.seconds.toFixed(2)} s, process ${(wallMs / 1000).toFixed(2)} s), predictions ${stored}, events ${events}${exact ? '' : ' NOT EXACT'}; CPU per sensor: postgres ${pgUs.toFixed(0)} µs, CLI ${cliUs.toFixed(0)} µs; steal ${steal.toFixed(1)}%, other cores ${otherCores.toFixed(2)}`,
      )
    }
    const rates = results.map((x) => x.jobRate)
    const med = median(rates)
    const allExact = results.every((x) => x.exact)
    const gates = [
      { gate: 'batch predict sensors/s (floor)', measured: fmtInt(med), note: `median of ${rounds}, [${fmtInt(min(rates))}..${fmtInt(max(rates))}]`, want: `>= ${fmtInt(FLOOR)}`, pass: med >= FLOOR },
      { gate: 'batch predict sensors/s (target)', measured: fmtInt(med), want: `>= ${fmtInt(TARGET)}`, pass: med >= TARGET },
      { gate: 'exactly one prediction per sensor, events = sensors with a violated threshold', measured: allExact ? 'yes' : 'no', want: 'yes', pass: allExact },
    ]
    const pgVersion = (await c.query('SHOW server_version')).rows[0].server_version
    const md = [
      `## predict: \`ingest batch predict --once\` on PostgreSQL (${new Date().toISOString()})`,
      '',
      `${fmtInt(sensors)} sensors x ${readings} readings, --engine ${engine}, --concurrency ${concurrency}, ${fmtInt(expectedEvents)} threshold breaches per round; predictions, events and watermarks reset before each round (models kept). Rate = sensors / the job's own time (listing to last commit); the process column adds CLI start-up and the job_runs row. CPU per sensor over the whole process: postgres (live processes + the postmaster's reaped backends; other sessions' queries count too) and the CLI (start-up included); other cores = machine busy time not ours / wall.`,
      '',
      ...machineLines(machineInfo({ pgVersion })),
      '',
      '| round | sensors/s (job) | job s | process s | sensors/s (process) | postgres µs/sensor | CLI µs/sensor | steal | other cores | exact |',
      '|---|---|---|---|---|---|---|---|---|---|',
      ...results.map(
        (x) =>
          `| ${x.round} | ${fmtInt(x.jobRate)} | ${x.seconds.toFixed(2)} | ${(x.wallMs / 1000).toFixed(2)} | ${fmtInt(x.wallRate)} | ${x.pgUs.toFixed(0)} | ${x.cliUs.toFixed(0)} | ${x.steal.toFixed(1)}% | ${x.otherCores.toFixed(2)} | ${x.exact ? 'yes' : '**no**'} |`,
      ),
      '',
      ...gatesMarkdown(gates),
    ].join('\n')
    console.log(md)
    if (!flags['no-append']) appendResults(md)
    if (!allExact) return 1
    if (flags.strict && gates.some((g) => !g.pass)) return 1
    return 0
  } finally {
    await c.end().catch(() => {})
  }
}

await runBenchmark('predict', main, async () => {
  if (!flags.keep) await db.drop()
  rmSync(snap, { recursive: true, force: true })
})
