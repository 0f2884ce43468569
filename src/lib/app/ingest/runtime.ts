import type { RedisClient } from '../../adapters/redis/client.js'
import type { AlertPush } from '../../ports/alert-push.js'
import type { DeadLetterQueue } from '../../ports/dead-letter-queue.js'
import type { DedupFilter } from '../../ports/dedup-filter.js'
import type { MlPoint, MlStream } from '../../ports/ml-stream.js'
import type { AppContext } from '../context.js'
import { createDiagnostics, type Diagnostics } from '../diagnostics.js'
import { openDlq, type ReplayFn, replayThroughIngest } from '../dlq.js'
import { collectProcessMetrics, createMetrics, type Metrics, observeMlStream } from '../metrics.js'
import { AutoReplayer } from '../resilience/auto-replay.js'
import type { CircuitBreaker } from '../resilience/circuit-breaker.js'
import { createMemoryDedupFilter, layerDedupFilters } from '../resilience/memory-dedup.js'
import { createStoreBreaker } from '../resilience/store-breaker.js'
import type { FlushResult } from './flush.js'
import { PointService } from '../universal/point-service.js'
import { createStreamConfigSource } from '../universal/stream-config-source.js'
import { IngestService } from './ingest-service.js'
import { createDeliveryCounters, type DeliveryCounters } from './resilient-flush.js'

/**
 * Everything a transport needs to hand items to the one ingest path (DESIGN §3), wired once: the dedup
 * pre-filter (in-process, layered over Redis when configured), the DLQ, a circuit breaker per store, the
 * automatic replay of outage entries, retries, metrics and diagnostics. Nothing transport-specific:
 * HTTP, WebSocket, MQTT, CSV and `dlq replay` each parse their input and call `ingest`.
 */
export interface IngestRuntime extends Pick<AppContext, 'config' | 'logger' | 'clock' | 'iot' | 'universal' | 'databases'> {
  readonly metrics: Metrics
  readonly diagnostics: Diagnostics
  /** IoT readings: every transport's readings go through it. */
  readonly ingest: IngestService
  /** Universal points (`/ingest/data`, WebSocket, CSV): the universal store's own breaker. */
  readonly points: PointService
  /** One breaker per store (the same object when both stores are one database). */
  readonly breakers: { readonly iot: CircuitBreaker; readonly universal: CircuitBreaker }
  /** The DLQ the ingest path dead-letters into; undefined when DLQ_ENABLED is off or the runtime replays it. */
  readonly dlq: DeadLetterQueue | undefined
  readonly dedup: DedupFilter
  /** The shared Redis client when REDIS_URL is set (rate limits of the transports that have them). */
  readonly redis: RedisClient | undefined
  /** The ML stream (DESIGN §11): on with Redis, a no-op without; the universal path publishes its clean points here. */
  readonly mlStream: MlStream
  readonly counters: DeliveryCounters
  readonly startedAt: number
  /** `/resilience/health`: dedup, DLQ, breakers, Redis and replay state. */
  resilienceHealth(): Promise<Record<string, unknown>>
  /** Stops accepting, commits what is queued, then releases in reverse order of acquisition. */
  close(): Promise<void>
}

export interface IngestRuntimeOptions {
  /**
   * `dead-letter` (default; serve, mqtt listen, csv): poison items and, with CB_OPEN_ACTION=dlq, outage-time
   * items go to the DLQ, and outage entries are replayed automatically when the breaker closes.
   * `replay` (`ingest dlq replay`): no DLQ under the ingest path, so a failing replay never adds a second
   * entry (the original entry's attempts count instead), and no automatic replay beside the command's.
   */
  mode?: 'dead-letter' | 'replay'
  /** Automatic replay of outage entries (default true in `dead-letter` mode). */
  autoReplay?: boolean
}

