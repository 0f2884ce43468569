import { join } from 'node:path'

import type { FastifyInstance } from 'fastify'

import type { SqliteDatabase } from '../../src/lib/adapters/storage/sqlite/index.js'
import type { PostgresDatabase } from '../../src/lib/adapters/storage/postgres/index.js'
import type { Row } from '../../src/lib/adapters/storage/sql/executor.js'
import { applyRegistry } from '../../src/lib/app/apply-registry.js'
import { type AppContext, createContext } from '../../src/lib/app/context.js'
import { createHttpAuth } from '../../src/lib/app/http-auth.js'
import { createKey } from '../../src/lib/app/keys.js'
import { createServeRuntime, type ServeRuntime } from '../../src/lib/app/serve.js'
import { loadConfig } from '../../src/lib/config/index.js'
import { buildApp } from '../../src/lib/http/app.js'
import { createLogger } from '../../src/lib/log/index.js'
import type { Clock } from '../../src/lib/ports/clock.js'
import type { Engine } from '../../src/lib/ports/storage.js'
import { ROOT } from './cli.js'
import { engineWanted } from './engine-selection.js'
import { createTestDatabase, postgresAvailable, tempDir } from './services.js'

export const DEMO_DEVICE = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
export const DEMO_SENSOR = '8a7b6c5d-4e3f-4a1b-8c2d-9e0f1a2b3c4d'

/** A clock tests move by hand (windows, cooldowns, rate limits). */
export class FakeClock implements Clock {
  constructor(public t = Date.parse('2026-11-26T12:00:00.000Z')) {}
  now(): number {
    return this.t
  }
  sleep(ms: number): Promise<void> {
    this.t += ms
    return Promise.resolve()
  }
  advance(ms: number): void {
    this.t += ms
  }
}

export interface Harness {
  engine: Engine
  ctx: AppContext
  rt: ServeRuntime
  app: FastifyInstance
  clock: FakeClock
  deviceKey: string
  /** Runs SQL on the IoT database (`?` placeholders). */
  sql(text: string, params?: unknown[]): Promise<Row[]>
  /** Empties readings, alerts, events and rule state (each rules test starts from a fresh sensor). */
  reset(): Promise<void>
  close(): Promise<void>
}

/** The engines the HTTP suites run on: the same selection as the contract suites (INGEST_TEST_ENGINES). */
export async function engineList(): Promise<Engine[]> {
  const out: Engine[] = []
  if (engineWanted('sqlite')) out.push('sqlite')
  if (engineWanted('postgres') && (await postgresAvailable())) out.push('postgres')
  return out
}

/**
 * A serve runtime on a fresh database (SQLite file or PostgreSQL database of its own), migrated,
 * with fixtures/demo.yaml applied and a device key for the demo device; requests via `app.inject`.
 */
export async function startHarness(engine: Engine, env: Record<string, string> = {}, clock = new FakeClock()): Promise<Harness> {
  const dir = tempDir()
  let drop = (): Promise<void> => Promise.resolve()
  const base: Record<string, string> = { INGEST_DATA_DIR: join(dir.path, 'data'), INGEST_API_KEY: 'test-global-key', LOG_LEVEL: 'silent', ...env }
  if (engine === 'postgres') {
    const t = await createTestDatabase({ migrated: true })
    base['DATABASE_URL'] = t.url
    drop = t.drop
  }
  const { config } = loadConfig({ env: base })
  const logger = createLogger({ level: config.logLevel })
  const ctx = await createContext(config, logger, { createEmbedded: true, requireMigrated: false, clock })
  for (const db of ctx.databases) await db.migrator.migrate({ dryRun: false, alterLegacy: false })
  await applyRegistry(ctx, { file: join(ROOT, 'fixtures/demo.yaml'), prune: false, dryRun: false })
  const created = await createKey(ctx, { device: DEMO_DEVICE })
  const rt = await createServeRuntime(ctx, { auth: createHttpAuth })
  const app = buildApp(rt)
  await app.ready()
  const exec = engine === 'postgres' ? (ctx.iot as PostgresDatabase).pool : (ctx.iot as SqliteDatabase).connection
  return {
    engine,
    ctx,
    rt,
    app,
    clock,
    deviceKey: created.key,
    sql: async (text, params = []) => {
      if (/^\s*(SELECT|WITH)\b/i.test(text)) return exec.all(text, params as never)
      await exec.run(text, params as never)
      return []
    },
    async reset() {
      for (const table of ['sensor_readings', 'sensor_readings_latest', 'sensor_rule_state', 'alert_notifications', 'alerts', 'ml_events']) await exec.run(`DELETE FROM ${table}`)
      await exec.run("UPDATE sensors SET operational_state = 'INITIALIZING', valid_readings_count = 0")
      rt.ingest.resolver.clear()
    },
    async close() {
      await app.close()
      await rt.close()
      await ctx.close()
      await drop()
      dir.remove()
    },
  }
}

export interface PacketOptions {
  values: number[]
  /** Epoch seconds of the first reading; one second apart. */
  start: number
  sensor?: string
  device?: string
}

export function packet(o: PacketOptions): { device_uuid: string; readings: Array<{ sensor_uuid: string; value: number; sensor_ts: number }> } {
  return {
    device_uuid: o.device ?? DEMO_DEVICE,
    readings: o.values.map((value, i) => ({ sensor_uuid: o.sensor ?? DEMO_SENSOR, value, sensor_ts: o.start + i })),
  }
}
