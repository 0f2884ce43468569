/**
 * Which engines the suites run on: INGEST_TEST_ENGINES=sqlite,postgres picks some (an unknown name is
 * an error, and a picked engine that is not there fails instead of skipping); unset means every
 * available one. Kept free of driver imports so a globalSetup can read it cheaply.
 */

/** Engine entries of the suites: the three engines, and SQL Server once more in procedure mode (IOT_MSSQL_PROCEDURE). */
export const TEST_ENGINE_NAMES = ['sqlite', 'postgres', 'sqlserver', 'sqlserver-procedure'] as const
export type TestEngineName = (typeof TEST_ENGINE_NAMES)[number]

export const ENGINES_VARIABLE = 'INGEST_TEST_ENGINES'

function isTestEngineName(name: string): name is TestEngineName {
  return (TEST_ENGINE_NAMES as readonly string[]).includes(name)
}

/** The names INGEST_TEST_ENGINES asks for, or null when it is unset or blank (every available engine). */
export function requestedEngines(value = process.env[ENGINES_VARIABLE]): ReadonlySet<TestEngineName> | null {
  if (value === undefined || value.trim() === '') return null
  const names = value
    .split(',')
    .map((n) => n.trim().toLowerCase())
    .filter((n) => n !== '')
  const unknown = names.filter((n) => !isTestEngineName(n))
  if (unknown.length > 0) throw new Error(`${ENGINES_VARIABLE}: unknown engine ${unknown.map((n) => JSON.stringify(n)).join(', ')} (known: ${TEST_ENGINE_NAMES.join(', ')})`)
  return new Set(names.filter(isTestEngineName))
}

/** Whether the suites may use this engine: asked for by INGEST_TEST_ENGINES, or the variable is unset. */
export function engineWanted(name: TestEngineName, value = process.env[ENGINES_VARIABLE]): boolean {
  const requested = requestedEngines(value)
  return requested === null || requested.has(name)
}
