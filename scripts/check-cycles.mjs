#!/usr/bin/env node
// Fails when the modules under src/ import each other in a cycle (issue 9, "house rules").
//
//   node scripts/check-cycles.mjs            check src/ of this repository
//   node scripts/check-cycles.mjs <dir>      check another tree (the unit test uses a temp dir)
//
// Every static relative `import ... from`, `import '...'`, `export ... from` counts, type-only ones
// included: a type-only cycle (ports/migrator.ts <-> ports/storage.ts) still says two modules are
// one, even though it vanishes at run time. Dynamic `import()` does not count: it is the way a
// module reaches an optional adapter lazily and does not run at load time.
//
// Plain Node, no dependencies: comments are blanked first (string-aware), then import statements
// are found with regular expressions, `.js` specifiers are resolved to the `.ts` file beside them,
// and strongly connected components are found with Tarjan's algorithm. Each component of more than
// one module (or a module importing itself) is printed as one or more cycles, paths relative to the
// checked directory, until every module of the component appears in a printed cycle.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'

/** Every `.ts` file under dir (recursively), absolute paths, sorted; `.d.ts` files included. */
export function listTsFiles(dir) {
  const out = []
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      if (name === 'node_modules' || name.startsWith('.')) continue
      const p = join(d, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (name.endsWith('.ts')) out.push(p)
    }
  }
  walk(dir)
  return out
}

/** Replaces comments by spaces (newlines kept), leaving string and template literals alone. */
export function stripComments(src) {
  let out = ''
  let i = 0
  while (i < src.length) {
    const c = src[i]
    const n = src[i + 1]
    if (c === '/' && n === '/') {
      while (i < src.length && src[i] !== '\n') { out += ' '; i++ }
    } else if (c === '/' && n === '*') {
      out += '  '
      i += 2
      while (i < src.length && !(src[i] === '*' && src[i + 1] === '/')) { out += src[i] === '\n' ? '\n' : ' '; i++ }
      out += '  '
      i += 2
    } else if (c === "'" || c === '"' || c === '`') {
      // Copy the literal verbatim so a `//` inside a string is not taken for a comment. Template
      // `${}` parts are copied as text too; an import never sits inside one.
      out += c
      i++
      while (i < src.length && src[i] !== c) {
        if (src[i] === '\\') { out += src[i]; i++ }
        if (i < src.length) { out += src[i]; i++ }
        if (c !== '`' && src[i - 1] === '\n') break
      }
      if (i < src.length) { out += src[i]; i++ }
    } else {
      out += c
      i++
    }
  }
  return out
}

