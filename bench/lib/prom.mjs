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
  return r.ok ? parseHistograms(await r.text()) : new Map()
}

/**
 * Per histogram, between two scrapes: observations, the bucket bound that holds the p50/p99/max, and how
 * many observations were above 10 ms (the tail we look for).
 */
export function histogramDeltas(before, after) {
  const out = []
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
  return rows
    .filter((r) => filter.test(r.key))
    .map((r) => `${r.key.replace(/^ingest_|^nodejs_/, '')}: n ${r.n} p50 ${ms(r.p50)} p99 ${ms(r.p99)} max ${ms(r.max)} >10ms ${r.over10ms}`)
}
