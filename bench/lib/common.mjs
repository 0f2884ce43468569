// Shared helpers of the benchmarks: statistics, machine facts, process accounting, the CLI runner and
// bench/RESULTS.md. Plain Node ESM, no build step, no dependencies beyond node:*.
import { execFileSync, spawn } from 'node:child_process'
import { appendFileSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)))
export const REPO = dirname(BENCH_DIR)
export const BIN = join(REPO, 'bin', 'run.js')
/** The bin/run.js the helpers run: the repository's, or a frozen snapshot (see snapshotBuild). */
const state = { bin: BIN }
export const currentBin = () => state.bin
export const RESULTS = join(BENCH_DIR, 'RESULTS.md')

// ------------------------------------------------------------------ statistics

export function median(xs) {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2
}

/** Nearest-rank percentile (p in 0..100) of an unsorted array. */
export function percentile(xs, p) {
  if (xs.length === 0) return NaN
  const s = xs instanceof Float64Array ? Float64Array.from(xs).sort() : [...xs].sort((a, b) => a - b)
  const rank = Math.min(s.length, Math.max(1, Math.ceil((p / 100) * s.length)))
  return s[rank - 1]
}

export const min = (xs) => Math.min(...xs)
export const max = (xs) => Math.max(...xs)

/** "0.42× [0.39..0.47]" */
export function ratioSpan(xs, digits = 2) {
  return `${xs.length ? median(xs).toFixed(digits) : 'n/a'}× [${xs.length ? min(xs).toFixed(digits) : '-'}..${xs.length ? max(xs).toFixed(digits) : '-'}]`
}

export const fmtInt = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a')
export const fmtMs = (x, d = 1) => (Number.isFinite(x) ? `${x.toFixed(d)} ms` : 'n/a')
export const fmtMB = (kb) => (Number.isFinite(kb) ? `${(kb / 1024).toFixed(0)} MB` : 'n/a')

// ------------------------------------------------------------------ seeded random

/** mulberry32: a small deterministic PRNG, enough for benchmark data. */
export function rng(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// ------------------------------------------------------------------ machine and process facts

export function sh(cmd, args, opts = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000, ...opts }).trim()
  } catch {
    return null
  }
}

export function machineInfo({ pgVersion } = {}) {
  let model = 'unknown'
  try {
    model = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpus()[0]?.model ?? 'unknown'
  } catch {
    model = cpus()[0]?.model ?? 'unknown'
  }
  const dirty = sh('git', ['status', '--porcelain', '--untracked-files=no'], { cwd: REPO })
  return {
    date: new Date().toISOString(),
    nproc: sh('nproc', []) ?? String(cpus().length),
    model,
    memory: `${(totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    node: process.version,
    postgres: pgVersion ?? null,
    commit: sh('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO }) ?? 'unknown',
    // Others edit the tree concurrently: say how many tracked files differed from HEAD when we ran.
    dirtyFiles: dirty === null ? null : dirty.split('\n').filter(Boolean).length,
    loadavg: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
  }
}

export function machineLines(m) {
  return [
    `- date: ${m.date}`,
    `- machine: ${m.nproc} cores, ${m.model}, ${m.memory} RAM; node ${m.node}${m.postgres ? `; PostgreSQL ${m.postgres}` : ''}`,
    `- commit: ${m.commit}${m.dirtyFiles ? ` (+${m.dirtyFiles} modified tracked files in the working tree)` : ''}; load average at start: ${m.loadavg}`,
  ]
}

const CLK_TCK = Number(sh('getconf', ['CLK_TCK']) ?? 100) || 100

/** utime+stime of a process in ms, or NaN when it is gone. */
export function procCpuMs(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK
  } catch {
    return NaN
  }
}

/** Total CPU ms of every live process whose command is `name` (e.g. all postgres backends and workers). */
export function cpuMsByName(name) {
  let total = 0
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8')
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'))
      if (comm !== name) continue
      const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
      total += ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK
    } catch {
      /* exited meanwhile */
    }
  }
  return total
}

/** VmRSS / VmHWM of a process in kB. */
export function procMem(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8')
    const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? NaN)
    return { rss: get('VmRSS'), hwm: get('VmHWM') }
  } catch {
    return { rss: NaN, hwm: NaN }
  }
}

/** Aggregate /proc/stat counters, to measure CPU steal over a segment. */
export function cpuStat() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  return { total: f.reduce((a, b) => a + b, 0), steal: f[7] ?? 0, idle: (f[3] ?? 0) + (f[4] ?? 0) }
}

/** CPU ms (all cores) spent busy between two cpuStat() samples. */
export function busyMs(before, after) {
  return ((after.total - after.idle - (before.total - before.idle)) * 1000) / CLK_TCK
}

export function stealPct(before, after) {
  const dt = after.total - before.total
  return dt > 0 ? (100 * (after.steal - before.steal)) / dt : 0
}

// ------------------------------------------------------------------ processes

export function freePort() {
  return new Promise((res, rej) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', rej)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => res(port))
    })
  })
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/**
 * Runs a command to completion with a timeout; resolves {code, stdout, stderr, ms}. Never throws on a
 * non-zero exit (the caller decides).
 */
export function run(cmd, args, { env, cwd, timeoutMs = 120_000, input } = {}) {
  return new Promise((res, rej) => {
    const t0 = performance.now()
    const child = spawn(cmd, args, { env, cwd, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      rej(new Error(`${cmd} ${args.join(' ')} timed out after ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('error', (e) => {
      clearTimeout(timer)
      rej(e)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      res({ code: code ?? (signal ? 128 : 1), signal, stdout, stderr, ms: performance.now() - t0 })
    })
    if (input !== undefined) child.stdin.end(input)
    else child.stdin.end()
  })
}

