import type { Config } from '../config/index.js'
import type { Logger } from '../log/index.js'
import type { Clock } from '../ports/clock.js'
import type { Database } from '../ports/storage.js'
import type { AppContext } from './context.js'
import { createDiagnostics, type Diagnostics } from './diagnostics.js'
import { IngestService } from './ingest/ingest-service.js'
import { createMetrics, type Metrics } from './metrics.js'
import { openDlq, replayThroughIngest } from './dlq.js'
import { createRateLimiter, type RateLimiter } from './rate-limit/rate-limiter.js'
import { AutoReplayer } from './resilience/auto-replay.js'
import type { CircuitBreaker } from './resilience/circuit-breaker.js'
import { createStoreBreaker } from './resilience/store-breaker.js'
import { createMemoryDedupFilter, layerDedupFilters } from './resilience/memory-dedup.js'
import type { DedupFilter } from '../ports/dedup-filter.js'
import type { RateLimitStore } from '../ports/rate-limit-store.js'

/** The outcome of an authentication check as the HTTP layer needs it (one 401 body for all failures). */
export type AuthOutcome = { ok: true; principal: string } | { ok: false; reason: 'missing' | 'invalid' | 'forbidden'; code: string }

/** Authentication as the routes use it (implemented by the authenticator in authenticate.ts). */
export interface HttpAuth {
  /** `/ingest/packets`: X-Device-Key of that device, or the global key when LEGACY_API_KEY_ALLOWED. */
  device(input: { deviceUuid: string; deviceKey: string | undefined; apiKey: string | undefined; sourceIp: string }): Promise<AuthOutcome>
  /** Legacy and read routes: the global key, or a role key (`admin` for writes, any role for reads). */
  global(input: { apiKey: string | undefined; sourceIp: string; write: boolean; route: string }): Promise<AuthOutcome>
  /** `/metrics` when METRICS_API_KEY is set. */
  metrics(apiKey: string | undefined): boolean
}

/** Everything `serve` runs: the HTTP routes read it; close() drains and releases in order. */
export interface ServeRuntime {
  readonly config: Config
  readonly logger: Logger
  readonly clock: Clock
  readonly iot: Database
  readonly universal: Database
  readonly databases: readonly Database[]
  readonly metrics: Metrics
  readonly ingest: IngestService
  readonly auth: HttpAuth
  readonly rateLimiter: RateLimiter
  readonly diagnostics: Diagnostics
  /** The universal store's breaker (the IoT one when both stores are one database). */
  readonly universalBreaker: CircuitBreaker
  readonly startedAt: number
  /** `/resilience/health`: dedup, DLQ, breaker, Redis and replay state. */
  resilienceHealth(): Promise<Record<string, unknown>>
  close(): Promise<void>
}

export interface ServeRuntimeOptions {
  /** Builds the authenticator (injected so tests can use fakes). */
  auth: (ctx: AppContext) => HttpAuth | Promise<HttpAuth>
}

