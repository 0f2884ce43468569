import type { Param, SqlExecutor } from './executor.js'

/** Ids per UPDATE ... IN (...) (SQL Server takes at most 2100 parameters). */
const IDS_PER_STATEMENT = 500

/** A nullable epoch-ms time as a statement parameter. */
export const dateOrNull = (ms: number | null): Date | null => (ms === null ? null : new Date(ms))

/**
 * Runs `${sql} (?, ?, ...)` for the distinct ids, in chunks, with `leading` before the ids: the
 * last-used writes of the device-key and role-key stores.
 */
export async function runForIds(exec: SqlExecutor, sql: string, leading: readonly Param[], ids: readonly number[]): Promise<void> {
  const unique = [...new Set(ids)]
  for (let i = 0; i < unique.length; i += IDS_PER_STATEMENT) {
    const chunk = unique.slice(i, i + IDS_PER_STATEMENT)
    await exec.run(`${sql} (${chunk.map(() => '?').join(', ')})`, [...leading, ...chunk])
  }
}
