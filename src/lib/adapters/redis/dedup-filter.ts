import type { Clock } from '../../ports/clock.js'
import type { DedupFilter } from '../../ports/dedup-filter.js'
import type { Logger } from '../../log/index.js'
import { BackoffGate } from './backoff-gate.js'
import type { RedisClient } from './client.js'

/**
 * The Redis dedup pre-filter: `dedup:msg:<id>` markers with DEDUP_TTL_SECONDS, shared by replicas,
 * written only after the commit (pipelined SET ... EX). Failures are remembered for a back-off period.
 */
export function createRedisDedupFilter(client: RedisClient, options: { ttlSeconds: number; clock: Pick<Clock, 'now'>; logger?: Logger }): DedupFilter & { gate: BackoffGate } {
  const gate = new BackoffGate(options.clock, { initialMs: 1_000, maxMs: 30_000, name: 'dedup', logger: options.logger })
  const key = (k: string) => `dedup:msg:${k}`
  // The client connects lazily with no offline queue: connect now, and skip (without counting a
  // failure) while it is not ready yet, so start-up does not look like an outage.
  if (client.status === 'wait') client.connect().catch(() => undefined)
  const ready = () => client.status === 'ready'
  return {
    kind: 'redis',
    gate,
    async seen(keys) {
      if (keys.length === 0 || !ready()) return new Set()
      return gate.run(async () => {
        const values = await client.mget(...keys.map(key))
        const out = new Set<string>()
        values.forEach((v, i) => {
          if (v !== null) out.add(keys[i] as string)
        })
        return out
      }, new Set<string>())
    },
    remember(keys) {
      if (keys.length === 0 || !ready()) return
      void gate.run(async () => {
        const pipe = client.pipeline()
        for (const k of keys) pipe.set(key(k), '1', 'EX', options.ttlSeconds)
        const results = await pipe.exec()
        const failed = results?.find(([err]) => err)
        if (failed?.[0]) throw failed[0]
      }, undefined)
    },
  }
}
