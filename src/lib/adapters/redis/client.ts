import { createHash } from 'node:crypto'

import { Redis } from 'ioredis'

import type { Logger } from '../../log/index.js'

export type RedisClient = Redis

export interface RedisClientOptions {
  /** `REDIS_KEY_PREFIX`: prepended by the client to every key argument (not to SCAN/KEYS patterns). */
  keyPrefix: string
  /** Default 2000 ms. */
  connectTimeoutMs?: number
  /** Any command not answered within this fails. Default 500 ms. */
  commandTimeoutMs?: number
  /** Delay before the n-th reconnection attempt: `initialMs` doubling up to `maxMs`. Default 1 s .. 60 s. */
  reconnect?: { initialMs: number; maxMs: number }
  /** Connection problems are logged here (once per outage at warn, then at debug). */
  logger?: Logger
}

/**
 * The one way the service builds a Redis client (rate limits, dedup, DLQ, ML stream), configured so
 * that Redis trouble never holds a request: nothing connects until first used (`lazyConnect`); while
 * not connected a command fails at once instead of queueing (`enableOfflineQueue: false`,
 * `maxRetriesPerRequest: 0`); a connected but silent server fails a command after `commandTimeoutMs`;
 * the client reconnects by itself in the background with an exponential back-off. Callers still
 * remember failures and stop calling for a while (see the rate limiter), and `quit()` it on shutdown.
 */
export function createRedisClient(url: string, options: RedisClientOptions): RedisClient {
  const initialMs = options.reconnect?.initialMs ?? 1_000
  const maxMs = options.reconnect?.maxMs ?? 60_000
  const client = new Redis(url, {
    keyPrefix: options.keyPrefix,
    lazyConnect: true,
    connectTimeout: options.connectTimeoutMs ?? 2_000,
    commandTimeout: options.commandTimeoutMs ?? 500,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectionName: 'ingest',
    retryStrategy: (times) => Math.min(maxMs, initialMs * 2 ** Math.min(30, Math.max(0, times - 1))),
  })
  const logger = options.logger
  let reported = false
  // Without an 'error' listener ioredis prints every failed reconnection to the console.
  client.on('error', (err: unknown) => {
    if (!logger) return
    if (reported) {
      logger.debug({ err }, 'redis: still unavailable')
    } else {
      reported = true
      logger.warn({ err }, 'redis: unavailable; retrying in the background')
    }
  })
  client.on('ready', () => {
    if (reported) logger?.info('redis: connected again')
    reported = false
  })
  return client
}

/** A Lua script and its SHA-1, for `evalScript`. */
export interface RedisScript {
  readonly lua: string
  readonly sha: string
}

export function defineScript(lua: string): RedisScript {
  return { lua, sha: createHash('sha1').update(lua).digest('hex') }
}

/**
 * Runs a script by EVALSHA (one short round trip); on NOSCRIPT (first use on this server, or after a
 * restart or SCRIPT FLUSH) by EVAL, which also caches it for the next EVALSHA. Key arguments get the
 * client's `keyPrefix`.
 */
export async function evalScript(client: RedisClient, script: RedisScript, keys: readonly string[], args: readonly string[]): Promise<unknown> {
  try {
    return await client.evalsha(script.sha, keys.length, ...keys, ...args)
  } catch (err) {
    if (!(err instanceof Error && err.message.startsWith('NOSCRIPT'))) throw err
    return await client.eval(script.lua, keys.length, ...keys, ...args)
  }
}
