import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

import { removePackageCopy } from './package.js'
import { PrivatePostgres } from './postgres.js'
import { ServiceProcess } from './service.js'
import { type Fleet, setupFleet } from './setup.js'

/** The global key of the services (read routes such as /resilience/health); never in a log. */
export const GLOBAL_KEY = 'fault-global-key-7f3a9c2e51d84b06'

/**
 * What every fault test file owns: a private PostgreSQL, a temp folder (INGEST_DATA_DIR, the cwd of
 * the CLI), the registered fleet with device keys, and the services it started. `destroy()` cleans
 * up everything, also after a failed test.
 */
export class FaultWorld {
  readonly services: ServiceProcess[] = []
  fleet!: Fleet

  private constructor(
    readonly pg: PrivatePostgres,
    readonly dir: string,
  ) {}

  static async create(options: { devices?: number; sensorsPerDevice?: number } = {}): Promise<FaultWorld> {
    const pg = await PrivatePostgres.create()
    const dir = mkdtempSync(join(tmpdir(), 'ingest-fault-'))
    const world = new FaultWorld(pg, dir)
    try {
      world.fleet = await setupFleet(world.baseEnv(), dir, options)
      world.fleet.secrets.push(GLOBAL_KEY)
    } catch (err) {
      await world.destroy()
      throw err
    }
    return world
  }

  /** DATABASE_URL of the private cluster and a data folder of this world. */
  baseEnv(dataDir = 'data'): Record<string, string> {
    const data = join(this.dir, dataDir)
    mkdirSync(data, { recursive: true })
    return { DATABASE_URL: this.pg.url, INGEST_DATA_DIR: data, INGEST_API_KEY: GLOBAL_KEY }
  }

  async startService(env: Record<string, string> = {}, dataDir = 'data'): Promise<ServiceProcess> {
    const svc = await ServiceProcess.create({ ...this.baseEnv(dataDir), ...env }, this.dir)
    this.services.push(svc)
    return svc
  }

  async destroy(): Promise<void> {
    for (const s of this.services) await s.destroy().catch(() => undefined)
    await this.pg.destroy().catch(() => undefined)
    rmSync(this.dir, { recursive: true, force: true })
    removePackageCopy()
  }
}