/** Wires the one ingest runtime from an app context (the composition root's stores). */
export async function createIngestRuntime(ctx: AppContext, options: IngestRuntimeOptions = {}): Promise<IngestRuntime> {
  const { config, logger, clock } = ctx
  const mode = options.mode ?? 'dead-letter'
  const metrics = createMetrics()
  collectProcessMetrics(metrics)
  const diagnostics = createDiagnostics({ clock })
  const counters = createDeliveryCounters()
  // Released in reverse order by close().
  const releasers: Array<() => Promise<void>> = []
  try {
    const memoryDedup = createMemoryDedupFilter({ ttlMs: config.dedup.ttlSeconds * 1000, clock })
    let dedup: DedupFilter = memoryDedup
    let redis: RedisClient | undefined
    let redisGate: { status(): unknown } | undefined
    if (config.redis.url) {
      const { createRedisClient } = await import('../../adapters/redis/client.js')
      const client = createRedisClient(config.redis.url, { keyPrefix: config.redis.keyPrefix, logger })
      redis = client
      releasers.push(() => Promise.resolve(client.disconnect()))
      if (config.dedup.enabled) {
        const { createRedisDedupFilter } = await import('../../adapters/redis/dedup-filter.js')
        const shared = createRedisDedupFilter(client, { ttlSeconds: config.dedup.ttlSeconds, clock, logger })
        redisGate = shared.gate
        dedup = layerDedupFilters(memoryDedup, shared)
      }
    }
    const mlStream = await openMlStream(ctx, redis, metrics)
    releasers.push(() => mlStream.close())
    observeMlStream(metrics, () => mlStream.status())
    const dlq = mode === 'dead-letter' && config.dlq.enabled ? await openDlq(ctx) : undefined
    if (dlq) releasers.push(() => dlq.close())

    let replayer: AutoReplayer | undefined
    const iotBreaker = createStoreBreaker({ store: 'iot', config, clock, logger, metrics, onClosed: () => replayer?.trigger() })
    const universalBreaker = ctx.universal === ctx.iot ? iotBreaker : createStoreBreaker({ store: 'universal', config, clock, logger, metrics })
    // The legacy push of opened alerts (INTERNAL_API_KEY set): after each commit, never failing ingestion.
    let push: AlertPush | undefined
    if (config.ingest.internalApiKey !== undefined) {
      const { createLegacyPush } = await import('../../adapters/push/legacy-push.js')
      const created = createLegacyPush({ backendUrl: config.ingest.backendUrl, internalApiKey: config.ingest.internalApiKey, logger, onOutcome: (outcome) => metrics.alertPushes.inc({ outcome }) })
      push = created
      releasers.push(() => created.close())
    }
    const afterCommit = push ? (result: FlushResult) => push.announce(result.openedAlerts) : undefined
    const serviceDeps = { config, logger, clock, store: ctx.iot.ingest, metrics, diagnostics, dedup, counters, mlStream, ...(afterCommit ? { afterCommit } : {}) }
    const ingest = new IngestService({ ...serviceDeps, breaker: iotBreaker, dlq })
    const pointDeps = { config, logger, clock, store: ctx.universal.points, configs: createStreamConfigSource(ctx), metrics, breaker: universalBreaker, counters, afterCommit: (committed: readonly MlPoint[]) => mlStream.publishPoints(committed) }
    const points = new PointService({ ...pointDeps, dlq })

    if (dlq && (options.autoReplay ?? true)) {
      // Replays go through a service of their own without a DLQ, so a failing replay never adds a
      // second entry (the original entry's attempts count instead).
      const replayService = new IngestService(serviceDeps)
      releasers.push(() => replayService.close())
      const lease = config.dlq.backend === 'redis' && redis ? await redisLease(redis) : undefined
      const replayPoints = new PointService(pointDeps)
      releasers.push(() => replayPoints.close())
      replayer = new AutoReplayer(ctx, dlq, replayThroughIngest(replayService, replayPoints), {
        healthy: () => ingest.breaker.current === 'closed',
        intervalMs: config.dlq.consumerIntervalSeconds * 1000,
        batchSize: Math.max(config.dlq.consumerBatchSize, 100),
        ...(lease ? { lease } : {}),
      })
      const started = replayer
      releasers.push(() => started.close())
      started.start()
      // Entries left from an earlier run (an outage before a restart) are replayed once the store answers.
      started.trigger()
    }

    return {
      config,
      logger,
      clock,
      iot: ctx.iot,
      universal: ctx.universal,
      databases: ctx.databases,
      metrics,
      diagnostics,
      ingest,
      points,
      breakers: { iot: iotBreaker, universal: universalBreaker },
      dlq,
      dedup,
      redis,
      mlStream,
      counters,
      startedAt: clock.now(),
      async resilienceHealth() {
        const c = counters
        return {
          redis_available: true,
          redis_connected: redis?.status === 'ready',
          redis_configured: config.redis.url !== undefined,
          redis_gate: redisGate?.status() ?? null,
          deduplicator: { enabled: config.dedup.enabled, kind: dedup.kind, total_checked: c.dedupChecked, duplicates_found: c.dedupHits, ttl_seconds: config.dedup.ttlSeconds },
          dlq: dlq
            ? await dlq.stats().then(
                (st) => ({ enabled: true, backend: st.backend, stream_name: st.backend === 'redis' ? config.dlq.streamName : null, depth: st.depth, pending: st.pending, parked: st.parked, capacity: st.capacity, oldest_failed_at: st.oldestFailedAt, by_stage: st.byStage, by_error_class: st.byErrorClass, total_sent: c.dlqSent, send_errors: c.dlqErrors, refused: c.dlqRefused }),
                (err: unknown) => ({ enabled: true, backend: dlq.backend, error: (err as Error).message, total_sent: c.dlqSent, send_errors: c.dlqErrors, refused: c.dlqRefused }),
              )
            : { enabled: false },
          breaker: iotBreaker.stats(),
          breakers: { iot: iotBreaker.stats(), universal: universalBreaker.stats() },
          replay: replayer?.stats ?? null,
          ml_stream: mlStream.status(),
        }
      },
      async close() {
        // The ingest path first (answers and commits what is queued), then what it used, newest first.
        await Promise.all([ingest.close(), points.close()])
        for (const release of releasers.reverse()) await release()
      },
    }
  } catch (err) {
    for (const release of releasers.reverse()) await release().catch(() => undefined)
    throw err
  }
}

