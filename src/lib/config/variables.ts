/**
 * Every environment variable `ingest` knows: the legacy service's (reference §14) and the new ones.
 * This one table drives parsing, validation, the problem lines of a bad configuration, secret
 * masking, warnings for accepted-but-ignored variables, and the README's variable table.
 */
export type VarKind =
  | { type: 'string' }
  | { type: 'url'; schemes: readonly string[] }
  | { type: 'int'; min?: number; max?: number }
  | { type: 'number'; min?: number; max?: number }
  | { type: 'bool' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'duration' }

export interface VarSpec {
  readonly kind: VarKind
  /** The default as the user would write it; undefined = unset. */
  readonly default?: string
  readonly aliases?: readonly string[]
  readonly secret?: boolean
  /** Accepted for compatibility, has no effect; a warning is logged when it is set. */
  readonly ignored?: string
  /**
   * Removed on purpose: turning it on is an error; an off value (0, false, no, off, empty), which is what
   * the legacy default meant, is accepted with a warning so a legacy `.env` still starts.
   */
  readonly removed?: string
  readonly group: string
  readonly description: string
}

const str = { type: 'string' } as const
const bool = { type: 'bool' } as const
const int = (min?: number, max?: number): VarKind => ({ type: 'int', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) })
const num = (min?: number, max?: number): VarKind => ({ type: 'number', ...(min === undefined ? {} : { min }), ...(max === undefined ? {} : { max }) })
const ignoredVar = (group: string, why: string): VarSpec => ({ kind: str, group, ignored: why, description: `accepted and ignored (${why})` })

