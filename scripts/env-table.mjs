#!/usr/bin/env node
// Generates the README's environment variable table from src/lib/config/variables.ts, the one table
// that also drives configuration parsing, so the documentation cannot drift from the code.
//
//   node scripts/env-table.mjs           print the table (markdown) to stdout
//   node scripts/env-table.mjs --write   rewrite the block between the README markers in place
//   node scripts/env-table.mjs --check   exit 1 when the README block is out of date
//
// Plain Node, no dependencies: variables.ts is read as text and its `VARIABLES` object literal is
// parsed by a small tokenizer that understands exactly the constructs that file uses (string, number,
// boolean literals, arrays, objects, the helper constants and calls declared above the table). Anything
// else is an error naming the variable, rather than a silently wrong table.
import { readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')
const SOURCE = join(ROOT, 'src/lib/config/variables.ts')
const README = join(ROOT, 'README.md')
const START = '<!-- env-table:start -->'
const END = '<!-- env-table:end -->'

const GROUP_TITLES = {
  storage: 'Databases and storage',
  http: 'HTTP server and logging',
  auth: 'Authentication and rate limits',
  ingest: 'Ingest path',
  resilience: 'Redis, dedup, dead-letter queue, circuit breaker',
  mqtt: 'Transports and MQTT',
  ml: 'ML stream and jobs',
  removed: 'Removed (off is accepted with a warning; turning one on is a configuration error)',
}

// ---------------------------------------------------------------- tokenizer

function tokenize(text) {
  const tokens = []
  let i = 0
  while (i < text.length) {
    const c = text[i]
    if (/\s/.test(c)) {
      i++
    } else if (text.startsWith('//', i)) {
      const end = text.indexOf('\n', i)
      i = end === -1 ? text.length : end
    } else if (text.startsWith('/*', i)) {
      const end = text.indexOf('*/', i + 2)
      if (end === -1) throw new Error('unterminated comment')
      i = end + 2
    } else if (c === "'" || c === '"') {
      let value = ''
      let j = i + 1
      for (; j < text.length && text[j] !== c; j++) {
        if (text[j] === '\n') throw new Error(`unterminated string at offset ${i}`)
        if (text[j] === '\\') {
          j++
          const e = text[j]
          value += e === 'n' ? '\n' : e === 't' ? '\t' : e
        } else {
          value += text[j]
        }
      }
      if (j >= text.length) throw new Error(`unterminated string at offset ${i}`)
      tokens.push({ type: 'string', value, at: i })
      i = j + 1
    } else if (c === '`') {
      const end = text.indexOf('`', i + 1)
      const raw = text.slice(i + 1, end)
      if (end === -1) throw new Error(`unterminated template at offset ${i}`)
      tokens.push({ type: 'template', value: raw, at: i })
      i = end + 1
    } else if (/[0-9]/.test(c) || (c === '-' && /[0-9]/.test(text[i + 1] ?? ''))) {
      const m = /^-?[0-9][0-9_]*(\.[0-9_]+)?([eE][+-]?[0-9]+)?/.exec(text.slice(i))
      tokens.push({ type: 'number', value: Number(m[0].replaceAll('_', '')), at: i })
      i += m[0].length
    } else if (/[A-Za-z_$]/.test(c)) {
      const m = /^[A-Za-z_$][A-Za-z0-9_$]*/.exec(text.slice(i))
      tokens.push({ type: 'ident', value: m[0], at: i })
      i += m[0].length
    } else if (text.startsWith('...', i)) {
      tokens.push({ type: 'punct', value: '...', at: i })
      i += 3
    } else {
      tokens.push({ type: 'punct', value: c, at: i })
      i++
    }
  }
  return tokens
}

// ---------------------------------------------------------------- parser of the VARIABLES literal

/** Values of the helper constants and functions declared above VARIABLES in variables.ts. */
const HELPERS = {
  consts: {
    str: { type: 'string' },
    bool: { type: 'bool' },
  },
  calls: {
    int: (min, max) => ({ type: 'int', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) }),
    num: (min, max) => ({ type: 'number', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) }),
    ignoredVar: (group, why) => ({ kind: { type: 'string' }, group, ignored: why, description: `accepted and ignored (${why})` }),
  },
}

