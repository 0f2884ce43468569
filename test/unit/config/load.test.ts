import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterEach, describe, expect, it } from 'vitest'

import { loadConfig } from '../../../src/lib/config/index.js'
import { ConfigError } from '../../../src/lib/errors/index.js'
import { tempDir } from '../../helpers/services.js'

const load = (env: Record<string, string>, overrides = {}, cwd?: string) => loadConfig({ env, overrides, ...(cwd ? { cwd } : {}) })

function problems(fn: () => unknown): string[] {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError)
    expect((err as ConfigError).exitCode).toBe(2)
    return [...(err as ConfigError).problems]
  }
  throw new Error('expected a ConfigError')
}

describe('loadConfig', () => {
  const dirs: Array<{ remove: () => void }> = []
  afterEach(() => dirs.splice(0).forEach((d) => d.remove()))

  it('defaults to the embedded SQLite for both stores, with legacy defaults kept', () => {
    const { config, warnings } = load({})
    expect(config.storage).toMatchObject({ universal: 'sqlite', iot: 'sqlite', postgresUrl: undefined, mssql: undefined })
    expect(config.http).toMatchObject({ port: 8001, host: '127.0.0.1' })
    expect(config.rateLimit).toEqual({ enabled: true, sensorPerMin: 60, devicePerMin: 300, globalPerMin: 1000 })
    expect(config.dedup.ttlSeconds).toBe(300)
    expect(config.redis.url).toBeUndefined()
    expect(config.auth.ingestApiKey).toBeUndefined()
    expect(config.dataDir).toMatch(/^\//)
    expect(warnings).toEqual([])
  })

  it.each([
    [{ DATABASE_URL: 'postgres://u@h/db' }, 'postgres', 'postgres', 'postgres://u@h/db'],
    [{ DATABASE_URL: 'postgresql+psycopg2://u@h/db' }, 'postgres', 'postgres', 'postgresql://u@h/db'],
    [{ POSTGRES_URL: 'postgresql://a@h/x', DATABASE_URL: 'postgres://b@h/y' }, 'postgres', 'postgres', 'postgresql://a@h/x'],
    [{ DATABASE_URL: 'mssql://sa:pw@h:1433/iot' }, 'sqlite', 'sqlserver', undefined],
    [{ DB_HOST: 'legacy-host' }, 'sqlite', 'sqlserver', undefined],
    [{ POSTGRES_URL: 'postgres://u@h/db', MSSQL_URL: 'sqlserver://sa:pw@h/iot' }, 'postgres', 'sqlserver', 'postgres://u@h/db'],
    [{ POSTGRES_URL: 'postgres://u@h/db', IOT_STORAGE: 'sqlite' }, 'postgres', 'sqlite', 'postgres://u@h/db'],
    [{ POSTGRES_URL: 'postgres://u@h/db', INGEST_STORAGE: 'sqlite' }, 'sqlite', 'sqlite', 'postgres://u@h/db'],
  ])('chooses engines by URL scheme and override: %o', (env, universal, iot, pgUrl) => {
    const { config } = load(env)
    expect(config.storage.universal).toBe(universal)
    expect(config.storage.iot).toBe(iot)
    expect(config.storage.postgresUrl).toBe(pgUrl)
  })

  it('flags override env, env overrides .env, .env overrides defaults', () => {
    const dir = tempDir()
    dirs.push(dir)
    writeFileSync(join(dir.path, '.env'), 'PORT=7000\nHOST=10.0.0.1\nDEDUP_TTL_SECONDS=99\n')
    const { config } = load({ PORT: '7100', HOST: '0.0.0.0' }, { PORT: 7200 }, dir.path)
    expect(config.http.port).toBe(7200)
    expect(config.http.host).toBe('0.0.0.0')
    expect(config.dedup.ttlSeconds).toBe(99)
    expect(config.dataDir).toBe(join(dir.path, '.ingest'))
  })

  it('honours aliases (DLQ_MAX_SIZE, ML_INGEST_CB_*)', () => {
    const { config } = load({ DLQ_MAX_SIZE: '123', ML_INGEST_CB_FAILURE_THRESHOLD: '7', ML_INGEST_CB_TIMEOUT_SECONDS: '12' })
    expect(config.dlq.maxLen).toBe(123)
    expect(config.breaker.failureThreshold).toBe(7)
    expect(config.breaker.recoveryTimeoutSeconds).toBe(12)
  })

  it('lists every problem, one line each, naming the variable, its value and what is expected', () => {
    const lines = problems(() => load({ PORT: 'abc', RATE_LIMIT_ENABLED: 'maybe', DLQ_BACKEND: 'kafka', DB_POOL_MAX: '0' }))
    expect(lines).toEqual(
      expect.arrayContaining([
        'PORT: "abc" is not valid: expected an integer >= 0 <= 65535',
        'RATE_LIMIT_ENABLED: "maybe" is not valid: expected true/false (also 1/0, yes/no, on/off)',
        'DLQ_BACKEND: "kafka" is not valid: expected one of local, redis',
        'DB_POOL_MAX: "0" is not valid: expected an integer >= 1 <= 200',
      ]),
    )
    expect(lines).toHaveLength(4)
  })

  it('masks secrets in problem lines and collects them for redaction', () => {
    const lines = problems(() => load({ DATABASE_URL: 'mysql://root:hunter2@h/db' }))
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^DATABASE_URL: "\*\*\*\*" \(\d+ characters\) is not valid/)
    expect(lines.join()).not.toContain('hunter2')
    const { config } = load({ INGEST_API_KEY: 'k-123456', POSTGRES_URL: 'postgres://u:p%40ss@h/db' })
    expect(config.secrets).toEqual(expect.arrayContaining(['k-123456', 'p%40ss', 'p@ss']))
  })

  it('refuses removed variables turned on and warns about ignored ones', () => {
    expect(problems(() => load({ INGEST_DEBUG_FORCE_PERSIST: '1' }))[0]).toBe(
      'INGEST_DEBUG_FORCE_PERSIST: "1" is no longer supported: the debug write hook is gone (it let any client inject fake readings); unset it or set it to 0',
    )
    expect(problems(() => load({ INGEST_DEBUG_ERRORS: 'true' }))[0]).toMatch(/^INGEST_DEBUG_ERRORS: "true" is no longer supported/)
    const { warnings } = load({ DEVICE_AUTH_ENABLED: '1', API_KEY: 'x' })
    expect(warnings).toEqual([
      'DEVICE_AUTH_ENABLED is accepted and ignored: device authentication is always on; the variable can be removed',
      'API_KEY is accepted and ignored: the WebSocket uses role keys; the variable can be removed',
    ])
  })

  it.each(['0', 'false', 'no', 'off', 'FALSE', ''])('a removed debug variable set to off (%j, as a legacy .env has it) starts with a warning', (value) => {
    const { warnings } = load({ INGEST_DEBUG_ERRORS: value, INGEST_DEBUG_DB_IDENTITY: value, INGEST_DEBUG_FORCE_PERSIST: value })
    expect(warnings).toHaveLength(3)
    expect(warnings.find((w) => w.startsWith('INGEST_DEBUG_ERRORS='))).toBe(`INGEST_DEBUG_ERRORS=${value} is accepted: off is the only behaviour now (error details are logged, never sent to clients); the variable can be removed`)
    for (const w of warnings) expect(w).toMatch(/^INGEST_DEBUG_\w+=\S* is accepted: off is the only behaviour now/)
  })

  it('the legacy MQTT, TLS, dedup and Kalman variables are known: accepted and ignored with a warning', () => {
    const { warnings } = load({ FF_MQTT_INGEST_DUAL_MODE: 'false', MQTT_USE_TLS: 'false', MQTT_DEDUP_TTL_SECONDS: '60', ML_USE_KALMAN_FILTER: 'true' })
    expect(warnings.map((w) => w.split(' ')[0])).toEqual(['FF_MQTT_INGEST_DUAL_MODE', 'MQTT_USE_TLS', 'MQTT_DEDUP_TTL_SECONDS', 'ML_USE_KALMAN_FILTER'])
    for (const w of warnings) expect(w).toMatch(/ is accepted and ignored: /)
  })

  it('BATCH_BUFFER_SIZE=100 (the legacy default) is raised to HTTP_MAX_ITEMS with a warning that names the value used', () => {
    const { config, warnings } = load({ BATCH_BUFFER_SIZE: '100' })
    expect(config.ingest.bufferSize).toBe(10000)
    expect(warnings).toEqual([
      'BATCH_BUFFER_SIZE=100 is smaller than HTTP_MAX_ITEMS=10000, so a full-size request could never be queued: using BATCH_BUFFER_SIZE=10000 (it bounds the items waiting for commit; default 200000; set it to 10000 or more to silence this warning)',
    ])
    // The smallest queue that works is kept: a small bound asked for stays small when requests are small too.
    expect(load({ BATCH_BUFFER_SIZE: '100', HTTP_MAX_ITEMS: '100' })).toMatchObject({ config: { ingest: { bufferSize: 100 } }, warnings: [] })
    const raised = load({ HTTP_MAX_ITEMS: '500000' })
    expect(raised.config.ingest.bufferSize).toBe(500000)
    expect(raised.warnings[0]).toMatch(/^BATCH_BUFFER_SIZE \(default 200000\) is smaller than HTTP_MAX_ITEMS=500000/)
  })

  it('a legacy BATCH_FLUSH_INTERVAL (5.0) is kept and the wait it puts on every answer is logged', () => {
    const { config, warnings } = load({ BATCH_FLUSH_INTERVAL: '5.0' })
    expect(config.ingest.flushIntervalMs).toBe(5000)
    expect(warnings).toEqual([expect.stringMatching(/^BATCH_FLUSH_INTERVAL=5: a flush lingers up to 5 s .* requests may take 5 s/)])
    expect(load({ BATCH_FLUSH_INTERVAL: '0.5' }).warnings).toEqual([])
  })

  it.each(['true', 'TRUE', '1'])('FF_MQTT_INGEST_ENABLED=%s turns the in-process MQTT receivers on, without a warning', (value) => {
    const { config, warnings } = load({ FF_MQTT_INGEST_ENABLED: value })
    expect(config.features.mqttIngest).toBe(true)
    expect(warnings).toEqual([])
    expect(load({ FF_MQTT_INGEST_ENABLED: 'false' }).config.features.mqttIngest).toBe(false)
  })

  it('a legacy .env (reference §14 defaults, written out) starts, with one warning per value it cannot honour as written', () => {
    const dir = tempDir()
    dirs.push(dir)
    writeFileSync(
      join(dir.path, '.env'),
      [
        'BATCH_BUFFER_SIZE=100',
        'BATCH_MAX_SIZE=500',
        'INGEST_DEBUG_ERRORS=0',
        'INGEST_DEBUG_DB_IDENTITY=0',
        'FF_MQTT_INGEST_ENABLED=true',
        'FF_MQTT_INGEST_DUAL_MODE=false',
        'MQTT_USE_TLS=false',
        'MQTT_TOPIC_PREFIX=',
        'MQTT_DEDUP_TTL_SECONDS=300',
        'REDIS_ENABLED=true',
        'DLQ_MAX_LEN=10000',
        '',
      ].join('\n'),
    )
    const { config, warnings } = load({}, {}, dir.path)
    expect(config.ingest).toMatchObject({ bufferSize: 10000, batchMaxSize: 500 })
    expect(config.features.mqttIngest).toBe(true)
    expect(warnings.map((w) => /^[A-Z_]+/.exec(w)?.[0]).sort()).toEqual([
      'BATCH_BUFFER_SIZE',
      'FF_MQTT_INGEST_DUAL_MODE',
      'MQTT_USE_TLS',
      'MQTT_DEDUP_TTL_SECONDS',
      'INGEST_DEBUG_ERRORS',
      'INGEST_DEBUG_DB_IDENTITY',
    ].sort())
  })

  it('checks combinations: postgres without a URL, redis DLQ without Redis, the SQL Server procedure without SQL Server', () => {
    expect(problems(() => load({ INGEST_STORAGE: 'postgres' }))[0]).toMatch(/^INGEST_STORAGE: "postgres" needs a PostgreSQL URL/)
    expect(problems(() => load({ DLQ_BACKEND: 'redis' }))[0]).toMatch(/^DLQ_BACKEND: "redis" needs REDIS_URL/)
    expect(problems(() => load({ IOT_MSSQL_PROCEDURE: '1' }))[0]).toMatch(/^IOT_MSSQL_PROCEDURE/)
    expect(load({ REDIS_URL: 'redis://h:6379', REDIS_ENABLED: 'false' }).config.redis.url).toBeUndefined()
  })

  it('reads .env only from the given folder and ignores a missing one', () => {
    const dir = tempDir()
    dirs.push(dir)
    mkdirSync(join(dir.path, 'sub'))
    writeFileSync(join(dir.path, '.env'), 'PORT=1234\n')
    expect(load({}, {}, join(dir.path, 'sub')).config.http.port).toBe(8001)
  })
})
