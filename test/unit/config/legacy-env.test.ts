import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { afterAll, describe, expect, it } from 'vitest'

import { loadConfig, VARIABLES, type VarSpec } from '../../../src/lib/config/index.js'
import { tempDir } from '../../helpers/services.js'

/**
 * Every variable the legacy service read (reference §14), with its legacy default written out as a
 * legacy `.env` would have it. Kept here, not derived from VARIABLES, so a variable dropped from the
 * table (or one never added) fails the test.
 */
const LEGACY_ENV: Record<string, string> = {
  IOT_ENV_FILE: '../iot_monitor_backend/.env',
  DB_HOST: 'localhost',
  DB_PORT: '1434',
  DB_USER: 'sa',
  DB_PASSWORD: '',
  DB_NAME: 'iot_monitoring_system',
  ODBC_DRIVER: 'ODBC Driver 17 for SQL Server',
  FF_MQTT_INGEST_ENABLED: 'false',
  FF_MQTT_MODULAR_RECEIVER: 'false',
  FF_MQTT_MULTI_DOMAIN: 'false',
  FF_MQTT_UNIVERSAL: 'false',
  FF_WEBSOCKET_ENABLED: 'false',
  FF_CSV_ENABLED: 'false',
  FF_MQTT_INGEST_DUAL_MODE: 'false',
  MQTT_USE_TLS: 'false',
  MQTT_TOPIC_PREFIX: '',
  MQTT_DEDUP_TTL_SECONDS: '300',
  MQTT_BROKER_HOST: 'localhost',
  MQTT_BROKER_PORT: '1883',
  MQTT_USERNAME: '',
  MQTT_PASSWORD: '',
  ML_MQTT_ASYNC_PROCESSING: 'true',
  ML_MQTT_QUEUE_SIZE: '1000',
  ML_MQTT_NUM_WORKERS: '4',
  ML_INGEST_CIRCUIT_BREAKER_ENABLED: 'true',
  ML_INGEST_CB_FAILURE_THRESHOLD: '5',
  ML_INGEST_CB_TIMEOUT_SECONDS: '30',
  MQTT_QUEUE_MAX_SIZE: '10000',
  MQTT_RATE_LIMIT_PER_SEC: '0',
  MQTT_DROP_OLDEST: 'true',
  NODE_ENV: 'production',
  ENVIRONMENT: 'production',
  DEVICE_AUTH_ENABLED: '',
  LEGACY_API_KEY_ALLOWED: '1',
  API_KEY: '',
  RATE_LIMIT_ENABLED: '1',
  RATE_LIMIT_SENSOR_PER_MIN: '60',
  RATE_LIMIT_DEVICE_PER_MIN: '300',
  RATE_LIMIT_GLOBAL_PER_MIN: '1000',
  SENSOR_MAP_TTL_SECONDS: '300',
  REDIS_URL: 'redis://localhost:6379/0',
  REDIS_ENABLED: 'true',
  DEDUP_ENABLED: 'true',
  DEDUP_TTL_SECONDS: '300',
  DLQ_ENABLED: 'true',
  DLQ_STREAM_NAME: 'dlq:ingest',
  DLQ_MAX_LEN: '10000',
  DLQ_CONSUMER_BATCH_SIZE: '10',
  DLQ_CONSUMER_INTERVAL_SEC: '60',
  DLQ_MAX_RETRIES: '3',
  DLQ_ARCHIVE_STREAM: 'dlq:archive',
  CB_FAILURE_THRESHOLD: '5',
  CB_RECOVERY_TIMEOUT: '30',
  CB_SUCCESS_THRESHOLD: '2',
  USE_REDIS_BROKER: 'true',
  ML_PUBLISH_MIN_INTERVAL_SECONDS: '1.0',
  BATCH_BUFFER_SIZE: '100',
  BATCH_FLUSH_INTERVAL: '5.0',
  BATCH_MAX_SIZE: '500',
  INGEST_DEBUG_ERRORS: '0',
  INGEST_DEBUG_DB_IDENTITY: '0',
  INGEST_DEBUG_FORCE_PERSIST: '0',
  BACKEND_URL: 'http://localhost:3000',
  AI_EXPLAINER_URL: 'http://localhost:8003',
  ML_BATCH_PARALLEL_WORKERS: '1',
  ML_BATCH_USE_ENTERPRISE: 'false',
  ML_ROLLBACK_TO_BASELINE: 'false',
  ML_USE_TAYLOR_PREDICTOR: 'false',
  ML_TAYLOR_ORDER: '2',
  ML_TAYLOR_HORIZON: '1',
  ML_DEFAULT_ENGINE: 'baseline_moving_average',
  ML_USE_KALMAN_FILTER: 'false',
  ML_STREAM_PREDICTIONS_ENABLED: 'false',
}
// Read by the legacy service with no default worth writing out (unset there too).
const LEGACY_UNSET = ['DATABASE_URL', 'POSTGRES_URL', 'INGEST_API_KEY', 'INTERNAL_API_KEY', 'ML_TAYLOR_SENSOR_WHITELIST', 'ML_BATCH_ENTERPRISE_SENSORS', 'ML_BATCH_BASELINE_ONLY_SENSORS']

const known = new Set(Object.entries(VARIABLES as Record<string, VarSpec>).flatMap(([name, spec]) => [name, ...(spec.aliases ?? [])]))

describe('a legacy configuration', () => {
  const dir = tempDir()
  afterAll(() => dir.remove())

  it('every variable the legacy service read is in the variable table (so the README lists it)', () => {
    expect([...Object.keys(LEGACY_ENV), ...LEGACY_UNSET].filter((name) => !known.has(name))).toEqual([])
  })

  it('a legacy .env with every legacy default written out starts; each warning names its variable', () => {
    writeFileSync(join(dir.path, '.env'), `${Object.entries(LEGACY_ENV).map(([k, v]) => `${k}=${v}`).join('\n')}\n`)
    const { config, warnings } = loadConfig({ env: {}, cwd: dir.path })
    expect(config.storage.iot).toBe('sqlserver')
    expect(config.ingest.bufferSize).toBe(config.http.maxItems)
    expect(config.ingest.batchMaxSize).toBe(500)
    for (const w of warnings) expect(known.has(/^[A-Z][A-Z0-9_]*/.exec(w)?.[0] ?? ''), w).toBe(true)
    expect(warnings.some((w) => w.startsWith('BATCH_BUFFER_SIZE=100 ') && w.includes('using BATCH_BUFFER_SIZE=10000'))).toBe(true)
  })
})
