import type { RateLimitStore } from '../ports/rate-limit-store.js'
import type { AppContext } from './context.js'
import { CsvJobRunner } from './csv/job-runner.js'
import { pointServiceWriter } from './csv/run-import.js'
import { createIngestRuntime, type IngestRuntime } from './ingest/runtime.js'
import { createRateLimiter, type RateLimiter } from './rate-limit/rate-limiter.js'
import type { CircuitBreaker } from './resilience/circuit-breaker.js'

/** The outcome of an authentication check as the HTTP layer needs it (one 401 body for all failures). */
export type AuthOutcome = { ok: true; principal: string } | { ok: false; reason: 'missing' | 'invalid' | 'forbidden'; code: string; detail?: string }

/** A role key allowed to write a source and domain; `credential` is its SHA-256 prefix for the audit (never the key). */
export type SourceAuthOutcome = { ok: true; principal: string; credential: string | null } | Extract<AuthOutcome, { ok: false }>

/** Authentication as the routes use it (implemented by the authenticator in authenticate.ts). */
export interface HttpAuth {
  /** `/ingest/packets`: X-Device-Key of that device, or the global key when LEGACY_API_KEY_ALLOWED. */
  device(input: { deviceUuid: string; deviceKey: string | undefined; apiKey: string | undefined; sourceIp: string }): Promise<AuthOutcome>
  /** Legacy and read routes: the global key, or a role key (`admin` for writes, any role for reads). */
  global(input: { apiKey: string | undefined; sourceIp: string; write: boolean; route: string }): Promise<AuthOutcome>
  /** Role-key routes (`/ingest/data`, WebSocket, CSV): `admin`, or `source_writer` within its source and domains (403 with the original's detail). */
  source(input: { apiKey: string | undefined; sourceIp: string; sourceId: string; domain: string; transport: string }): Promise<SourceAuthOutcome>
  /** Reads: the global key or any role key; the credential's SHA-256 prefix for the audit. */
  credential(apiKey: string | undefined): string | null
  /** `/metrics` when METRICS_API_KEY is set. */
  metrics(apiKey: string | undefined): boolean
}

/**
 * Everything `serve` runs: the ingest runtime every transport shares, plus what only the HTTP and
 * WebSocket edge needs (authentication, rate limits). The routes read it; close() drains and releases.
 */
export interface ServeRuntime extends IngestRuntime {
  readonly auth: HttpAuth
  readonly rateLimiter: RateLimiter
  /** The universal store's breaker (the IoT one when both stores are one database). */
  readonly universalBreaker: CircuitBreaker
  /** `POST /ingest/csv` jobs (background, resumed at start). */
  readonly csvJobs: CsvJobRunner
}

export interface ServeRuntimeOptions {
  /** Builds the authenticator (injected so tests can use fakes). */
  auth: (ctx: AppContext) => HttpAuth | Promise<HttpAuth>
}

/** The ingest runtime plus the HTTP edge's authenticator and rate limiter. */
export async function createServeRuntime(ctx: AppContext, options: ServeRuntimeOptions): Promise<ServeRuntime> {
  const runtime = await createIngestRuntime(ctx)
  try {
    let redisStore: RateLimitStore | undefined
    if (runtime.redis && ctx.config.rateLimit.enabled) {
      const { createRedisRateLimitStore } = await import('../adapters/redis/rate-limit-store.js')
      redisStore = createRedisRateLimitStore(runtime.redis)
    }
    const rateLimiter = createRateLimiter({ config: ctx.config, clock: ctx.clock, logger: ctx.logger, redisStore })
    const auth = await options.auth(ctx)
    const csvJobs = new CsvJobRunner(ctx, { ingest: runtime.ingest, universal: pointServiceWriter(runtime.points) })
    // Jobs a crash or a stop left unfinished resume from their checkpoints (in the background).
    csvJobs.resumeLeftovers().catch((err: unknown) => ctx.logger.warn({ err }, 'could not resume CSV import jobs'))
    return {
      ...runtime,
      auth,
      rateLimiter,
      universalBreaker: runtime.breakers.universal,
      async resilienceHealth() {
        return { ...(await runtime.resilienceHealth()), rate_limiter: rateLimiter.status() }
      },
      csvJobs,
      async close() {
        csvJobs.stop()
        await runtime.close()
        await csvJobs.settled()
      },
    }
  } catch (err) {
    await runtime.close()
    throw err
  }
}
