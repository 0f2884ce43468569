import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parseEnv } from 'node:util'

import { ConfigError } from '../errors/index.js'
import type { Config, IotEngine, UniversalEngine } from './types.js'
import { type VarKind, type VarName, VARIABLES, type VarSpec } from './variables.js'

export interface LoadConfigInput {
  /** The process environment (the only place that passes `process.env` is the CLI entry). */
  env: Readonly<Record<string, string | undefined>>
  /** Folder whose `.env` is read (lowest layer above defaults); undefined = no `.env`. */
  cwd?: string
  /** Values from command-line flags, by variable name (highest layer). */
  overrides?: Partial<Record<VarName, string | number | boolean | undefined>>
}

export interface LoadedConfig {
  config: Config
  warnings: string[]
}

type Raw = { name: string; value: string; from: 'flag' | 'env' | '.env' | 'default' }

const TRUE = new Set(['1', 'true', 'yes', 'on'])
const FALSE = new Set(['0', 'false', 'no', 'off', ''])

/** Masks a secret for problem lines: never print more than its length. */
export function maskSecret(value: string): string {
  return value === '' ? '""' : `"****" (${value.length} characters)`
}

function describeKind(kind: VarKind): string {
  switch (kind.type) {
    case 'string':
      return 'a string'
    case 'url':
      return `a URL with scheme ${kind.schemes.map((s) => `${s}://`).join(', ')}`
    case 'int':
      return `an integer${kind.min !== undefined ? ` >= ${kind.min}` : ''}${kind.max !== undefined ? ` <= ${kind.max}` : ''}`
    case 'number':
      return `a number${kind.min !== undefined ? ` >= ${kind.min}` : ''}${kind.max !== undefined ? ` <= ${kind.max}` : ''}`
    case 'bool':
      return 'true/false (also 1/0, yes/no, on/off)'
    case 'enum':
      return `one of ${kind.values.join(', ')}`
    case 'duration':
      return 'a duration such as 30s, 5m, 1h'
  }
}

type Parsed = string | number | boolean | undefined

function parseValue(kind: VarKind, raw: string): { ok: true; value: Parsed } | { ok: false } {
  const text = raw.trim()
  switch (kind.type) {
    case 'string':
      return { ok: true, value: raw }
    case 'url': {
      if (text === '') return { ok: true, value: undefined }
      const scheme = /^([a-z][a-z0-9.+-]*):\/\//i.exec(text)?.[1]?.toLowerCase().split('+')[0]
      return scheme !== undefined && kind.schemes.includes(scheme) ? { ok: true, value: text } : { ok: false }
    }
    case 'int': {
      if (!/^[+-]?\d+$/.test(text)) return { ok: false }
      const n = Number(text)
      if (!Number.isSafeInteger(n) || (kind.min !== undefined && n < kind.min) || (kind.max !== undefined && n > kind.max)) return { ok: false }
      return { ok: true, value: n }
    }
    case 'number': {
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return { ok: false }
      const n = Number(text)
      if (!Number.isFinite(n) || (kind.min !== undefined && n < kind.min) || (kind.max !== undefined && n > kind.max)) return { ok: false }
      return { ok: true, value: n }
    }
    case 'bool': {
      const lower = text.toLowerCase()
      if (TRUE.has(lower)) return { ok: true, value: true }
      if (FALSE.has(lower)) return { ok: true, value: false }
      return { ok: false }
    }
    case 'enum':
      return text === '' ? { ok: true, value: undefined } : kind.values.includes(text) ? { ok: true, value: text } : { ok: false }
    case 'duration': {
      const seconds = parseDurationSeconds(text)
      return seconds === undefined ? { ok: false } : { ok: true, value: seconds }
    }
  }
}

/** Parses `90`, `30s`, `5m`, `1h`, `2d`, `500ms` into seconds. */
export function parseDurationSeconds(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(text.trim())
  if (!m) return undefined
  const n = Number(m[1])
  const unit = (m[2] ?? 's').toLowerCase()
  const factor = unit === 'ms' ? 0.001 : unit === 's' ? 1 : unit === 'm' ? 60 : unit === 'h' ? 3600 : 86400
  return n * factor
}

function readDotEnv(cwd: string | undefined): Record<string, string> {
  if (cwd === undefined) return {}
  const path = resolve(cwd, '.env')
  if (!existsSync(path)) return {}
  try {
    return parseEnv(readFileSync(path, 'utf8')) as Record<string, string>
  } catch (err) {
    throw new ConfigError([`.env: cannot be read (${(err as Error).message})`])
  }
}

