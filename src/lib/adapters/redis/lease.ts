import { randomUUID } from 'node:crypto'

import type { RedisClient } from './client.js'

const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`

/** A lease in Redis: SET key token NX PX ttl; released only by its holder. */
export function createRedisLease(client: RedisClient, key: string, ttlMs: number): { acquire(): Promise<boolean>; release(): Promise<void> } {
  let token: string | undefined
  return {
    async acquire() {
      const t = randomUUID()
      const ok = await client.set(key, t, 'PX', ttlMs, 'NX')
      if (ok === 'OK') token = t
      return ok === 'OK'
    },
    async release() {
      if (!token) return
      const t = token
      token = undefined
      await client.eval(RELEASE, 1, key, t)
    },
  }
}
