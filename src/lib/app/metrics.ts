import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'

import type { MlStreamStatus } from '../ports/ml-stream.js'

/** Prometheus metrics of one process (served on /metrics). */
export interface Metrics {
  readonly registry: Registry
  readonly requests: Counter<'route' | 'method' | 'status'>
  readonly items: Counter<'transport' | 'class' | 'outcome'>
  readonly flushSize: Histogram
  readonly commitSeconds: Histogram
  readonly flushErrors: Counter
  readonly queueDepth: Gauge
  readonly suspiciousZeros: Counter<'sensor_type'>
  readonly authFailures: Counter<'route' | 'reason'>
  readonly rateLimited: Counter<'scope'>
  readonly deadLettered: Counter<'stage' | 'error_class'>
  readonly dlqRefused: Counter
  readonly breakerState: Gauge<'store'>
  readonly alertPushes: Counter<'outcome'>
  readonly flushPhaseSeconds: Histogram<'phase'>
  readonly queueWaitSeconds: Histogram
  readonly mlStreamEntries: Counter<'stream' | 'outcome'>
}

/** Fine buckets from 0.25 ms to 1 s: the open-loop tail lives between 5 and 100 ms. */
const LATENCY_BUCKETS = [0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1]

export function createMetrics(): Metrics {
  const registry = new Registry()
  const m: Metrics = {
    registry,
    requests: new Counter({ name: 'ingest_http_requests_total', help: 'HTTP requests by route, method and status', labelNames: ['route', 'method', 'status'], registers: [registry] }),
    items: new Counter({ name: 'ingest_items_total', help: 'Items by transport, class and outcome (stored, duplicate, rejected, dead_lettered)', labelNames: ['transport', 'class', 'outcome'], registers: [registry] }),
    flushSize: new Histogram({ name: 'ingest_flush_size', help: 'Items per group-commit flush', buckets: [1, 10, 50, 100, 500, 1000, 2500, 5000, 10000, 20000], registers: [registry] }),
    commitSeconds: new Histogram({ name: 'ingest_commit_seconds', help: 'Duration of a group-commit flush transaction', buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers: [registry] }),
    flushErrors: new Counter({ name: 'ingest_flush_errors_total', help: 'Flushes that failed', registers: [registry] }),
    queueDepth: new Gauge({ name: 'ingest_queue_depth', help: 'Items waiting for a flush', registers: [registry] }),
    suspiciousZeros: new Counter({ name: 'ingest_suspicious_zero_total', help: 'Exact zeros of temperature/humidity/pressure/pH (never rejected)', labelNames: ['sensor_type'], registers: [registry] }),
    authFailures: new Counter({ name: 'ingest_auth_failures_total', help: 'Authentication failures', labelNames: ['route', 'reason'], registers: [registry] }),
    rateLimited: new Counter({ name: 'ingest_rate_limited_total', help: 'Requests refused by a rate limit', labelNames: ['scope'], registers: [registry] }),
    deadLettered: new Counter({ name: 'ingest_dead_lettered_total', help: 'Items written to the dead-letter queue', labelNames: ['stage', 'error_class'], registers: [registry] }),
    dlqRefused: new Counter({ name: 'ingest_dlq_refused_total', help: 'Items the full dead-letter queue refused (never trimmed)', registers: [registry] }),
    breakerState: new Gauge({ name: 'ingest_breaker_state', help: 'Store circuit breaker: 0 closed, 1 half-open, 2 open', labelNames: ['store'], registers: [registry] }),
    // Where a slow answer spends its time: waiting for a flush, then each part of the flush's transaction.
    flushPhaseSeconds: new Histogram({ name: 'ingest_flush_phase_seconds', help: 'Duration of each part of a group-commit flush (lock: BEGIN + rule-state locks, rules, classify, write: insert + effects + state + COMMIT)', labelNames: ['phase'], buckets: LATENCY_BUCKETS, registers: [registry] }),
    queueWaitSeconds: new Histogram({ name: 'ingest_queue_wait_seconds', help: 'Time a caller waited between submitting its items and the flush that took them', buckets: LATENCY_BUCKETS, registers: [registry] }),
    mlStreamEntries: new Counter({ name: 'ingest_ml_stream_entries_total', help: 'ML stream entries by stream and outcome: published (confirmed by Redis), throttled (readings:validated per-sensor throttle), dropped (Redis unavailable or failing, or the publish queue full)', labelNames: ['stream', 'outcome'], registers: [registry] }),
    alertPushes: new Counter({ name: 'ingest_alert_push_total', help: 'Legacy pushes of opened alerts to BACKEND_URL (INTERNAL_API_KEY set): sent, failed, dropped', labelNames: ['outcome'], registers: [registry] }),
  }
  return m
}

/**
 * Process metrics for a long-running command (serve, mqtt listen): prom-client's defaults, among them
 * GC pause durations by kind and event-loop lag, which show whether a tail comes from this process.
 */
export function collectProcessMetrics(metrics: Metrics): void {
  collectDefaultMetrics({ register: metrics.registry, gcDurationBuckets: LATENCY_BUCKETS, eventLoopMonitoringPrecision: 10 })
}

/**
 * The ML stream's state as gauges read at each scrape: on/off, Redis available, entries queued and in
 * flight (the lag), seconds since the last confirmed publish (-1: none yet).
 */
export function observeMlStream(metrics: Metrics, status: () => MlStreamStatus): void {
  const registers = [metrics.registry]
  const gauge = (name: string, help: string, read: (s: MlStreamStatus) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(status()))
      },
    })
  gauge('ingest_ml_stream_enabled', 'ML stream on (1: Redis configured) or off (0)', (s) => (s.enabled ? 1 : 0))
  gauge('ingest_ml_stream_available', 'ML stream Redis connected and not in a back-off period', (s) => (s.available ? 1 : 0))
  gauge('ingest_ml_stream_queued', 'ML stream entries waiting to be sent or in a pipeline not yet confirmed', (s) => s.queued)
  gauge('ingest_ml_stream_last_publish_age_seconds', 'Seconds since the ML stream last published (-1: nothing published yet)', (s) => s.lastPublishAgeSeconds ?? -1)
}