export const VARIABLES = {
  // --- storage ---
  INGEST_DATA_DIR: { kind: str, default: './.ingest', group: 'storage', description: 'folder of the embedded SQLite database (ingest.db) and the local dead-letter queue; resolved to an absolute path' },
  INGEST_STORAGE: { kind: { type: 'enum', values: ['sqlite', 'postgres'] }, group: 'storage', description: 'engine of the universal + operations store; default: postgres when a PostgreSQL URL is set, else sqlite' },
  IOT_STORAGE: { kind: { type: 'enum', values: ['sqlite', 'postgres', 'sqlserver'] }, group: 'storage', description: 'engine of the IoT store; default: sqlserver when SQL Server is configured, else the universal engine' },
  DATABASE_URL: { kind: { type: 'url', schemes: ['postgres', 'postgresql', 'mssql', 'sqlserver'] }, secret: true, group: 'storage', description: 'postgres:// (also postgresql+driver://) selects PostgreSQL; mssql:// or sqlserver:// selects SQL Server for IoT' },
  POSTGRES_URL: { kind: { type: 'url', schemes: ['postgres', 'postgresql'] }, secret: true, group: 'storage', description: 'PostgreSQL URL (wins over a postgres DATABASE_URL)' },
  MSSQL_URL: { kind: { type: 'url', schemes: ['mssql', 'sqlserver'] }, secret: true, group: 'storage', description: 'SQL Server URL for the IoT store: mssql://user:password@host:port/database' },
  DB_HOST: { kind: str, default: 'localhost', group: 'storage', description: 'SQL Server host (legacy); setting any DB_* variable selects SQL Server' },
  DB_PORT: { kind: int(1, 65535), default: '1434', group: 'storage', description: 'SQL Server port (legacy default 1434)' },
  DB_USER: { kind: str, default: 'sa', group: 'storage', description: 'SQL Server user' },
  DB_PASSWORD: { kind: str, default: '', secret: true, group: 'storage', description: 'SQL Server password' },
  DB_NAME: { kind: str, default: 'iot_monitoring_system', group: 'storage', description: 'SQL Server database' },
  DB_ENCRYPT: { kind: bool, default: 'true', group: 'storage', description: 'SQL Server: encrypt the connection' },
  DB_TRUST_SERVER_CERTIFICATE: { kind: bool, default: 'false', group: 'storage', description: 'SQL Server: accept a self-signed certificate' },
  DB_POOL_MAX: { kind: int(1, 200), default: '10', group: 'storage', description: 'connections per server pool' },
  DB_CONNECT_TIMEOUT_MS: { kind: int(100), default: '5000', group: 'storage', description: 'connect timeout of every server pool' },
  DB_QUERY_TIMEOUT_MS: { kind: int(100), default: '10000', group: 'storage', description: 'client-side query timeout' },
  DB_STATEMENT_TIMEOUT_MS: { kind: int(100), default: '10000', group: 'storage', description: 'server-side statement timeout (PostgreSQL statement_timeout, SQL Server request timeout)' },
  IOT_MSSQL_PROCEDURE: { kind: bool, default: 'false', group: 'storage', description: 'SQL Server: hand each reading to dbo.sp_insert_reading_and_check_threshold instead of our rules engine' },
  ODBC_DRIVER: ignoredVar('storage', 'the mssql driver needs no ODBC'),
  IOT_ENV_FILE: ignoredVar('storage', 'only ./.env is read'),

  // --- HTTP server ---
  PORT: { kind: int(0, 65535), default: '8001', group: 'http', description: 'HTTP port of `ingest serve` (flag --port)' },
  HOST: { kind: str, default: '127.0.0.1', group: 'http', description: 'HTTP bind address (0.0.0.0 in a container; flag --host)' },
  TRUST_PROXY: { kind: bool, default: 'false', group: 'http', description: 'trust X-Forwarded-For / X-Real-IP for the client address' },
  HTTP_BODY_LIMIT_BYTES: { kind: int(1024), default: '1048576', group: 'http', description: 'largest request body (413 above)' },
  HTTP_MAX_JSON_DEPTH: { kind: int(2, 256), default: '32', group: 'http', description: 'deepest JSON accepted (422 above)' },
  HTTP_MAX_ITEMS: { kind: int(1), default: '10000', group: 'http', description: 'most readings or points in one request' },
  SHUTDOWN_TIMEOUT_SECONDS: { kind: num(0), default: '25', group: 'http', description: 'graceful drain deadline on SIGTERM' },
  IDEMPOTENCY_TTL_HOURS: { kind: num(0), default: '24', group: 'http', description: 'how long an Idempotency-Key answer is kept' },
  NODE_ENV: { kind: str, group: 'http', description: 'accepted; auth is closed by default in every environment' },
  ENVIRONMENT: { kind: str, group: 'http', description: 'accepted; auth is closed by default in every environment' },
  LOG_LEVEL: { kind: { type: 'enum', values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] }, default: 'info', group: 'http', description: 'log level (logs go to stderr)' },

  // --- auth and limits ---
  INGEST_API_KEY: { kind: str, secret: true, group: 'auth', description: 'global key (X-API-Key) for the legacy and read routes; unset = those routes are closed' },
  INGEST_ALLOW_UNAUTHENTICATED: { kind: bool, default: 'false', group: 'auth', description: 'development only: open the global-key routes when INGEST_API_KEY is unset' },
  LEGACY_API_KEY_ALLOWED: { kind: bool, default: 'true', group: 'auth', description: '/ingest/packets also accepts the correct global key (X-API-Key) instead of a device key' },
  METRICS_API_KEY: { kind: str, secret: true, group: 'auth', description: 'when set, /metrics needs it as X-API-Key' },
  DEVICE_AUTH_ENABLED: ignoredVar('auth', 'device authentication is always on'),
  API_KEY: ignoredVar('auth', 'the WebSocket uses role keys'),
  RATE_LIMIT_ENABLED: { kind: bool, default: 'true', group: 'auth', description: 'rate limits on (0 turns them off, e.g. for benchmarks)' },
  RATE_LIMIT_SENSOR_PER_MIN: { kind: int(1), default: '60', group: 'auth', description: 'requests per minute per sensor on the legacy endpoints' },
  RATE_LIMIT_DEVICE_PER_MIN: { kind: int(1), default: '300', group: 'auth', description: 'requests per minute per device on /ingest/packets' },
  RATE_LIMIT_GLOBAL_PER_MIN: { kind: int(1), default: '1000', group: 'auth', description: 'requests per minute per client address' },
  SENSOR_MAP_TTL_SECONDS: { kind: num(0), default: '300', group: 'auth', description: 'cache TTL of (device, sensor) uuid -> sensor id' },
  SENSOR_NEGATIVE_TTL_SECONDS: { kind: num(0), default: '10', group: 'auth', description: 'cache TTL of unknown (device, sensor) pairs' },

  // --- ingest path ---
  BATCH_MAX_SIZE: { kind: int(1, 1_000_000), default: '10000', group: 'ingest', description: 'most items in one group-commit flush' },
  BATCH_BUFFER_SIZE: { kind: int(1, 10_000_000), default: '200000', group: 'ingest', description: 'most items queued for commit; beyond it HTTP answers 503 + Retry-After. A value below HTTP_MAX_ITEMS (such as the legacy 100) is raised to HTTP_MAX_ITEMS with a warning' },
  BATCH_FLUSH_CONCURRENCY: { kind: int(0, 16), default: '0', group: 'ingest', description: 'flushes that may run at once on separate connections (0: the engine default, 3 on PostgreSQL, 1 elsewhere)' },
  BATCH_FLUSH_INTERVAL: { kind: num(0, 60), default: '0', group: 'ingest', description: 'seconds a flush may linger for more items (0: flush as soon as the previous flush ended); answers wait for the commit, so above 1 s (such as the legacy 5.0) a warning is logged' },
  MAX_FUTURE_SKEW_SECONDS: { kind: num(0), default: '300', group: 'ingest', description: 'live readings more than this ahead of the server clock are rejected' },
  MAX_AGE_DAYS: { kind: num(0), default: '30', group: 'ingest', description: 'live readings older than this are rejected (backfill exempt)' },
  STALE_AFTER_SECONDS: { kind: num(1), default: '7200', group: 'ingest', description: 'a sensor silent this long is STALE; its next reading restarts warm-up' },
  STREAM_CONFIG_TTL_SECONDS: { kind: num(0), default: '60', group: 'ingest', description: 'cache TTL of universal stream configs (stream_configs + value_constraints), also of series without one (built-in defaults); 0 reads them every flush' },
  INGEST_COMMIT_TIMEOUT_SECONDS: { kind: num(0.1), default: '20', group: 'ingest', description: 'the longest a request waits for its items to commit; then 503 + Retry-After (the items may still commit: a retry reports them as duplicates)' },
  SP_MAX_RETRIES: { kind: int(0, 20), default: '3', group: 'ingest', description: 'attempts of a store write on transient errors' },
  INTERNAL_API_KEY: { kind: str, secret: true, group: 'ingest', description: 'when set, each opened alert is POSTed to $BACKEND_URL/notifications/internal/trigger-push' },
  BACKEND_URL: { kind: { type: 'url', schemes: ['http', 'https'] }, default: 'http://localhost:3000', group: 'ingest', description: 'legacy backend for push notifications' },

  // --- Redis, dedup, DLQ, breaker ---
  REDIS_URL: { kind: { type: 'url', schemes: ['redis', 'rediss'] }, secret: true, group: 'resilience', description: 'Redis for the dedup pre-filter, rate limits, the redis DLQ and the ML stream; unset = not used' },
  REDIS_ENABLED: { kind: bool, default: 'true', group: 'resilience', description: 'false ignores REDIS_URL' },
  REDIS_KEY_PREFIX: { kind: str, default: '', group: 'resilience', description: 'prefix of every Redis key and stream (tenants, tests)' },
  DEDUP_ENABLED: { kind: bool, default: 'true', group: 'resilience', description: 'dedup pre-filter on (the database keys always decide)' },
  DEDUP_TTL_SECONDS: { kind: int(1), default: '300', group: 'resilience', description: 'TTL of dedup:msg:<id> markers' },
  DLQ_ENABLED: { kind: bool, default: 'true', group: 'resilience', description: 'dead-letter queue on' },
  DLQ_BACKEND: { kind: { type: 'enum', values: ['local', 'redis'] }, default: 'local', group: 'resilience', description: 'local (SQLite file in INGEST_DATA_DIR) or redis (stream, for several replicas)' },
  DLQ_STREAM_NAME: { kind: str, default: 'dlq:ingest', group: 'resilience', description: 'Redis stream of the redis DLQ' },
  DLQ_MAX_LEN: { kind: int(1), default: '10000', aliases: ['DLQ_MAX_SIZE'], group: 'resilience', description: 'DLQ capacity; beyond it new entries are refused (never trimmed)' },
  DLQ_MAX_RETRIES: { kind: int(0), default: '3', group: 'resilience', description: 'failed replays before an entry is parked' },
  DLQ_CONSUMER_BATCH_SIZE: { kind: int(1), default: '10', group: 'resilience', description: 'entries per automatic replay step' },
  DLQ_CONSUMER_INTERVAL_SEC: { kind: num(0), default: '60', group: 'resilience', description: 'seconds between automatic replay steps' },
  DLQ_ARCHIVE_STREAM: ignoredVar('resilience', 'parked entries stay in the DLQ'),
  CB_FAILURE_THRESHOLD: { kind: int(1), default: '5', aliases: ['ML_INGEST_CB_FAILURE_THRESHOLD'], group: 'resilience', description: 'consecutive outage errors that open a store breaker' },
  CB_RECOVERY_TIMEOUT: { kind: num(0), default: '30', aliases: ['ML_INGEST_CB_TIMEOUT_SECONDS'], group: 'resilience', description: 'seconds open before one half-open probe' },
  CB_SUCCESS_THRESHOLD: { kind: int(1), default: '2', group: 'resilience', description: 'successes in half-open that close the breaker' },
  CB_OPEN_ACTION: { kind: { type: 'enum', values: ['503', 'dlq'] }, default: '503', group: 'resilience', description: 'while open: answer 503 + Retry-After, or dead-letter' },
  ML_INGEST_CIRCUIT_BREAKER_ENABLED: { kind: bool, default: 'true', group: 'resilience', description: 'store breakers on' },

  // --- features, MQTT ---
  FF_MQTT_INGEST_ENABLED: { kind: bool, default: 'false', group: 'mqtt', description: '`ingest serve` also runs the MQTT receivers (same as `serve --mqtt`)' },
  FF_MQTT_UNIVERSAL: { kind: bool, default: 'false', group: 'mqtt', description: '`serve --mqtt` also subscribes to the universal topics {domain}/{source}/{stream}/data (`mqtt listen` takes --topics)' },
  FF_MQTT_MULTI_DOMAIN: { kind: bool, default: 'false', group: 'mqtt', description: 'alias of FF_MQTT_UNIVERSAL (legacy name)' },
  FF_MQTT_INGEST_DUAL_MODE: ignoredVar('mqtt', 'unused by the legacy service too'),
  FF_WEBSOCKET_ENABLED: { kind: bool, default: 'true', group: 'mqtt', description: 'WebSocket /ingest/stream' },
  FF_CSV_ENABLED: { kind: bool, default: 'true', group: 'mqtt', description: 'POST /ingest/csv' },
  CSV_UPLOAD_MAX_BYTES: { kind: int(1), default: '1073741824', group: 'mqtt', description: 'largest POST /ingest/csv upload (streamed to disk; 413 above it, nothing kept)' },
  WS_MAX_PAYLOAD_BYTES: { kind: int(1024), default: '1048576', group: 'mqtt', description: 'largest WebSocket message; a larger one closes the connection with code 1009' },
  WS_MAX_IN_FLIGHT: { kind: int(1, 64), default: '4', group: 'mqtt', description: 'data frames of one WebSocket connection being committed at once; past it the server stops reading that connection until an ack is written (acks stay in frame order)' },
  WS_MAX_BUFFERED_BYTES: { kind: int(1024), default: '1048576', group: 'mqtt', description: 'answers a WebSocket client has not read yet; above it the server stops reading its frames' },
  WS_SLOW_CLIENT_TIMEOUT_SECONDS: { kind: num(0.1), default: '10', group: 'mqtt', description: 'a WebSocket client whose unread answers stay above WS_MAX_BUFFERED_BYTES this long is disconnected (1008)' },
  WS_PING_INTERVAL_SECONDS: { kind: num(0), default: '15', group: 'mqtt', description: 'WebSocket ping period; 0 = no pings' },
  WS_PONG_TIMEOUT_SECONDS: { kind: num(0.1), default: '10', group: 'mqtt', description: 'a WebSocket client that does not answer a ping within this time is dropped' },
  WS_CONNECT_TIMEOUT_SECONDS: { kind: num(0.1), default: '10', group: 'mqtt', description: "time a WebSocket client has to send its 'connect' frame after the upgrade (1008 after it)" },
  FF_MQTT_MODULAR_RECEIVER: ignoredVar('mqtt', 'there is one receiver'),
  MQTT_URL: { kind: { type: 'url', schemes: ['mqtt', 'mqtts', 'tcp', 'ssl', 'tls', 'ws', 'wss'] }, secret: true, group: 'mqtt', description: 'broker URL (wins over MQTT_BROKER_HOST/PORT); mqtts:// for TLS (with MQTT_CA_FILE for a private CA); user:password in the URL are used when MQTT_USERNAME is unset' },
  MQTT_BROKER_HOST: { kind: str, default: 'localhost', group: 'mqtt', description: 'MQTT broker host (when MQTT_URL is unset)' },
  MQTT_BROKER_PORT: { kind: int(1, 65535), default: '1883', group: 'mqtt', description: 'MQTT broker port (when MQTT_URL is unset)' },
  MQTT_USERNAME: { kind: str, group: 'mqtt', description: 'MQTT user, used when both user and password are set' },
  MQTT_PASSWORD: { kind: str, secret: true, group: 'mqtt', description: 'MQTT password' },
  MQTT_CA_FILE: { kind: str, group: 'mqtt', description: 'PEM file of the CA that signed the broker certificate (mqtts://); default: the system CAs' },
  MQTT_USE_TLS: ignoredVar('mqtt', 'unused by the legacy service too; a TLS broker is chosen by an mqtts:// MQTT_URL'),
  MQTT_CLIENT_ID: { kind: str, group: 'mqtt', description: 'client id prefix; connection i is <prefix>-<i>. Default ingest-<host name>-<command>; set a distinct one per replica when replicas share a host name' },
  MQTT_CONNECTIONS: { kind: int(1, 256), default: '64', group: 'mqtt', description: 'MQTT connections in the shared-subscription group (each handles one message at a time: throughput ~ connections / commit latency; 64 persisted 2.1x what 8 did in bench/RESULTS.md)' },
  MQTT_SHARED_GROUP: { kind: str, default: 'ingest', group: 'mqtt', description: 'shared-subscription group ($share/<group>/...): replicas in one group split the messages; none = plain subscriptions on one connection, nothing lost across a broker restart (Mosquitto 2.0.x drops $share subscriptions on restart: see MQTT)' },
  MQTT_TOPIC_PREFIX: { kind: str, default: '', group: 'mqtt', description: 'prefix of every topic (a / is added when missing), for tenants and tests' },
  MQTT_KEEPALIVE_SECONDS: { kind: int(5, 3600), default: '30', group: 'mqtt', description: 'MQTT keep-alive interval' },
  MQTT_STATS_LOG_INTERVAL_SECONDS: { kind: int(0), default: '60', group: 'mqtt', description: 'period of the one-line MQTT stats summary in the log; 0 turns it off' },
  MQTT_DEDUP_TTL_SECONDS: ignoredVar('mqtt', 'unused by the legacy service too; every transport shares DEDUP_TTL_SECONDS'),
  ML_MQTT_ASYNC_PROCESSING: ignoredVar('mqtt', 'messages are acked after commit'),
  ML_MQTT_QUEUE_SIZE: ignoredVar('mqtt', 'the ingest queue is BATCH_BUFFER_SIZE'),
  ML_MQTT_NUM_WORKERS: ignoredVar('mqtt', 'see MQTT_CONNECTIONS'),
  MQTT_QUEUE_MAX_SIZE: ignoredVar('mqtt', 'the ingest queue is BATCH_BUFFER_SIZE'),
  MQTT_RATE_LIMIT_PER_SEC: ignoredVar('mqtt', 'backpressure stops acking instead'),
  MQTT_DROP_OLDEST: ignoredVar('mqtt', 'nothing is dropped'),

  // --- ML stream and jobs ---
  USE_REDIS_BROKER: ignoredVar('ml', 'the ML stream is on whenever Redis is configured'),
  ML_PUBLISH_MIN_INTERVAL_SECONDS: { kind: num(0), default: '1.0', group: 'ml', description: 'readings:validated throttle per sensor, by data time' },
  ML_STREAM_MAXLEN: { kind: int(1), default: '10000', group: 'ml', description: 'approximate MAXLEN of the ML streams' },
  AI_EXPLAINER_URL: { kind: { type: 'url', schemes: ['http', 'https'] }, default: 'http://localhost:8003', group: 'ml', description: 'explainer service of `ingest explain anomalies`' },
  ML_DEFAULT_ENGINE: { kind: str, default: 'baseline_moving_average', group: 'ml', description: 'default engine of `ingest batch predict` (baseline or taylor)' },
  ML_USE_TAYLOR_PREDICTOR: { kind: bool, default: 'false', group: 'ml', description: 'use the taylor engine by default' },
  ML_TAYLOR_ORDER: { kind: int(1, 3), default: '2', group: 'ml', description: 'taylor order (1-3)' },
  ML_TAYLOR_HORIZON: { kind: int(1), default: '1', group: 'ml', description: 'taylor horizon in steps' },
  ML_TAYLOR_SENSOR_WHITELIST: { kind: str, group: 'ml', description: 'comma-separated sensor ids that use taylor' },
  ML_BATCH_PARALLEL_WORKERS: { kind: int(1, 64), default: '1', group: 'ml', description: 'default --concurrency of `ingest batch predict`' },
  ML_BATCH_USE_ENTERPRISE: ignoredVar('ml', 'the enterprise ML container is out of scope'),
  ML_BATCH_ENTERPRISE_SENSORS: ignoredVar('ml', 'the enterprise ML container is out of scope'),
  ML_BATCH_BASELINE_ONLY_SENSORS: ignoredVar('ml', 'the enterprise ML container is out of scope'),
  ML_ROLLBACK_TO_BASELINE: ignoredVar('ml', 'the enterprise ML container is out of scope'),
  ML_STREAM_PREDICTIONS_ENABLED: ignoredVar('ml', 'read by the ML service, not by ingest'),
  ML_USE_KALMAN_FILTER: ignoredVar('ml', 'read by the ML library, not by ingest'),

  // --- removed on purpose ---
  INGEST_DEBUG_FORCE_PERSIST: { kind: bool, group: 'removed', removed: 'the debug write hook is gone (it let any client inject fake readings)', description: 'removed; 0/false/no/off is accepted with a warning' },
  INGEST_DEBUG_ERRORS: { kind: bool, group: 'removed', removed: 'error details are logged, never sent to clients', description: 'removed; 0/false/no/off is accepted with a warning' },
  INGEST_DEBUG_DB_IDENTITY: { kind: bool, group: 'removed', removed: 'use LOG_LEVEL=debug', description: 'removed; 0/false/no/off is accepted with a warning' },
} as const satisfies Record<string, VarSpec>

export type VarName = keyof typeof VARIABLES