/** Runs the built CLI (`node bin/run.js ...`) and parses its --json output; throws with stderr on failure. */
export async function cli(args, { env, cwd, timeoutMs = 120_000, nodeArgs = [] } = {}) {
  const r = await run(process.execPath, [...nodeArgs, state.bin, ...args], { env, cwd, timeoutMs })
  if (r.code !== 0) throw new Error(`ingest ${args.join(' ')} exited ${r.code}:\n${r.stderr.slice(-2000)}`)
  if (!args.includes('--json')) return r.stdout
  try {
    return JSON.parse(r.stdout)
  } catch {
    throw new Error(`ingest ${args.join(' ')}: stdout is not JSON:\n${r.stdout.slice(0, 500)}`)
  }
}

function buildReady(root) {
  return existsSync(join(root, 'dist', 'commands')) && existsSync(join(root, 'oclif.manifest.json'))
}

/** Fails early with a clear message when the CLI was not built (the bench runs dist/, not src/). */
export function assertBuilt() {
  if (!buildReady(REPO)) throw new Error('dist/ is missing: run `npm run build` in the repository first (the benchmarks run the built CLI)')
}

function listFiles(dir, base = dir, out = []) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) listFiles(p, base, out)
    else out.push(`${p.slice(base.length)}:${statSync(p).size}:${statSync(p).mtimeMs}`)
  }
  return out.sort().join('\n')
}

/**
 * Copies the built CLI (bin, dist, migrations, package.json, oclif.manifest.json; node_modules linked)
 * into `dest` and returns the path of its bin/run.js. Others rebuild the repository while we run
 * (`npm run build` starts with rm -rf dist), so a long benchmark measures one frozen build. Waits
 * (bounded) for a build in progress and retries until the copied tree matches a quiet source.
 */
export async function snapshotBuild(dest, { waitMs = 180_000 } = {}) {
  const deadline = Date.now() + waitMs
  for (let attempt = 1; ; attempt++) {
    // test/helpers/build.ts holds .build-lock while it rebuilds; `npm run build` alone does not.
    if (buildReady(REPO) && !existsSync(join(REPO, '.build-lock'))) {
      const before = listFiles(join(REPO, 'dist'))
      await sleep(1500)
      if (before === listFiles(join(REPO, 'dist'))) {
        rmSync(dest, { recursive: true, force: true })
        mkdirSync(dest, { recursive: true })
        for (const d of ['bin', 'dist', 'migrations']) cpSync(join(REPO, d), join(dest, d), { recursive: true })
        for (const f of ['package.json', 'oclif.manifest.json']) copyFileSync(join(REPO, f), join(dest, f))
        symlinkSync(join(REPO, 'node_modules'), join(dest, 'node_modules'), 'dir')
        const manifest = JSON.parse(readFileSync(join(dest, 'oclif.manifest.json'), 'utf8'))
        const complete = Object.values(manifest.commands).every((c) => existsSync(join(dest, ...(c.relativePath ?? []))))
        // The copy is good when every command's file is there and the source did not change meanwhile.
        if (complete && before === listFiles(join(REPO, 'dist'))) {
          state.bin = join(dest, 'bin', 'run.js')
          return state.bin
        }
      }
    }
    if (Date.now() > deadline) throw new Error('no stable build in dist/ (someone is rebuilding?): run `npm run build` and retry')
    if (attempt === 1) console.log('waiting for a build in progress to finish...')
    await sleep(3000)
  }
}

/**
 * The environment of a CLI child: ours minus everything that selects a database, Redis or an API key,
 * plus `extra`. The bench never inherits a developer's DATABASE_URL or REDIS_URL by accident.
 */
export function cleanEnv(extra = {}) {
  const env = { ...process.env }
  for (const k of Object.keys(env)) {
    if (/^(DATABASE_URL|POSTGRES_URL|MSSQL_URL|DB_[A-Z_]+|REDIS_[A-Z_]+|INGEST_[A-Z_]+|IOT_STORAGE|LOG_LEVEL|PORT|HOST|RATE_LIMIT_[A-Z_]+|BATCH_[A-Z_]+|NODE_OPTIONS)$/.test(k)) delete env[k]
  }
  return { ...env, ...extra }
}

// ------------------------------------------------------------------ results file

