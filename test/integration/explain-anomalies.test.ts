import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'

import type { SqlExecutor } from '../../src/lib/adapters/storage/sql/executor.js'
import { parseRegistryFile } from '../../src/lib/app/apply-registry.js'
import type { AppContext } from '../../src/lib/app/context.js'
import { explainAnomalies, type ExplainAnomaliesOptions } from '../../src/lib/app/jobs/explain-anomalies.js'
import { runBatchPredict } from '../../src/lib/app/jobs/batch-predict.js'
import { loadConfig } from '../../src/lib/config/index.js'
import { createLogger } from '../../src/lib/log/index.js'
import { systemClock } from '../../src/lib/ports/clock.js'
import type { Database } from '../../src/lib/ports/storage.js'
import { availableEngines, type EngineHandle } from '../helpers/engines.js'

/**
 * `explain anomalies` on every engine against a small explainer started here (it stands in for the
 * external service): answers stored as JSON and committed per row; an explainer that is down, slow,
 * failing or answering nonsense skips rows and the run goes on.
 */

const engines = await availableEngines()
const uuid = (group: number, i: number): string => `${group.toString(16).padStart(8, '0')}-0000-4000-8000-${i.toString(16).padStart(12, '0')}`
const SENSORS = 8

type Mode = 'ok' | 'slow' | 'fail' | 'invalid' | 'long'

interface TestExplainer {
  url: string
  mode: Mode
  bodies: unknown[]
  close(): Promise<void>
}

async function body(req: IncomingMessage): Promise<string> {
  let text = ''
  for await (const chunk of req) text += String(chunk)
  return text
}

async function startExplainer(): Promise<TestExplainer> {
  const state: TestExplainer = { url: '', mode: 'ok', bodies: [], close: () => Promise.resolve() }
  const server: Server = createServer((req, res) => {
    void (async () => {
      const text = await body(req)
      if (req.method !== 'POST' || req.url !== '/explain/anomaly') return void res.writeHead(404).end()
      const parsed = JSON.parse(text) as { model_output: { observed_value: number } }
      state.bodies.push(parsed)
      if (state.mode === 'slow') await new Promise((r) => setTimeout(r, 5000))
      if (state.mode === 'fail') return void res.writeHead(500, { 'content-type': 'application/json' }).end('{"detail":"boom"}')
      if (state.mode === 'invalid') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"explanation": 42}')
      const explanation = state.mode === 'long' ? `Valor ${parsed.model_output.observed_value} — ${'muy '.repeat(600)}alto` : `value ${parsed.model_output.observed_value} is high`
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ severity: 'HIGH', explanation, possible_causes: ['sensor drift', 'heat'], recommended_action: 'inspect', confidence: 0.8 }))
    })()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  state.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections()
      server.close(() => resolve())
    })
  return state
}

function contextFor(db: Database, explainerUrl: string): AppContext {
  const { config } = loadConfig({ env: { LOG_LEVEL: 'silent', AI_EXPLAINER_URL: explainerUrl } })
  return { config, logger: createLogger({ level: 'silent' }), clock: systemClock, iot: db, universal: db, databases: [db], close: () => Promise.resolve() }
}

function writer(h: EngineHandle): SqlExecutor {
  const db = h.db as unknown as { pool?: SqlExecutor; connection?: SqlExecutor }
  const exec = db.connection ?? db.pool
  if (!exec) throw new Error('no executor')
  return exec
}

