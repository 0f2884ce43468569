#!/usr/bin/env node
// Summarises a V8 .cpuprofile (node --cpu-prof): self time by function, self time by module (npm package,
// dist/ file or node internal) and inclusive time by function. Usable as a module or as
// `node bench/lib/cpuprofile-summary.mjs FILE.cpuprofile [top]`.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

function moduleOf(url, name) {
  if (!url) return name.startsWith('(') ? name : '(native/V8)'
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const rest = url.slice(nm + 'node_modules/'.length).split('/')
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]
  }
  const d = url.indexOf('/dist/')
  if (d >= 0) return url.slice(d + 1)
  if (url.startsWith('node:')) return url
  return url.replace(/^file:\/\//, '')
}

function short(url) {
  if (!url) return ''
  const nm = url.lastIndexOf('node_modules/')
  if (nm >= 0) return url.slice(nm + 'node_modules/'.length)
  const d = url.indexOf('/dist/')
  if (d >= 0) return url.slice(d + 1)
  return url.replace(/^file:\/\//, '')
}

export function summarizeProfile(file, top = 25) {
  const prof = JSON.parse(readFileSync(file, 'utf8'))
  const byId = new Map()
  const parent = new Map()
  for (const n of prof.nodes) byId.set(n.id, n)
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const key = (n) => `${n.callFrame.functionName || '(anonymous)'} ${short(n.callFrame.url)}:${n.callFrame.lineNumber + 1}`
  const self = new Map()
  const mod = new Map()
  const incl = new Map()
  let total = 0
  let idle = 0
  const add = (m, k, v) => m.set(k, (m.get(k) ?? 0) + v)
  for (let i = 0; i < prof.samples.length; i++) {
    const dt = (prof.timeDeltas[i] ?? 0) / 1000 // µs -> ms
    const n = byId.get(prof.samples[i])
    if (!n) continue
    total += dt
    if (n.callFrame.functionName === '(idle)') {
      idle += dt
      continue
    }
    add(self, key(n), dt)
    add(mod, moduleOf(n.callFrame.url, n.callFrame.functionName), dt)
    const seen = new Set()
    for (let id = n.id; id !== undefined; id = parent.get(id)) {
      const p = byId.get(id)
      if (!p || p.callFrame.functionName === '(root)') continue
      const k = key(p)
      if (seen.has(k)) continue
      seen.add(k)
      add(incl, k, dt)
    }
  }
  const busy = total - idle
  const pct = (v) => `${((100 * v) / busy).toFixed(1).padStart(5)}%`
  const rows = (m, n) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, v]) => `  ${pct(v)} ${v.toFixed(0).padStart(7)} ms  ${k}`)
  return [
    `profile ${file}: ${total.toFixed(0)} ms sampled, idle ${idle.toFixed(0)} ms, busy ${busy.toFixed(0)} ms (percentages are of busy time)`,
    `self time by module:`,
    ...rows(mod, 15),
    `self time by function (top ${top}):`,
    ...rows(self, top),
    `inclusive time by function (top ${top}):`,
    ...rows(incl, top),
  ].join('\n')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, top] = process.argv.slice(2)
  if (!file) {
    console.error('usage: node bench/lib/cpuprofile-summary.mjs FILE.cpuprofile [top]')
    process.exit(2)
  }
  console.log(summarizeProfile(file, Number(top ?? 25)))
}
