import type { StoreMigration } from '../app/migrate-db.js'
import type { ApplyResult } from '../domain/registry.js'
import type { MigrationStatus } from '../ports/migrator.js'

/** Human summaries (stdout). `--json` prints the typed results instead. */
export function renderMigrate(dbs: readonly StoreMigration[]): string[] {
  const lines: string[] = []
  for (const db of dbs) {
    const head = `${db.engine} ${db.target} (${db.stores.join(' + ')})`
    if (db.ran.length === 0) lines.push(`${head}: up to date (${db.applied.length} applied)`)
    else lines.push(`${head}: ${db.dryRun ? 'would apply' : 'applied'} ${db.ran.map((r) => `${String(r.version).padStart(4, '0')}_${r.name}`).join(', ')}`)
    if (db.dryRun) for (const r of db.ran) if (r.sql) lines.push(`-- ${r.version}_${r.name}`, r.sql)
    if (db.pending.length > 0 && !db.dryRun) lines.push(`  still pending: ${db.pending.map((p) => `${p.version}_${p.name}`).join(', ')}`)
    if (db.missingLegacyTables?.length) lines.push(`  missing legacy tables: ${db.missingLegacyTables.join(', ')}`)
  }
  return lines
}

export function renderStatus(dbs: ReadonlyArray<MigrationStatus & { stores: string[] }>): string[] {
  return dbs.flatMap((db) => [
    `${db.engine} ${db.target} (${db.stores.join(' + ')}): ${db.applied.length} applied, ${db.pending.length} pending`,
    ...db.applied.map((a) => `  applied  ${String(a.version).padStart(4, '0')}_${a.name}  ${a.appliedAt}`),
    ...db.pending.map((p) => `  pending  ${String(p.version).padStart(4, '0')}_${p.name}`),
    ...(db.missingLegacyTables?.length ? [`  missing legacy tables: ${db.missingLegacyTables.join(', ')}`] : []),
  ])
}

export function renderApply(result: ApplyResult & { dryRun: boolean }): string[] {
  const lines: string[] = []
  const tag = result.dryRun ? ' (dry run)' : ''
  for (const d of result.devices) {
    lines.push(`device ${d.uuid} id=${d.id} ${d.status}${tag}`)
    for (const s of d.sensors) {
      lines.push(`  sensor ${s.uuid} id=${s.id} ${s.status}`)
      for (const t of s.thresholds) lines.push(`    threshold ${JSON.stringify(t.name)} id=${t.id} ${t.status}`)
      if (s.delta) lines.push(`    delta id=${s.delta.id} ${s.delta.status}`)
    }
  }
  for (const s of result.streams) lines.push(`stream ${s.series_id} id=${s.id} ${s.status}${tag}`)
  if (lines.length === 0) lines.push('nothing to apply')
  return lines
}
