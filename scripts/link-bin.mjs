#!/usr/bin/env node
// `npx ingest` must run this checkout's CLI, never a registry package of the same name: npm does not
// link a package's own bin into its node_modules/.bin, so `npm ci` (prepare) links it here.
import { chmodSync, existsSync, lstatSync, mkdirSync, symlinkSync, unlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const binDir = join(root, 'node_modules', '.bin')
const link = join(binDir, 'ingest')
mkdirSync(binDir, { recursive: true })
if (existsSync(link) || (() => { try { return lstatSync(link).isSymbolicLink() } catch { return false } })()) unlinkSync(link)
symlinkSync('../../bin/run.js', link)
chmodSync(join(root, 'bin', 'run.js'), 0o755)