/**
 * Builds the one typed, validated Config from flags > environment > `.env` > defaults.
 * Every problem is collected and thrown together as a ConfigError (exit 2), one line each,
 * naming the variable, its value (secrets masked) and what is expected.
 */
export function loadConfig(input: LoadConfigInput): LoadedConfig {
  const dotenv = readDotEnv(input.cwd)
  const problems: string[] = []
  const warnings: string[] = []
  const values = new Map<VarName, Parsed>()
  const explicit = new Set<VarName>()

  for (const [name, specRaw] of Object.entries(VARIABLES) as [VarName, VarSpec][]) {
    const spec: VarSpec = specRaw
    const override = input.overrides?.[name]
    let raw: Raw | undefined
    if (override !== undefined) raw = { name: `--flag (${name})`, value: String(override), from: 'flag' }
    for (const candidate of [name, ...(spec.aliases ?? [])]) {
      if (raw) break
      const v = input.env[candidate]
      if (v !== undefined) raw = { name: candidate, value: v, from: 'env' }
    }
    for (const candidate of [name, ...(spec.aliases ?? [])]) {
      if (raw) break
      const v = dotenv[candidate]
      if (v !== undefined) raw = { name: candidate, value: v, from: '.env' }
    }
    if (raw && raw.from !== 'default') explicit.add(name)
    if (raw && spec.removed !== undefined) {
      // Off is what the legacy default meant and is the only behaviour left, so a legacy .env that
      // spells it out still starts; asking for the removed behaviour fails rather than being silently dropped.
      const off = parseValue({ type: 'bool' }, raw.value)
      if (off.ok && off.value === false) warnings.push(`${raw.name}=${raw.value.trim()} is accepted: off is the only behaviour now (${spec.removed}); the variable can be removed`)
      else problems.push(`${raw.name}: ${JSON.stringify(raw.value)} is no longer supported: ${spec.removed}; unset it or set it to 0`)
      continue
    }
    if (raw && spec.ignored !== undefined) {
      warnings.push(`${raw.name} is accepted and ignored: ${spec.ignored}; the variable can be removed`)
      continue
    }
    const text = raw?.value ?? spec.default
    if (text === undefined) continue
    const parsed = parseValue(spec.kind, text)
    if (!parsed.ok) {
      const shown = spec.secret ? maskSecret(text) : JSON.stringify(text)
      problems.push(`${raw?.name ?? name}: ${shown} is not valid: expected ${describeKind(spec.kind)}`)
      continue
    }
    values.set(name, parsed.value)
  }

  const get = <T extends Parsed>(name: VarName): T => values.get(name) as T
  const opt = (name: VarName): string | undefined => {
    const v = values.get(name)
    return typeof v === 'string' && v !== '' ? v : undefined
  }

  // Database URLs, by scheme (a `+driver` suffix such as postgresql+psycopg2:// is stripped).
  const databaseUrl = opt('DATABASE_URL')
  const dbScheme = databaseUrl === undefined ? undefined : /^([a-z0-9.]+)/i.exec(databaseUrl.split('+')[0] ?? '')?.[1]?.toLowerCase()
  const postgresUrl = normalisePostgresUrl(opt('POSTGRES_URL') ?? (dbScheme === 'postgres' || dbScheme === 'postgresql' ? databaseUrl : undefined))
  const mssqlUrl = opt('MSSQL_URL') ?? (dbScheme === 'mssql' || dbScheme === 'sqlserver' ? databaseUrl : undefined)
  const dbVarsSet = (['DB_HOST', 'DB_USER', 'DB_PASSWORD', 'DB_NAME', 'DB_PORT'] as const).some((n) => explicit.has(n))
  const sqlServerConfigured = mssqlUrl !== undefined || dbVarsSet

  const universal: UniversalEngine = (opt('INGEST_STORAGE') as UniversalEngine | undefined) ?? (postgresUrl !== undefined ? 'postgres' : 'sqlite')
  const iot: IotEngine = (opt('IOT_STORAGE') as IotEngine | undefined) ?? (sqlServerConfigured ? 'sqlserver' : universal)
  if ((universal === 'postgres' || iot === 'postgres') && postgresUrl === undefined) {
    problems.push(`${universal === 'postgres' ? 'INGEST_STORAGE' : 'IOT_STORAGE'}: "postgres" needs a PostgreSQL URL: set POSTGRES_URL or DATABASE_URL=postgres://...`)
  }
  if (iot === 'sqlserver' && !sqlServerConfigured) {
    problems.push('IOT_STORAGE: "sqlserver" needs MSSQL_URL, a mssql:// DATABASE_URL, or DB_HOST/DB_USER/DB_PASSWORD/DB_NAME')
  }
  if (get<boolean>('IOT_MSSQL_PROCEDURE') && iot !== 'sqlserver') {
    problems.push('IOT_MSSQL_PROCEDURE: "true" needs the IoT store on SQL Server (IOT_STORAGE=sqlserver)')
  }
  if (get<string>('DLQ_BACKEND') === 'redis' && (opt('REDIS_URL') === undefined || !get<boolean>('REDIS_ENABLED'))) {
    problems.push('DLQ_BACKEND: "redis" needs REDIS_URL (and REDIS_ENABLED not false)')
  }

  // A group or prefix holding a wildcard would subscribe to other tenants' topics.
  if (/[/+#]/.test(get<string>('MQTT_SHARED_GROUP')) || get<string>('MQTT_SHARED_GROUP') === '') problems.push('MQTT_SHARED_GROUP: must be a non-empty name without /, + or #')
  // `none` = plain filters, which every connection would receive in full: one connection. The default
  // count follows; a count asked for explicitly is refused rather than silently cut to 1 (a throughput surprise).
  const plainGroup = get<string>('MQTT_SHARED_GROUP').toLowerCase() === 'none'
  if (plainGroup && explicit.has('MQTT_CONNECTIONS') && get<number>('MQTT_CONNECTIONS') > 1) {
    problems.push(`MQTT_SHARED_GROUP: "none" (plain subscriptions, nothing lost across a broker restart) takes one connection, each would receive every message; MQTT_CONNECTIONS (--connections) is ${get<number>('MQTT_CONNECTIONS')}: set it to 1 or leave it unset`)
  }
  if (/[+#]/.test(get<string>('MQTT_TOPIC_PREFIX'))) problems.push('MQTT_TOPIC_PREFIX: must not contain the wildcards + or #')
  if (problems.length > 0) throw new ConfigError(problems)
  warnings.push(...adjustLegacyValues(values, explicit))

  const dataDir = resolve(input.cwd ?? '.', get<string>('INGEST_DATA_DIR'))
  const redisUrl = get<boolean>('REDIS_ENABLED') ? opt('REDIS_URL') : undefined
  const taylorDefault = get<boolean>('ML_USE_TAYLOR_PREDICTOR') || /taylor/i.test(get<string>('ML_DEFAULT_ENGINE'))

  const config: Config = {
    dataDir,
    storage: {
      universal,
      iot,
      postgresUrl,
      mssql: sqlServerConfigured
        ? {
            url: mssqlUrl,
            host: get<string>('DB_HOST'),
            port: get<number>('DB_PORT'),
            user: get<string>('DB_USER'),
            password: get<string>('DB_PASSWORD'),
            database: get<string>('DB_NAME'),
            encrypt: get<boolean>('DB_ENCRYPT'),
            trustServerCertificate: get<boolean>('DB_TRUST_SERVER_CERTIFICATE'),
            useProcedure: get<boolean>('IOT_MSSQL_PROCEDURE'),
          }
        : undefined,
      poolMax: get<number>('DB_POOL_MAX'),
      connectTimeoutMs: get<number>('DB_CONNECT_TIMEOUT_MS'),
      queryTimeoutMs: get<number>('DB_QUERY_TIMEOUT_MS'),
      statementTimeoutMs: get<number>('DB_STATEMENT_TIMEOUT_MS'),
    },
    http: {
      host: get<string>('HOST'),
      port: get<number>('PORT'),
      trustProxy: get<boolean>('TRUST_PROXY'),
      bodyLimitBytes: get<number>('HTTP_BODY_LIMIT_BYTES'),
      maxJsonDepth: get<number>('HTTP_MAX_JSON_DEPTH'),
      maxItems: get<number>('HTTP_MAX_ITEMS'),
      shutdownTimeoutSeconds: get<number>('SHUTDOWN_TIMEOUT_SECONDS'),
      idempotencyTtlHours: get<number>('IDEMPOTENCY_TTL_HOURS'),
    },
    auth: {
      ingestApiKey: opt('INGEST_API_KEY'),
      allowUnauthenticated: get<boolean>('INGEST_ALLOW_UNAUTHENTICATED'),
      legacyApiKeyAllowed: get<boolean>('LEGACY_API_KEY_ALLOWED'),
      metricsApiKey: opt('METRICS_API_KEY'),
    },
    rateLimit: {
      enabled: get<boolean>('RATE_LIMIT_ENABLED'),
      sensorPerMin: get<number>('RATE_LIMIT_SENSOR_PER_MIN'),
      devicePerMin: get<number>('RATE_LIMIT_DEVICE_PER_MIN'),
      globalPerMin: get<number>('RATE_LIMIT_GLOBAL_PER_MIN'),
    },
    resolver: {
      ttlSeconds: get<number>('SENSOR_MAP_TTL_SECONDS'),
      negativeTtlSeconds: get<number>('SENSOR_NEGATIVE_TTL_SECONDS'),
    },
    ingest: {
      batchMaxSize: get<number>('BATCH_MAX_SIZE'),
      bufferSize: get<number>('BATCH_BUFFER_SIZE'),
      flushIntervalMs: get<number>('BATCH_FLUSH_INTERVAL') * 1000,
      flushConcurrency: get<number>('BATCH_FLUSH_CONCURRENCY'),
      maxFutureSkewSeconds: get<number>('MAX_FUTURE_SKEW_SECONDS'),
      maxAgeDays: get<number>('MAX_AGE_DAYS'),
      staleAfterSeconds: get<number>('STALE_AFTER_SECONDS'),
      streamConfigTtlSeconds: get<number>('STREAM_CONFIG_TTL_SECONDS'),
      storeMaxRetries: get<number>('SP_MAX_RETRIES'),
      commitTimeoutMs: get<number>('INGEST_COMMIT_TIMEOUT_SECONDS') * 1000,
      internalApiKey: opt('INTERNAL_API_KEY'),
      backendUrl: get<string>('BACKEND_URL'),
    },
    redis: { url: redisUrl, keyPrefix: get<string>('REDIS_KEY_PREFIX') },
    dedup: { enabled: get<boolean>('DEDUP_ENABLED'), ttlSeconds: get<number>('DEDUP_TTL_SECONDS') },
    dlq: {
      enabled: get<boolean>('DLQ_ENABLED'),
      backend: get<'local' | 'redis'>('DLQ_BACKEND'),
      streamName: get<string>('DLQ_STREAM_NAME'),
      maxLen: get<number>('DLQ_MAX_LEN'),
      maxRetries: get<number>('DLQ_MAX_RETRIES'),
      consumerBatchSize: get<number>('DLQ_CONSUMER_BATCH_SIZE'),
      consumerIntervalSeconds: get<number>('DLQ_CONSUMER_INTERVAL_SEC'),
    },
    breaker: {
      enabled: get<boolean>('ML_INGEST_CIRCUIT_BREAKER_ENABLED'),
      failureThreshold: get<number>('CB_FAILURE_THRESHOLD'),
      recoveryTimeoutSeconds: get<number>('CB_RECOVERY_TIMEOUT'),
      successThreshold: get<number>('CB_SUCCESS_THRESHOLD'),
      openAction: get<'503' | 'dlq'>('CB_OPEN_ACTION'),
    },
    features: {
      mqttIngest: get<boolean>('FF_MQTT_INGEST_ENABLED'),
      mqttUniversal: get<boolean>('FF_MQTT_UNIVERSAL') || get<boolean>('FF_MQTT_MULTI_DOMAIN'),
      websocket: get<boolean>('FF_WEBSOCKET_ENABLED'),
      csv: get<boolean>('FF_CSV_ENABLED'),
    },
    csvUpload: { maxBytes: get<number>('CSV_UPLOAD_MAX_BYTES') },
    websocket: {
      maxPayloadBytes: get<number>('WS_MAX_PAYLOAD_BYTES'),
      maxInFlight: get<number>('WS_MAX_IN_FLIGHT'),
      maxBufferedBytes: get<number>('WS_MAX_BUFFERED_BYTES'),
      slowClientTimeoutMs: get<number>('WS_SLOW_CLIENT_TIMEOUT_SECONDS') * 1000,
      pingIntervalMs: get<number>('WS_PING_INTERVAL_SECONDS') * 1000,
      pongTimeoutMs: get<number>('WS_PONG_TIMEOUT_SECONDS') * 1000,
      connectTimeoutMs: get<number>('WS_CONNECT_TIMEOUT_SECONDS') * 1000,
    },
    mqtt: {
      url: opt('MQTT_URL') ?? `mqtt://${get<string>('MQTT_BROKER_HOST')}:${get<number>('MQTT_BROKER_PORT')}`,
      username: opt('MQTT_USERNAME'),
      password: opt('MQTT_PASSWORD'),
      caFile: opt('MQTT_CA_FILE') === undefined ? undefined : resolve(input.cwd ?? '.', get<string>('MQTT_CA_FILE')),
      clientId: opt('MQTT_CLIENT_ID'),
      connections: plainGroup ? 1 : get<number>('MQTT_CONNECTIONS'),
      sharedGroup: plainGroup ? 'none' : get<string>('MQTT_SHARED_GROUP'),
      topicPrefix: get<string>('MQTT_TOPIC_PREFIX'),
      keepaliveSeconds: get<number>('MQTT_KEEPALIVE_SECONDS'),
      statsLogIntervalSeconds: get<number>('MQTT_STATS_LOG_INTERVAL_SECONDS'),
    },
    ml: {
      publishMinIntervalSeconds: get<number>('ML_PUBLISH_MIN_INTERVAL_SECONDS'),
      streamMaxLen: get<number>('ML_STREAM_MAXLEN'),
      explainerUrl: get<string>('AI_EXPLAINER_URL').replace(/\/+$/, ''),
      defaultEngine: taylorDefault ? 'taylor' : 'baseline',
      taylorOrder: get<number>('ML_TAYLOR_ORDER'),
      taylorHorizon: get<number>('ML_TAYLOR_HORIZON'),
      taylorSensorWhitelist: (opt('ML_TAYLOR_SENSOR_WHITELIST') ?? '').split(',').map((s) => s.trim()).filter(Boolean).map(Number).filter(Number.isSafeInteger),
      parallelWorkers: get<number>('ML_BATCH_PARALLEL_WORKERS'),
    },
    logLevel: get<Config['logLevel']>('LOG_LEVEL'),
    secrets: collectSecrets(values),
  }
  return { config: Object.freeze(config), warnings }
}

/**
 * Values that the legacy service gave another meaning and that would not work as they are here: the
 * effective value is set in `values` and each change (or trap) is one warning naming the value used.
 */
function adjustLegacyValues(values: Map<VarName, Parsed>, explicit: ReadonlySet<VarName>): string[] {
  const warnings: string[] = []
  const num = (name: VarName): number => values.get(name) as number
  // A queue smaller than one request could never accept a full-size request. The legacy default (100)
  // sized the BatchInserter's buffer, which no live path used; the smallest queue that works is the
  // largest request, so the small bound the value asked for is kept as far as it can be.
  const buffer = num('BATCH_BUFFER_SIZE')
  const maxItems = num('HTTP_MAX_ITEMS')
  if (buffer < maxItems) {
    values.set('BATCH_BUFFER_SIZE', maxItems)
    const shown = explicit.has('BATCH_BUFFER_SIZE') ? `BATCH_BUFFER_SIZE=${buffer}` : `BATCH_BUFFER_SIZE (default ${buffer})`
    warnings.push(
      `${shown} is smaller than HTTP_MAX_ITEMS=${maxItems}, so a full-size request could never be queued: using BATCH_BUFFER_SIZE=${maxItems} ` +
        `(it bounds the items waiting for commit; default ${VARIABLES.BATCH_BUFFER_SIZE.default}; set it to ${maxItems} or more to silence this warning)`,
    )
  }
  // The legacy interval was a background timer nobody waited on; here every answer waits for its commit.
  const linger = num('BATCH_FLUSH_INTERVAL')
  if (linger > 1) {
    warnings.push(`BATCH_FLUSH_INTERVAL=${linger}: a flush lingers up to ${linger} s for more items and every answer waits for its commit, so requests may take ${linger} s; 0 (the default) flushes as soon as the previous flush ended`)
  }
  return warnings
}

/** `postgresql+psycopg2://` (SQLAlchemy style) becomes `postgresql://`. */
function normalisePostgresUrl(url: string | undefined): string | undefined {
  return url?.replace(/^(postgres(?:ql)?)\+[a-z0-9_]+:\/\//i, '$1://')
}

function collectSecrets(values: Map<VarName, Parsed>): string[] {
  const out: string[] = []
  for (const [name, spec] of Object.entries(VARIABLES) as [VarName, VarSpec][]) {
    const v = values.get(name)
    if (spec.secret && typeof v === 'string' && v.length >= 4) {
      out.push(v)
      const password = /^[a-z+]+:\/\/[^:/@]*:([^@]+)@/i.exec(v)?.[1]
      if (password) out.push(password, decodeURIComponent(password))
    }
  }
  return out
}

/** The CLI entry's way in: the process environment and ./.env of the working directory. */
export function loadConfigFromProcess(overrides: LoadConfigInput['overrides'] = {}): LoadedConfig {
  return loadConfig({ env: process.env, cwd: process.cwd(), overrides })
}