const RESULTS_HEADER = `# Benchmark results

Appended by \`npm run bench -- <name>\` (\`bench/run.mjs\`). Method (docs: \`/work/shared/reference/performance.md\` §0, §2, §4):

- Every service figure is divided by a **physical ceiling measured in the same run, on the same rows and the
  same table**, and the segments are **interleaved** (a → b → c, repeated \`--rounds\` times). The gated figure is
  the **median of the per-round ratios** with its [min..max]. Absolute rows/s are printed for context only:
  this 2-vCPU VM drifts ±20% from minute to minute, so never compare absolute numbers across days or sections.
- Exactness is checked every round: rows stored == readings acknowledged, no duplicate dedup keys, and the
  stored (sensor_id, dedup_key) set is identical to the ceiling's. Any mismatch fails the run (exit 1).
- The service is the built CLI (\`node bin/run.js\`), started the way users start it, with production defaults
  except \`RATE_LIMIT_ENABLED=0\` and \`LOG_LEVEL=warn\`. Each section names the git commit; "+N modified" means
  the working tree had uncommitted edits when it ran.
`

export function appendResults(markdown) {
  if (!existsSync(RESULTS)) writeFileSync(RESULTS, RESULTS_HEADER)
  appendFileSync(RESULTS, `\n${markdown.trimEnd()}\n`)
}

export function resolvePath(p) {
  return resolve(process.cwd(), p)
}

// ------------------------------------------------------------------ scaffolding of a benchmark run
// (used by bench/mqtt.mjs; bench/http.mjs keeps its own copies)

/**
 * A scratch PostgreSQL database on the admin server (loopback only): `create()` makes it, `drop()` drops it
 * with FORCE (never throws: a failure is printed). `url` is its connection string.
 */
export async function scratchDatabase(adminUrl, name) {
  const { default: pg } = await import('pg')
  const url = new URL(adminUrl)
  url.pathname = `/${name}`
  let created = false
  const withAdmin = async (sql) => {
    const c = new pg.Client({ connectionString: adminUrl.toString() })
    try {
      await c.connect()
      await c.query(sql)
    } finally {
      await c.end().catch(() => {})
    }
  }
  return {
    name,
    url: url.toString(),
    async create() {
      await withAdmin(`CREATE DATABASE ${name}`)
      created = true
    },
    async drop() {
      if (!created) return
      try {
        await withAdmin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
        created = false
      } catch (err) {
        console.error(`could not drop ${name}: ${err.message}`)
      }
    },
  }
}

/** Stops a child with `signal`, SIGKILL after `graceMs`; resolves with its exit code (or the signal name). */
export async function stopChild(child, signal = 'SIGTERM', graceMs = 30_000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode
  const exited = new Promise((r) => child.once('exit', (code, sig) => r(code ?? sig)))
  child.kill(signal)
  const code = await Promise.race([exited, sleep(graceMs).then(() => 'timeout')])
  if (code !== 'timeout') return code
  child.kill('SIGKILL')
  await exited
  return 'timeout'
}

/**
 * Runs a benchmark's `main()` (resolving to its exit code) with `cleanup()` after it, also on SIGINT /
 * SIGTERM (exit 130), and exits the process with the code.
 */
export async function runBenchmark(name, main, cleanup) {
  let stopping = false
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, async () => {
      if (stopping) return
      stopping = true
      console.error(`\n${sig}: stopping what ${name} started`)
      await cleanup()
      process.exit(130)
    })
  }
  let code = 1
  try {
    code = await main()
  } catch (err) {
    console.error(`${name} bench failed: ${err?.stack ?? err}`)
    code = 1
  } finally {
    await cleanup()
  }
  process.exit(code)
}

/** The gates as a markdown table: gate | measured (note) | want | PASS/FAIL. */
export function gatesMarkdown(gates) {
  return [
    '| gate | measured | want | result |',
    '|---|---|---|---|',
    ...gates.map((g) => `| ${g.gate} | ${g.measured}${g.note ? ` (${g.note})` : ''} | ${g.want} | **${g.pass ? 'PASS' : 'FAIL'}** |`),
  ]
}

/**
 * parseArgs of a benchmark's own `options` plus the flags every run has (--admin-url, --no-append, --strict,
 * --keep, --usage; --usage prints `usage` and exits 0). Returns the flags and `int(name, lo, hi)`, which
 * exits 2 with a message when the flag is not an integer in range.
 */
export function benchFlags(options, usage) {
  const { values: flags } = parseArgs({
    options: {
      ...options,
      'admin-url': { type: 'string', default: process.env.BENCH_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
      'no-append': { type: 'boolean', default: false },
      strict: { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      usage: { type: 'boolean', default: false },
    },
  })
  if (flags.usage) {
    console.log(usage)
    process.exit(0)
  }
  const int = (name, lo, hi) => {
    const v = Number(flags[name])
    if (!Number.isInteger(v) || v < lo || v > hi) usageError(`--${name} must be an integer in ${lo}..${hi}`)
    return v
  }
  return { flags, int }
}

export function usageError(message) {
  console.error(message)
  process.exit(2)
}

/** The --admin-url as a URL, refused (exit 2) unless it points at loopback. */
export function loopbackAdminUrl(text) {
  const url = new URL(text)
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(url.hostname)) usageError(`--admin-url must point at loopback (got ${url.hostname})`)
  return url
}
