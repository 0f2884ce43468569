import { readFile } from 'node:fs/promises'

import { parse as parseYaml, YAMLParseError } from 'yaml'

import { formatPath, type ApplyResult, RegistrySpecSchema, type RegistrySpec } from '../domain/registry.js'
import { UsageError, ValidationError } from '../errors/index.js'
import type { AppContext } from './context.js'

export interface ApplyRegistryOptions {
  file: string
  prune: boolean
  dryRun: boolean
}

function valueAt(doc: unknown, path: readonly PropertyKey[]): unknown {
  let cur = doc
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined
    cur = (cur as Record<PropertyKey, unknown>)[key]
  }
  return cur
}

/** Parses and validates an apply file (YAML or JSON); every problem is reported with its path. */
export function parseRegistryFile(text: string, file: string): RegistrySpec {
  let doc: unknown
  try {
    // JSON is YAML; parse with unique keys and no custom tags.
    doc = parseYaml(text, { uniqueKeys: true, prettyErrors: true, maxAliasCount: 100 })
  } catch (err) {
    const msg = err instanceof YAMLParseError ? err.message.split('\n')[0] : String(err)
    throw new ValidationError(`${file}: not valid YAML or JSON: ${msg}`, { problems: [`${file}: not valid YAML or JSON: ${msg}`] })
  }
  if (doc === null || doc === undefined) doc = {}
  const parsed = RegistrySpecSchema.safeParse(doc)
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      if (issue.code === 'unrecognized_keys') return `${formatPath(issue.path)}: unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`
      if (issue.code === 'invalid_type') {
        const input = valueAt(doc, issue.path)
        const got = input === undefined ? 'nothing' : input === null ? 'null' : Array.isArray(input) ? 'an array' : typeof input === 'string' ? `the string ${JSON.stringify(input)}` : typeof input
        return `${formatPath(issue.path)}: must be ${issue.expected === 'object' ? 'a mapping' : issue.expected === 'array' ? 'a list' : `a ${issue.expected}`}, got ${got}`
      }
      return `${formatPath(issue.path)}: ${issue.message}`
    })
    throw new ValidationError(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, { problems })
  }
  return parsed.data
}

/**
 * `ingest apply FILE`: declarative, idempotent registration. Devices go to the IoT store and streams
 * to the universal store, each in one transaction; an invalid file writes nothing.
 */
export async function applyRegistry(ctx: AppContext, options: ApplyRegistryOptions): Promise<ApplyResult & { dryRun: boolean }> {
  let text: string
  try {
    text = await readFile(options.file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${options.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err })
  }
  const spec = parseRegistryFile(text, options.file)
  const storeOptions = { prune: options.prune, dryRun: options.dryRun }
  const devices = spec.devices.length > 0 ? await ctx.iot.registry.applyDevices(spec.devices, storeOptions) : []
  const streams = spec.streams.length > 0 ? await ctx.universal.registry.applyStreams(spec.streams, storeOptions) : []
  ctx.logger.info({ devices: devices.length, streams: streams.length, dryRun: options.dryRun }, 'apply')
  return { devices, streams, dryRun: options.dryRun }
}