// `import x from '...'`, `import type { A } from '...'`, `export * from '...'`, `export type { A } from '...'`:
// the statement starts a line (or follows `;`) and its clause holds no quote or semicolon.
const FROM_RE = /(?:^|[;\n])\s*(?:import|export)\s[^'";]*?\bfrom\s*(['"])([^'"\n]+)\1/g
// `import './side-effect.js'`
const BARE_RE = /(?:^|[;\n])\s*import\s*(['"])([^'"\n]+)\1/g

/** The relative specifiers a source file imports statically, in order of appearance, deduplicated. */
export function importSpecifiers(source) {
  const text = stripComments(source)
  const found = new Set()
  for (const re of [FROM_RE, BARE_RE]) {
    re.lastIndex = 0
    for (let m = re.exec(text); m; m = re.exec(text)) if (m[2].startsWith('.')) found.add(m[2])
  }
  return [...found]
}

/** The `.ts` file a relative specifier names, or undefined when it is not a file of the tree. */
export function resolveSpecifier(fromFile, spec) {
  const base = resolve(dirname(fromFile), spec)
  const candidates = []
  if (/\.(m|c)?js$/.test(base)) candidates.push(base.replace(/\.(m|c)?js$/, (ext) => ext.replace('js', 'ts')))
  if (base.endsWith('.ts')) candidates.push(base)
  candidates.push(`${base}.ts`, join(base, 'index.ts'))
  return candidates.find((c) => existsSync(c) && statSync(c).isFile())
}

/** Module graph: absolute path -> sorted absolute paths it imports (only files of the tree). */
export function buildGraph(dir) {
  const files = listTsFiles(dir)
  const inTree = new Set(files)
  const graph = new Map()
  for (const file of files) {
    const deps = new Set()
    for (const spec of importSpecifiers(readFileSync(file, 'utf8'))) {
      const target = resolveSpecifier(file, spec)
      if (target && inTree.has(target)) deps.add(target)
    }
    graph.set(file, [...deps].sort())
  }
  return graph
}

/** Tarjan's strongly connected components; iterative so a deep import chain cannot overflow the stack. */
export function stronglyConnected(graph) {
  let index = 0
  const idx = new Map()
  const low = new Map()
  const onStack = new Set()
  const stack = []
  const components = []
  for (const root of graph.keys()) {
    if (idx.has(root)) continue
    const work = [[root, 0]]
    idx.set(root, index)
    low.set(root, index)
    index++
    stack.push(root)
    onStack.add(root)
    while (work.length > 0) {
      const frame = work[work.length - 1]
      const [v, i] = frame
      const deps = graph.get(v) ?? []
      if (i < deps.length) {
        frame[1]++
        const w = deps[i]
        if (!idx.has(w)) {
          idx.set(w, index)
          low.set(w, index)
          index++
          stack.push(w)
          onStack.add(w)
          work.push([w, 0])
        } else if (onStack.has(w)) {
          low.set(v, Math.min(low.get(v), idx.get(w)))
        }
        continue
      }
      work.pop()
      if (work.length > 0) {
        const parent = work[work.length - 1][0]
        low.set(parent, Math.min(low.get(parent), low.get(v)))
      }
      if (low.get(v) === idx.get(v)) {
        const comp = []
        let w
        do {
          w = stack.pop()
          onStack.delete(w)
          comp.push(w)
        } while (w !== v)
        components.push(comp.sort())
      }
    }
  }
  return components
}

/** Shortest cycle from start back to start inside the component (breadth first), as a node list start..start. */
function shortestCycle(graph, members, start) {
  const prev = new Map()
  const queue = [start]
  const seen = new Set([start])
  while (queue.length > 0) {
    const v = queue.shift()
    for (const w of graph.get(v) ?? []) {
      if (!members.has(w)) continue
      if (w === start) {
        const path = [start]
        for (let x = v; x !== start; x = prev.get(x)) path.splice(1, 0, x)
        path.push(start)
        return path
      }
      if (!seen.has(w)) {
        seen.add(w)
        prev.set(w, v)
        queue.push(w)
      }
    }
  }
  return undefined
}

/**
 * The import cycles of the `.ts` tree under dir: each cycle a list of paths relative to dir, first
 * path repeated at the end. Empty when the tree has none.
 */
export function findCycles(dir) {
  const root = resolve(dir)
  const graph = buildGraph(root)
  const rel = (p) => relative(root, p).split(sep).join('/')
  const cycles = []
  for (const comp of stronglyConnected(graph)) {
    const selfLoop = comp.length === 1 && (graph.get(comp[0]) ?? []).includes(comp[0])
    if (comp.length < 2 && !selfLoop) continue
    const members = new Set(comp)
    const covered = new Set()
    for (const start of comp) {
      if (covered.has(start)) continue
      const cycle = shortestCycle(graph, members, start)
      if (!cycle) continue
      for (const p of cycle) covered.add(p)
      cycles.push(cycle.map(rel))
    }
  }
  return cycles
}

function main() {
  const repo = join(dirname(fileURLToPath(import.meta.url)), '..')
  const dir = process.argv[2] ? resolve(process.argv[2]) : join(repo, 'src')
  const cycles = findCycles(dir)
  const shown = relative(process.cwd(), dir) || '.'
  if (cycles.length === 0) {
    console.log(`check-cycles: no import cycle in ${shown}`)
    return 0
  }
  console.error(`check-cycles: ${cycles.length} import cycle(s) in ${shown} (type-only imports count):`)
  for (const c of cycles) console.error(`  ${c.join(' -> ')}`)
  return 1
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exit(main())