/** The ML stream on the shared Redis client, or the no-op one (health says why) without Redis. */
async function openMlStream(ctx: AppContext, redis: RedisClient | undefined, metrics: Metrics): Promise<MlStream> {
  const settings = { minIntervalSeconds: ctx.config.ml.publishMinIntervalSeconds, maxLen: ctx.config.ml.streamMaxLen }
  if (!redis) {
    const { createNoopMlStream } = await import('../../adapters/ml-stream-noop.js')
    return createNoopMlStream('Redis not configured (REDIS_URL unset or REDIS_ENABLED=false)', settings)
  }
  const { createRedisMlStream } = await import('../../adapters/redis/ml-stream.js')
  return createRedisMlStream(redis, { ...settings, clock: ctx.clock, logger: ctx.logger, onEntries: (stream, outcome, n) => metrics.mlStreamEntries.inc({ stream, outcome }, n) })
}

/** A Redis lease (SET NX PX) so one replica at a time replays the shared DLQ. */
async function redisLease(client: RedisClient) {
  const { createRedisLease } = await import('../../adapters/redis/lease.js')
  return createRedisLease(client, 'dlq:replay:lease', 60_000)
}

/**
 * `ingest dlq replay`: entries re-run through the one ingest path of a runtime in `replay` mode (no DLQ
 * under it, no automatic replay beside it). close() commits what is queued and releases the runtime.
 */
export async function createIngestReplayer(ctx: AppContext): Promise<{ replay: ReplayFn; close(): Promise<void> }> {
  const runtime = await createIngestRuntime(ctx, { mode: 'replay' })
  return { replay: replayThroughIngest(runtime.ingest, runtime.points), close: () => runtime.close() }
}
