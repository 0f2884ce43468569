import js from '@eslint/js'
import tseslint from 'typescript-eslint'

const GROUPS = {
  drivers: ['pg', 'pg-copy-streams', 'mssql', 'better-sqlite3', 'ioredis', 'undici', 'csv-parse'],
  fastify: ['fastify', '@fastify/*'],
  // The package only: a bare `mqtt` group would also match imports of our own lib/mqtt folder.
  mqtt: { regex: '^mqtt(/.*)?$' },
  oclif: ['@oclif/*', 'listr2'],
}
const LAYERS = [
  { files: ['src/lib/adapters/**/*.ts'], allowed: ['drivers'] },
  { files: ['src/lib/http/**/*.ts'], allowed: ['fastify'] },
  { files: ['src/lib/mqtt/**/*.ts'], allowed: ['mqtt'] },
  { files: ['src/lib/cli/**/*.ts', 'src/commands/**/*.ts'], allowed: ['oclif'] },
]

function restrict(allowed) {
  const patterns = Object.entries(GROUPS)
    .filter(([name]) => !allowed.includes(name))
    .map(([name, group]) => ({ ...(Array.isArray(group) ? { group } : group), message: `${name} may not be imported here (DESIGN §1 dependency rule)` }))
  return { 'no-restricted-imports': ['error', { patterns }] }
}

function layerRules() {
  const all = LAYERS.flatMap((l) => l.files)
  return [{ files: ['src/**/*.ts'], ignores: all, rules: restrict([]) }, ...LAYERS.map((l) => ({ files: l.files, rules: restrict(l.allowed) }))]
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', 'bench/data/**', 'oclif.manifest.json'] },
  js.configs.recommended,
  // Typed lint (issue 9): recommendedTypeChecked catches what a reviewer would, above all promises
  // nobody awaits (no-floating-promises) and promises handed where a callback's result is ignored
  // (no-misused-promises). Type information comes from tsconfig.test.json, the one program that holds
  // src, test, bench/*.ts and vitest.config.ts (tsconfig.json alone has src only).
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { project: ['./tsconfig.test.json'], tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  // Plain JavaScript (config, scripts, bench drivers, bin) and the scripts' .d.mts are not in that program.
  { files: ['**/*.js', '**/*.mjs', '**/*.cjs', 'scripts/**'], ...tseslint.configs.disableTypeChecked },
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', fetch: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', performance: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', structuredClone: 'readonly', queueMicrotask: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  // The dependency rule of DESIGN §1: drivers only under lib/adapters, fastify only under lib/http,
  // mqtt only under lib/mqtt, oclif/listr2 only under commands and lib/cli, process.env only in lib/config.
  ...layerRules(),
  {
    files: ['src/**/*.ts'],
    ignores: ['src/lib/config/**'],
    rules: { 'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'process.env is read only in src/lib/config' }] },
  },
  {
    files: ['src/lib/domain/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [{ group: ['node:*', '../adapters/*', '../app/*', '../http/*', '../cli/*'], message: 'lib/domain is pure: no I/O, no outer layers' }] }] },
  },
)