class Parser {
  constructor(tokens, context) {
    this.tokens = tokens
    this.pos = 0
    this.context = context
  }

  fail(message) {
    const t = this.tokens[this.pos]
    throw new Error(`${this.context()}: ${message} (at token ${JSON.stringify(t?.value ?? 'end of input')})`)
  }

  peek(offset = 0) {
    return this.tokens[this.pos + offset]
  }

  isPunct(value) {
    const t = this.peek()
    return t !== undefined && t.type === 'punct' && t.value === value
  }

  expect(value) {
    if (!this.isPunct(value)) this.fail(`expected "${value}"`)
    this.pos++
  }

  value() {
    const t = this.peek()
    if (t === undefined) this.fail('unexpected end of input')
    if (t.type === 'string' || t.type === 'number') {
      this.pos++
      return t.value
    }
    if (t.type === 'template') {
      if (t.value.includes('${')) this.fail('template literals with substitutions are not supported')
      this.pos++
      return t.value
    }
    if (t.type === 'punct' && t.value === '{') return this.object()
    if (t.type === 'punct' && t.value === '[') return this.array()
    if (t.type === 'ident') {
      this.pos++
      if (t.value === 'true') return true
      if (t.value === 'false') return false
      if (t.value === 'undefined') return undefined
      if (this.isPunct('(')) {
        const fn = HELPERS.calls[t.value]
        if (fn === undefined) this.fail(`unknown helper ${t.value}(); teach scripts/env-table.mjs about it`)
        this.pos++
        const args = []
        while (!this.isPunct(')')) {
          args.push(this.value())
          if (!this.isPunct(')')) this.expect(',')
        }
        this.pos++
        return fn(...args)
      }
      if (Object.hasOwn(HELPERS.consts, t.value)) return HELPERS.consts[t.value]
      this.pos--
      this.fail(`unknown identifier ${t.value}; teach scripts/env-table.mjs about it`)
    }
    return this.fail('unexpected token')
  }

  array() {
    this.expect('[')
    const out = []
    while (!this.isPunct(']')) {
      out.push(this.value())
      if (!this.isPunct(']')) this.expect(',')
    }
    this.pos++
    // `as const` after an array or object literal
    this.skipAsConst()
    return out
  }

  key() {
    const t = this.peek()
    if (t === undefined || (t.type !== 'ident' && t.type !== 'string')) this.fail('expected a property name')
    this.pos++
    return t.value
  }

  object(onEntry) {
    this.expect('{')
    const out = {}
    while (!this.isPunct('}')) {
      if (this.isPunct('...')) this.fail('spread in an object literal is not supported')
      const key = this.key()
      if (Object.hasOwn(out, key)) this.fail(`duplicate key ${key}`)
      this.expect(':')
      onEntry?.(key)
      out[key] = this.value()
      if (!this.isPunct('}')) this.expect(',')
    }
    this.pos++
    this.skipAsConst()
    return out
  }

  skipAsConst() {
    const a = this.peek()
    const b = this.peek(1)
    if (a?.type === 'ident' && a.value === 'as' && b?.type === 'ident' && b.value === 'const') this.pos += 2
  }
}

