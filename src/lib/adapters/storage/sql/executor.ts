import type { Engine } from '../../../ports/engine.js'

export type Row = Record<string, unknown>
export type Param = string | number | boolean | null | Date | Buffer | ReadonlyArray<string | number | boolean | null>

/**
 * The small SQL surface every engine offers to the shared adapter code (registry, keys, status).
 * SQL is written once with `?` placeholders and double-quoted identifiers; each engine's executor
 * rewrites placeholders to its own syntax ($1, @p1) and encodes parameters (dates, booleans).
 * Hot paths (the ingest flush) use engine-specific SQL in their own files.
 */
export interface SqlExecutor {
  readonly engine: Engine
  readonly dialect: Dialect
  all<R extends Row = Row>(sql: string, params?: readonly Param[]): Promise<R[]>
  /** Runs a statement; returns the number of affected rows. */
  run(sql: string, params?: readonly Param[]): Promise<number>
  /** INSERT ... that returns the new row's id (the dialect adds RETURNING / OUTPUT). */
  insert(table: string, values: Readonly<Record<string, Param>>): Promise<number>
  /** Runs fn in one write transaction (BEGIN IMMEDIATE on SQLite); nested calls join the outer one. */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>
}

/** Engine differences the shared SQL needs, as data and small functions. */
export interface Dialect {
  readonly engine: Engine
  /** SQL expression for "now" in UTC. */
  readonly now: string
  /** `LIMIT n` or `OFFSET 0 ROWS FETCH NEXT n ROWS ONLY` (SQL Server needs an ORDER BY before it). */
  limit(n: number): string
  /** Boolean literal for WHERE clauses. */
  bool(value: boolean): string
}
