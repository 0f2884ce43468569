export type UniversalEngine = 'sqlite' | 'postgres'
export type IotEngine = 'sqlite' | 'postgres' | 'sqlserver'
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'

export interface SqlServerConfig {
  url: string | undefined
  host: string
  port: number
  user: string
  password: string
  database: string
  encrypt: boolean
  trustServerCertificate: boolean
  useProcedure: boolean
}

/** The one typed, validated configuration (see variables.ts for each setting's variable). */
export interface Config {
  dataDir: string
  storage: {
    universal: UniversalEngine
    iot: IotEngine
    postgresUrl: string | undefined
    mssql: SqlServerConfig | undefined
    poolMax: number
    connectTimeoutMs: number
    queryTimeoutMs: number
    statementTimeoutMs: number
  }
  http: {
    host: string
    port: number
    trustProxy: boolean
    bodyLimitBytes: number
    maxJsonDepth: number
    maxItems: number
    shutdownTimeoutSeconds: number
    idempotencyTtlHours: number
  }
  auth: {
    ingestApiKey: string | undefined
    allowUnauthenticated: boolean
    legacyApiKeyAllowed: boolean
    metricsApiKey: string | undefined
  }
  rateLimit: { enabled: boolean; sensorPerMin: number; devicePerMin: number; globalPerMin: number }
  resolver: { ttlSeconds: number; negativeTtlSeconds: number }
  ingest: {
    batchMaxSize: number
    bufferSize: number
    flushIntervalMs: number
    /** 0: the engine's default. */
    flushConcurrency: number
    maxFutureSkewSeconds: number
    maxAgeDays: number
    staleAfterSeconds: number
    /** Cache TTL of universal stream configs (STREAM_CONFIG_TTL_SECONDS). */
    streamConfigTtlSeconds: number
    storeMaxRetries: number
    commitTimeoutMs: number
    internalApiKey: string | undefined
    backendUrl: string
  }
  redis: { url: string | undefined; keyPrefix: string }
  dedup: { enabled: boolean; ttlSeconds: number }
  dlq: {
    enabled: boolean
    backend: 'local' | 'redis'
    streamName: string
    maxLen: number
    maxRetries: number
    consumerBatchSize: number
    consumerIntervalSeconds: number
  }
  breaker: { enabled: boolean; failureThreshold: number; recoveryTimeoutSeconds: number; successThreshold: number; openAction: '503' | 'dlq' }
  features: { mqttIngest: boolean; mqttUniversal: boolean; websocket: boolean; csv: boolean }
  /** POST /ingest/csv: the largest upload in bytes. */
  csvUpload: { maxBytes: number }
  /** WebSocket /ingest/stream limits (times in ms). */
  websocket: { maxPayloadBytes: number; maxInFlight: number; maxBufferedBytes: number; slowClientTimeoutMs: number; pingIntervalMs: number; pongTimeoutMs: number; connectTimeoutMs: number }
  mqtt: {
    /** The broker URL: MQTT_URL, or mqtt://MQTT_BROKER_HOST:MQTT_BROKER_PORT. */
    url: string
    username: string | undefined
    password: string | undefined
    caFile: string | undefined
    /** MQTT_CLIENT_ID; undefined = derived from the host name and the command. */
    clientId: string | undefined
    connections: number
    sharedGroup: string
    topicPrefix: string
    keepaliveSeconds: number
    statsLogIntervalSeconds: number
  }
  ml: {
    publishMinIntervalSeconds: number
    streamMaxLen: number
    explainerUrl: string
    defaultEngine: 'baseline' | 'taylor'
    taylorOrder: number
    taylorHorizon: number
    taylorSensorWhitelist: number[]
    parallelWorkers: number
  }
  logLevel: LogLevel
  /** Secret values (keys, passwords) that must never appear in output or logs. */
  secrets: readonly string[]
}