for (const engine of engines) {
  describe(`explain anomalies on ${engine.name}`, () => {
    let h: EngineHandle
    let exec: SqlExecutor
    let explainer: TestExplainer
    const options = (over: Partial<ExplainAnomaliesOptions> = {}): ExplainAnomaliesOptions => ({ threshold: 0.8, limit: 50, concurrency: 4, timeoutMs: 2000, dryRun: false, ...over })
    const explained = async (): Promise<number> => Number((await exec.all(`SELECT COUNT(*) AS n FROM "predictions" WHERE "explanation" IS NOT NULL`))[0]?.['n'])

    beforeAll(async () => {
      explainer = await startExplainer()
      h = await engine.open({ migrated: true })
      exec = writer(h)
      const spec = parseRegistryFile(
        JSON.stringify({
          devices: [
            {
              uuid: uuid(3, 0),
              name: 'boilers',
              sensors: Array.from({ length: SENSORS }, (_, i) => ({ uuid: uuid(3, i + 1), type: 'temperature', name: `b${i}`, thresholds: [{ name: 'band', condition: 'out_of_range', min: 10, max: 30, severity: 'warning' }] })),
            },
          ],
        }),
        'explain.json',
      )
      const [device] = await h.db.registry.applyDevices(spec.devices, { prune: false, dryRun: false })
      const ids = device?.sensors.map((s) => s.id) ?? []
      const now = Date.now()
      // A flat history and a spike: every sensor's prediction is an anomaly with score 1.
      const rows = ids.flatMap((id) => [20, 20, 20, 20, 20, 90].map((v, i) => [id, v, new Date(now - (6 - i) * 60_000)] as const))
      await exec.run(`INSERT INTO "sensor_readings" ("sensor_id", "value", "timestamp") VALUES ${rows.map(() => '(?, ?, ?)').join(', ')}`, rows.flat())
      const r = await runBatchPredict(contextFor(h.db, explainer.url), { window: 60, horizonMinutes: 10, dedupeMinutes: 10, shard: null, concurrency: 1 })
      expect(r.predictions).toBe(SENSORS)
    }, 120_000)
    afterAll(async () => {
      await explainer.close()
      await h.dispose()
    })
    beforeEach(() => {
      explainer.bodies.length = 0
    })

    it('--dry-run lists the requests (type and expected range included) and calls nothing', async () => {
      const r = await explainAnomalies(contextFor(h.db, explainer.url), options({ dryRun: true }))
      expect(r).toMatchObject({ selected: SENSORS, explained: 0, dryRun: true, jobRunId: null })
      expect(r.requests[0]?.body.model_output).toMatchObject({ metric: 'temperature', expected_range: '10.0-30.0', anomaly_score: 1 })
      expect(explainer.bodies).toHaveLength(0)
      expect(await explained()).toBe(0)
    })

    it('with the explainer down: every row skipped, nothing stored, no throw', async () => {
      const r = await explainAnomalies(contextFor(h.db, 'http://127.0.0.1:9'), options())
      expect(r).toMatchObject({ selected: SENSORS, explained: 0, skipped: SENSORS, failed: 0 })
      expect(await explained()).toBe(0)
    })

    it('a 500 or an invalid answer skips the row', async () => {
      explainer.mode = 'fail'
      expect(await explainAnomalies(contextFor(h.db, explainer.url), options({ limit: 2 }))).toMatchObject({ selected: 2, explained: 0, skipped: 2 })
      explainer.mode = 'invalid'
      const r = await explainAnomalies(contextFor(h.db, explainer.url), options({ limit: 2 }))
      expect(r).toMatchObject({ selected: 2, explained: 0, skipped: 2 })
      expect(r.skips[0]?.reason).toMatch(/invalid answer: explanation/)
      expect(await explained()).toBe(0)
    })

    it('an explainer sleeping 5 s with a 1 s timeout, 8 rows, concurrency 4: all skipped well under 4 s', async () => {
      explainer.mode = 'slow'
      const started = Date.now()
      const r = await explainAnomalies(contextFor(h.db, explainer.url), options({ timeoutMs: 1000, concurrency: 4 }))
      const seconds = (Date.now() - started) / 1000
      expect(r).toMatchObject({ selected: SENSORS, explained: 0, skipped: SENSORS })
      expect(r.skips[0]?.reason).toBe('explainer timed out')
      expect(seconds).toBeLessThan(4)
    }, 20_000)

    it('fills the explanations from the explainer, as JSON, and a second run selects nothing', async () => {
      explainer.mode = engine.engine === 'sqlserver' ? 'long' : 'ok'
      const r = await explainAnomalies(contextFor(h.db, explainer.url), options())
      expect(r).toMatchObject({ selected: SENSORS, explained: SENSORS, skipped: 0, failed: 0 })
      expect(explainer.bodies).toHaveLength(SENSORS)
      const rows = await exec.all(`SELECT "explanation" FROM "predictions" WHERE "explanation" IS NOT NULL`)
      expect(rows).toHaveLength(SENSORS)
      for (const row of rows) {
        const stored = JSON.parse(String(row['explanation'])) as Record<string, unknown>
        expect(stored).toMatchObject({ severity: 'HIGH', recommended_action: 'inspect', possible_causes: ['sensor drift', 'heat'] })
        if (engine.engine === 'sqlserver') expect(String(row['explanation']).length).toBeLessThanOrEqual(1000)
      }
      const runs = await exec.all(`SELECT "status", "counts" FROM "job_runs" WHERE "job" = 'explain anomalies' ORDER BY "id" DESC`)
      expect(runs[0]?.['status']).toBe('succeeded')
      expect(await explainAnomalies(contextFor(h.db, explainer.url), options())).toMatchObject({ selected: 0, explained: 0 })
    })
  })
}
