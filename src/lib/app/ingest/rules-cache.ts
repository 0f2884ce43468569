import type { SensorRules } from '../../domain/rules/index.js'
import type { Clock } from '../../ports/clock.js'

/**
 * Sensor rules (thresholds, delta rule, warm-up settings) cached for a few seconds: they change only
 * through `ingest apply` or the backend, and loading them per flush would cost three queries. A change
 * takes effect within the TTL.
 */
export class RulesCache {
  private readonly entries = new Map<number, { rules: SensorRules; expires: number }>()

  constructor(
    private readonly clock: Pick<Clock, 'now'>,
    private readonly ttlMs: number,
    private readonly maxEntries = 50_000,
  ) {}

  async get(ids: readonly number[], load: (missing: number[]) => Promise<Map<number, SensorRules>>): Promise<Map<number, SensorRules>> {
    const now = this.clock.now()
    const out = new Map<number, SensorRules>()
    const missing: number[] = []
    for (const id of ids) {
      const e = this.entries.get(id)
      if (e && e.expires > now) out.set(id, e.rules)
      else missing.push(id)
    }
    if (missing.length > 0) {
      const loaded = await load(missing)
      for (const [id, rules] of loaded) {
        out.set(id, rules)
        this.entries.set(id, { rules, expires: now + this.ttlMs })
      }
      if (this.entries.size > this.maxEntries) this.entries.clear()
    }
    return out
  }

  clear(): void {
    this.entries.clear()
  }
}
