// Prometheus text scraped from the server under test, for the tail breakdown of the open-loop segment:
// histograms (flush phases, queue wait, commit, GC pauses) diffed between two scrapes.

/** Parses `name_bucket{labels,le="x"} n` lines into Map(key -> Map(le -> count)), key = name + other labels. */
export function parseHistograms(text) {
  const out = new Map()
  for (const line of text.split('\n')) {
    const m = /^(\w+)_bucket\{(.*)\} (\S+)$/.exec(line)
    if (!m) continue
    const labels = m[2].split(/,(?=\w+=")/).filter((l) => !l.startsWith('le='))
    const le = /le="([^"]+)"/.exec(m[2])?.[1]
    const key = `${m[1]}${labels.length ? `{${labels.join(',')}}` : ''}`
    if (!out.has(key)) out.set(key, new Map())
    out.get(key).set(le === '+Inf' ? Infinity : Number(le), Number(m[3]))
  }
  return out
}

export async function scrape(port) {
  const r = await fetch(`http://127.0.0.1:${port}/metrics`)
  if (!r.ok) return new Map()
  const text = await r.text()
  const out = parseHistograms(text)
  // Event-loop lag: prom-client resets its monitor at every scrape, so these gauges cover the time since the last one.
  const gauges = {}
  for (const m of text.matchAll(/^nodejs_eventloop_lag_(p50|p99|max)_seconds (\S+)$/gm)) gauges[m[1]] = Number(m[2])
  out.eventLoop = gauges
  return out
}

/**
 * Per histogram, between two scrapes: observations, the bucket bound that holds the p50/p99/max, and how
 * many observations were above 10 ms (the tail we look for).
 */
export function histogramDeltas(before, after) {
  const out = []
  if (after.eventLoop && Object.keys(after.eventLoop).length) out.push({ key: 'eventloop_lag', eventLoop: after.eventLoop })
  for (const [key, buckets] of after) {
    const prev = before.get(key) ?? new Map()
    const bounds = [...buckets.keys()].sort((a, b) => a - b)
    const cum = bounds.map((b) => buckets.get(b) - (prev.get(b) ?? 0))
    const n = cum[cum.length - 1] ?? 0
    if (n === 0) continue
    const at = (q) => bounds[cum.findIndex((c) => c >= q * n)]
    const over10 = n - (cum[bounds.findIndex((b) => b >= 0.01)] ?? n)
    const maxBound = bounds[cum.findIndex((c) => c >= n)]
    out.push({ key, n, p50: at(0.5), p99: at(0.99), max: maxBound, over10ms: over10 })
  }
  return out
}

const ms = (s) => (s === Infinity ? '>1 s' : `≤${+(s * 1000).toPrecision(3)} ms`)

/** One line per histogram of interest: `phase n p50 p99 max >10ms`. */
export function fmtDeltas(rows, filter = /flush_phase|queue_wait|commit_seconds|gc_duration/) {
  const loop = rows.find((r) => r.eventLoop)
  // prom-client samples the loop every 10 ms (eventLoopMonitoringPrecision): a delay of 10 ms is an idle loop.
  const raw = (s) => `${(s * 1000).toFixed(1)} ms`
  const lag = loop ? [`event-loop delay over the segment (10 ms sampling = idle): p50 ${raw(loop.eventLoop.p50)} p99 ${raw(loop.eventLoop.p99)} max ${raw(loop.eventLoop.max)}`] : []
  return lag.concat(rows
    .filter((r) => !r.eventLoop && filter.test(r.key))
    .map((r) => `${r.key.replace(/^ingest_|^nodejs_/, '')}: n ${r.n} p50 ${ms(r.p50)} p99 ${ms(r.p99)} max ${ms(r.max)} >10ms ${r.over10ms}`))
}