/** Wires the long-running ingest runtime from an app context. */
export async function createServeRuntime(ctx: AppContext, options: ServeRuntimeOptions): Promise<ServeRuntime> {
  const { config } = ctx
  const metrics = createMetrics()
  const diagnostics = createDiagnostics({ clock: ctx.clock })
  const releasers: Array<() => Promise<void>> = []
  const memoryDedup = createMemoryDedupFilter({ ttlMs: config.dedup.ttlSeconds * 1000, clock: ctx.clock })
  let dedup: DedupFilter = memoryDedup
  let redisStore: RateLimitStore | undefined
  let redisClient: RedisLike | undefined
  let redisGate: { status(): unknown } | undefined
  if (config.redis.url) {
    const { createRedisClient } = await import('../adapters/redis/client.js')
    const client = createRedisClient(config.redis.url, { keyPrefix: config.redis.keyPrefix, logger: ctx.logger })
    redisClient = client
    releasers.push(async () => client.disconnect())
    if (config.rateLimit.enabled) {
      const { createRedisRateLimitStore } = await import('../adapters/redis/rate-limit-store.js')
      redisStore = createRedisRateLimitStore(client)
    }
    if (config.dedup.enabled) {
      const { createRedisDedupFilter } = await import('../adapters/redis/dedup-filter.js')
      const shared = createRedisDedupFilter(client, { ttlSeconds: config.dedup.ttlSeconds, clock: ctx.clock, logger: ctx.logger })
      redisGate = shared.gate
      dedup = layerDedupFilters(memoryDedup, shared)
    }
  }
  const dlq = config.dlq.enabled ? await openDlq(ctx) : undefined
  if (dlq) releasers.push(() => dlq.close())
  let replayer: AutoReplayer | undefined
  const iotBreaker = createStoreBreaker({ store: 'iot', config, clock: ctx.clock, logger: ctx.logger, metrics, onClosed: () => replayer?.trigger() })
  const universalBreaker = ctx.universal === ctx.iot ? iotBreaker : createStoreBreaker({ store: 'universal', config, clock: ctx.clock, logger: ctx.logger, metrics })
  const ingest = new IngestService({ breaker: iotBreaker, config, logger: ctx.logger, clock: ctx.clock, store: ctx.iot.ingest, metrics, diagnostics, dedup, ...(dlq ? { dlq } : {}) })
  if (dlq) {
    // Replays go through a service of their own without a DLQ, so a failing replay never adds a
    // second entry (the original entry's attempts count instead).
    const replayService = new IngestService({ config, logger: ctx.logger, clock: ctx.clock, store: ctx.iot.ingest, metrics, diagnostics, dedup })
    releasers.push(() => replayService.close())
    replayer = new AutoReplayer(ctx, dlq, replayThroughIngest(replayService), {
      healthy: () => ingest.breaker.current === 'closed',
      intervalMs: config.dlq.consumerIntervalSeconds * 1000,
      batchSize: Math.max(config.dlq.consumerBatchSize, 100),
      ...(config.dlq.backend === 'redis' && redisClient ? { lease: await redisLease(redisClient, config.redis.keyPrefix) } : {}),
    })
    replayer.start()
    // Entries left from an earlier run (an outage before a restart) are replayed once the store answers.
    replayer.trigger()
  }
  const rateLimiter = createRateLimiter({ config: ctx.config, clock: ctx.clock, logger: ctx.logger, redisStore })
  const auth = await options.auth(ctx)
  return {
    config: ctx.config,
    logger: ctx.logger,
    clock: ctx.clock,
    iot: ctx.iot,
    universal: ctx.universal,
    databases: ctx.databases,
    metrics,
    ingest,
    auth,
    rateLimiter,
    diagnostics,
    universalBreaker,
    startedAt: ctx.clock.now(),
    async resilienceHealth() {
      const c = ingest.counters
      return {
        redis_available: true,
        redis_connected: redisClient?.status === 'ready',
        redis_configured: config.redis.url !== undefined,
        redis_gate: redisGate?.status() ?? null,
        rate_limiter: rateLimiter.status(),
        deduplicator: { enabled: config.dedup.enabled, kind: dedup.kind, total_checked: c.dedupChecked, duplicates_found: c.dedupHits, ttl_seconds: config.dedup.ttlSeconds },
        dlq: dlq
          ? await dlq.stats().then(
              (st) => ({ enabled: true, backend: st.backend, stream_name: st.backend === 'redis' ? config.dlq.streamName : null, depth: st.depth, pending: st.pending, parked: st.parked, capacity: st.capacity, oldest_failed_at: st.oldestFailedAt, by_stage: st.byStage, by_error_class: st.byErrorClass, total_sent: c.dlqSent, send_errors: c.dlqErrors, refused: c.dlqRefused }),
              (err: unknown) => ({ enabled: true, backend: dlq.backend, error: (err as Error).message, total_sent: c.dlqSent, send_errors: c.dlqErrors, refused: c.dlqRefused }),
            )
          : { enabled: false },
        breaker: ingest.breaker.stats(),
        breakers: { iot: ingest.breaker.stats(), universal: universalBreaker.stats() },
        replay: replayer?.stats ?? null,
      }
    },
    async close() {
      await ingest.close()
      await replayer?.close()
      for (const r of releasers.reverse()) await r()
    },
  }
}

type RedisLike = { status: string; disconnect(): void }

/** A Redis lease (SET NX PX) so one replica at a time replays the shared DLQ. */
async function redisLease(client: RedisLike, _prefix: string) {
  const { createRedisLease } = await import('../adapters/redis/lease.js')
  return createRedisLease(client as never, 'dlq:replay:lease', 60_000)
}
