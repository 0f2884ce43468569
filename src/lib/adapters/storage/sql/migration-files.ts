import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

import type { MigrationInfo } from '../../../ports/migrator.js'
import type { Engine } from '../../../ports/engine.js'

export interface MigrationFile extends MigrationInfo {
  sql: string
}

// src/lib/adapters/storage/sql -> package root (the same depth under dist/).
const ROOT = new URL('../../../../../', import.meta.url)

/** The numbered forward-only migrations of one engine: migrations/<engine>/NNNN_name.sql, in order. */
export function loadMigrationFiles(engine: Engine): MigrationFile[] {
  const dir = fileURLToPath(new URL(`migrations/${engine}/`, ROOT))
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((f) => ({
      version: Number(f.slice(0, 4)),
      name: f.slice(5, -4),
      sql: readFileSync(`${dir}${f}`, 'utf8'),
    }))
}
