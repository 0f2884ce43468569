import type { Config } from '../../config/index.js'
import { classifyStoreError } from '../../errors/index.js'
import type { Logger } from '../../log/index.js'
import type { Clock } from '../../ports/clock.js'
import type { Metrics } from '../metrics.js'
import { CircuitBreaker } from './circuit-breaker.js'

/** The circuit breaker of one store (DESIGN §6), with its state in logs and metrics. */
export function createStoreBreaker(options: { store: 'iot' | 'universal'; config: Config; clock: Clock; logger: Logger; metrics: Metrics; onClosed?: () => void }): CircuitBreaker {
  const { config, logger, metrics, store } = options
  return new CircuitBreaker({
    name: `${store}-store`,
    enabled: config.breaker.enabled,
    failureThreshold: config.breaker.failureThreshold,
    recoveryTimeoutMs: config.breaker.recoveryTimeoutSeconds * 1000,
    successThreshold: config.breaker.successThreshold,
    clock: options.clock,
    isOutage: (err) => classifyStoreError(err) === 'outage',
    onStateChange: (from, to) => {
      logger.warn({ breaker: `${store}-store`, from, to }, 'circuit breaker state change')
      metrics.breakerState.set({ store }, to === 'closed' ? 0 : to === 'half_open' ? 1 : 2)
      if (to === 'closed') options.onClosed?.()
    },
  })
}
