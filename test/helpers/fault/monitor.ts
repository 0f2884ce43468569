import { metric, type ServiceProcess } from './service.js'
import { sleep } from './util.js'

export interface HealthSample {
  t: number
  /** `ingest_breaker_state{store="iot"}`: 0 closed, 1 half-open, 2 open (undefined: unreachable). */
  breakerMetric?: number
  /** `/resilience/health` body (undefined: unreachable or not 200). */
  health?: ResilienceHealth
  ready?: number
}

/** The `/resilience/health` shape the tests rely on. */
export interface ResilienceHealth {
  redis_available?: boolean
  redis_connected?: boolean
  deduplicator?: { enabled: boolean; kind: string; total_checked: number; duplicates_found: number; ttl_seconds: number }
  dlq?: { enabled: boolean; backend: string; stream_name?: string; depth: number; pending: number; parked: number; oldest_failed_at: string | null; total_sent: number; send_errors: number; refused: number }
  breaker?: { name: string; state: string; since: string; secondsInState: number; consecutiveFailures: number; skippedCalls: number; opened: number }
  replay?: { running: boolean; runs: number; replayed: number; failed: number; last_run_at: string | null }
}

/** Samples `/metrics`, `/resilience/health` and `/ready` in the background during a fault. */
export class HealthMonitor {
  readonly samples: HealthSample[] = []
  private running = false
  private loop: Promise<void> | undefined

  constructor(
    private readonly svc: () => ServiceProcess,
    private readonly everyMs = 250,
  ) {}

  start(): void {
    this.running = true
    this.loop = (async () => {
      while (this.running) {
        const svc = this.svc()
        const [m, h, r] = await Promise.all([svc.metrics(1000), svc.getJson<ResilienceHealth>('/resilience/health', {}, 1000), svc.getJson('/ready', {}, 1000)])
        const sample: HealthSample = { t: Date.now() }
        const b = metric(m, 'ingest_breaker_state')
        if (b !== undefined) sample.breakerMetric = b
        if (h?.status === 200) sample.health = h.body
        if (r) sample.ready = r.status
        this.samples.push(sample)
        await sleep(this.everyMs)
      }
    })()
  }

  async stop(): Promise<void> {
    this.running = false
    await this.loop
  }

  /** Whether the breaker was seen open (metric 2 or health state 'open'). */
  sawOpen(): boolean {
    return this.samples.some((s) => s.breakerMetric === 2 || s.health?.breaker?.state === 'open')
  }

  sawHealthEndpoint(): boolean {
    return this.samples.some((s) => s.health !== undefined)
  }

  maxDlqDepth(): number {
    return Math.max(0, ...this.samples.map((s) => s.health?.dlq?.depth ?? 0))
  }
}

/** `/resilience/health` (alias `/health/resilience`): the body, or a failure naming what was answered. */
export async function resilienceHealth(svc: ServiceProcess): Promise<ResilienceHealth> {
  const r = await svc.getJson<ResilienceHealth>('/resilience/health', {}, 3000)
  if (r?.status !== 200) throw new Error(`/resilience/health answered ${r ? `${r.status} ${JSON.stringify(r.body).slice(0, 200)}` : 'nothing'}`)
  return r.body
}
