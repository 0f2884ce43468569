// Types for scripts/check-cycles.mjs, so the unit test can call its core from TypeScript
// without allowJs.
export function listTsFiles(dir: string): string[]
export function stripComments(src: string): string
export function importSpecifiers(source: string): string[]
export function resolveSpecifier(fromFile: string, spec: string): string | undefined
export function buildGraph(dir: string): Map<string, string[]>
export function stronglyConnected(graph: Map<string, string[]>): string[][]
export function findCycles(dir: string): string[][]