/** Reads every entry of `export const VARIABLES = { ... }` in source order. */
export function readVariables(source) {
  const start = source.search(/export\s+const\s+VARIABLES\s*=\s*\{/)
  if (start === -1) throw new Error(`${SOURCE}: "export const VARIABLES = {" not found`)
  const tokens = tokenize(source.slice(source.indexOf('{', start)))
  let current = '(start of VARIABLES)'
  const parser = new Parser(tokens, () => `VARIABLES.${current}`)
  const table = parser.object((key) => {
    current = key
  })
  const entries = Object.entries(table)
  if (entries.length === 0) throw new Error('VARIABLES is empty')
  for (const [name, spec] of entries) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`VARIABLES.${name}: not an environment variable name`)
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw new Error(`VARIABLES.${name}: not an object`)
    for (const field of ['group', 'description']) {
      if (typeof spec[field] !== 'string' || spec[field] === '') throw new Error(`VARIABLES.${name}: missing ${field}`)
    }
    if (spec.default !== undefined && typeof spec.default !== 'string') throw new Error(`VARIABLES.${name}: default must be a string`)
    if (spec.aliases !== undefined && !(Array.isArray(spec.aliases) && spec.aliases.every((a) => typeof a === 'string'))) {
      throw new Error(`VARIABLES.${name}: aliases must be strings`)
    }
  }
  return entries.map(([name, spec]) => ({
    name,
    kind: spec.kind,
    default: spec.default,
    aliases: spec.aliases ?? [],
    secret: spec.secret === true,
    ignored: spec.ignored,
    removed: spec.removed,
    group: spec.group,
    description: spec.description,
  }))
}

// ---------------------------------------------------------------- markdown

function cell(text) {
  return text.replaceAll('\\', '\\\\').replaceAll('|', '\\|').replaceAll('\n', ' ')
}

function code(text) {
  return `\`${text}\``
}

function defaultCell(v) {
  if (v.removed !== undefined || v.ignored !== undefined) return '–'
  if (v.default === undefined) return 'unset'
  if (v.default === '') return 'empty'
  return code(v.default)
}

function meaningCell(v) {
  const parts = []
  if (v.removed !== undefined) {
    parts.push(`**removed**: ${v.removed}; ${['0', 'false', 'no', 'off'].map(code).join('/')} (the legacy default) is accepted with a warning, any other value is a configuration error`)
  } else if (v.ignored !== undefined) {
    parts.push(`**accepted and ignored** (a warning is logged): ${v.ignored}`)
  } else {
    parts.push(v.description)
    if (v.kind?.type === 'enum' && Array.isArray(v.kind.values)) parts.push(`one of ${v.kind.values.map(code).join(', ')}`)
  }
  if (v.aliases.length > 0) parts.push(`alias: ${v.aliases.map(code).join(', ')}`)
  if (v.secret) parts.push('**secret** (masked in logs and errors)')
  return cell(parts.join('; '))
}

export function renderTable(variables) {
  const groups = new Map()
  for (const v of variables) {
    if (!groups.has(v.group)) groups.set(v.group, [])
    groups.get(v.group).push(v)
  }
  const lines = []
  for (const [group, vars] of groups) {
    if (lines.length > 0) lines.push('')
    lines.push(`### ${GROUP_TITLES[group] ?? group}`, '', '| variable | default | meaning |', '|---|---|---|')
    for (const v of vars) lines.push(`| ${code(v.name)} | ${defaultCell(v)} | ${meaningCell(v)} |`)
  }
  return `${lines.join('\n')}\n`
}

export function generate() {
  return renderTable(readVariables(readFileSync(SOURCE, 'utf8')))
}

/** The README with its env-table block replaced by `table`. */
export function replaceBlock(readme, table) {
  const start = readme.indexOf(START)
  const end = readme.indexOf(END)
  if (start === -1 || end === -1 || end < start) throw new Error(`README.md: markers ${START} ... ${END} not found`)
  return `${readme.slice(0, start + START.length)}\n${table}${readme.slice(end)}`
}

function main(argv) {
  const table = generate()
  if (argv.includes('--write') || argv.includes('--check')) {
    const readme = readFileSync(README, 'utf8')
    const next = replaceBlock(readme, table)
    if (argv.includes('--check')) {
      if (next !== readme) {
        process.stderr.write('README.md: the environment variable table is out of date; run: node scripts/env-table.mjs --write\n')
        return 1
      }
      return 0
    }
    if (next !== readme) writeFileSync(README, next)
    process.stderr.write(`README.md: environment variable table ${next === readme ? 'already up to date' : 'rewritten'}\n`)
    return 0
  }
  process.stdout.write(table)
  return 0
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    process.exitCode = main(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`env-table: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exitCode = 1
  }
}
