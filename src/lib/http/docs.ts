import type { FastifyInstance } from 'fastify'

const receipt = {
  type: 'object',
  properties: {
    inserted: { type: 'integer', description: 'rows actually stored' },
    duplicates: { type: 'integer' },
    rejected: { type: 'integer' },
    dead_lettered: { type: 'integer' },
    receipts: {
      type: 'array',
      items: {
        type: 'object',
        properties: { index: { type: 'integer' }, status: { enum: ['stored', 'duplicate', 'rejected', 'dead_lettered'] }, code: { type: 'string' }, dlq_id: { type: 'string' }, classification: { enum: ['ALERT', 'WARNING', 'ML_PREDICTION'] } },
      },
    },
  },
}
const number = { oneOf: [{ type: 'number' }, { type: 'string', pattern: '^[+-]?(\\d+(\\.\\d*)?|\\.\\d+)$' }], description: 'a finite number, or a plain decimal string' }
const errors = {
  '401': { description: '{"detail": "Invalid API key"} or "API key required"' },
  '413': { description: 'body over the limit' },
  '422': { description: 'validation error (pydantic-style detail list; json_invalid for malformed JSON)' },
  '429': { description: 'rate limited; Retry-After and X-RateLimit-Limit' },
  '503': { description: 'queue full or store unavailable; Retry-After' },
}
const apiKey = [{ apiKey: [] }]

/** The OpenAPI description of the HTTP API (DESIGN §9). */
export const OPENAPI = {
  openapi: '3.0.3',
  info: { title: 'ingest', version: '0.1.0', description: 'IoT and time-series ingestion. Wire-compatible with the legacy iot_ingest_services (v0.5.0).' },
  components: {
    securitySchemes: {
      apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      deviceKey: { type: 'apiKey', in: 'header', name: 'X-Device-Key' },
    },
  },
  paths: {
    '/health': { get: { summary: 'liveness', responses: { '200': { description: '{"status":"ok"}' } } } },
    '/ready': { get: { summary: 'readiness: 503 while a store is down', responses: { '200': { description: '{"status":"ready"}' }, '503': { description: '{"detail":"not ready"}' } } } },
    '/health/postgres': { get: { summary: 'PostgreSQL status', responses: { '200': { description: 'disabled | ok (latency_ms) | error' } } } },
    '/ingest/health': { get: { summary: 'universal ingestion status', responses: { '200': { description: 'status' } } } },
    '/metrics': { get: { summary: 'Prometheus metrics (X-API-Key when METRICS_API_KEY is set)', responses: { '200': { description: 'text/plain; version=0.0.4' } } } },
    '/ingest/packets': {
      post: {
        summary: 'a device packet of readings by sensor uuid',
        security: [{ deviceKey: [] }, { apiKey: [] }],
        parameters: [{ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string', maxLength: 255 } }],
        requestBody: {
          required: true,
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['device_uuid'],
                properties: {
                  device_uuid: { type: 'string', format: 'uuid' },
                  ts: { type: 'string', format: 'date-time' },
                  readings: { type: 'array', items: { type: 'object', required: ['sensor_uuid', 'value'], properties: { sensor_uuid: { type: 'string', format: 'uuid' }, value: number, sensor_ts: { type: 'number', description: 'epoch seconds' }, sequence: { type: 'integer' }, msg_id: { type: 'string' } } } },
                },
              },
            },
          },
        },
        responses: { '200': { description: 'receipt', content: { 'application/json': { schema: { ...receipt, properties: { ...receipt.properties, unknown_sensors: { type: 'array', items: { type: 'string' } }, ingested_ts: { type: 'number' } } } } } }, ...errors },
      },
    },
    '/ingest/readings': {
      post: {
        summary: 'one reading by internal sensor id (legacy)',
        security: apiKey,
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', required: ['sensor_id', 'value'], properties: { sensor_id: { type: 'integer', minimum: 1 }, value: number, timestamp: { type: 'string', format: 'date-time' } } } } } },
        responses: { '200': { description: 'receipt', content: { 'application/json': { schema: receipt } } }, ...errors },
      },
    },
    '/ingest/readings/bulk': {
      post: {
        summary: 'readings by internal sensor id (legacy batch)',
        security: apiKey,
        requestBody: { required: true, content: { 'application/json': { schema: { type: 'object', properties: { readings: { type: 'array', items: { type: 'object' } } } } } } },
        responses: { '200': { description: 'receipt', content: { 'application/json': { schema: receipt } } }, ...errors },
      },
    },
    '/sensors/{sensor_id}/status': {
      get: { summary: 'active alert, active delta-spike warning, current prediction', security: apiKey, parameters: [{ name: 'sensor_id', in: 'path', required: true, schema: { type: 'integer' } }], responses: { '200': { description: 'final_state alert|warning|prediction|unknown' }, '401': errors['401'], '422': errors['422'] } },
    },
    '/api/ingestion/diagnostics': { get: { summary: 'per-process timing diagnostics (alias /diagnostics)', security: apiKey, parameters: [{ name: 'sensor_id', in: 'query', required: false, schema: { type: 'integer' } }], responses: { '200': { description: 'diagnostics' } } } },
    '/api/ingestion/diagnostics/{sensor_id}': { get: { summary: 'diagnostics of one sensor', security: apiKey, parameters: [{ name: 'sensor_id', in: 'path', required: true, schema: { type: 'integer' } }], responses: { '200': { description: 'diagnostics' } } } },
    '/api/ingestion/health': { get: { summary: 'ingestion health summary', security: apiKey, responses: { '200': { description: 'healthy | degraded' } } } },
    '/mqtt/health': { get: { summary: 'MQTT receiver health', responses: { '200': { description: 'enabled false when not running' } } } },
    '/mqtt/stats': { get: { summary: 'MQTT receiver counters', security: apiKey, responses: { '200': { description: 'stats' } } } },
  },
} as const

const escape = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c] ?? c)

/** `/openapi.json` and a self-contained `/docs` page (no CDN: the service may run offline). */
export function registerDocs(app: FastifyInstance): void {
  app.get('/openapi.json', () => OPENAPI)
  app.get('/docs', async (_req, reply) => {
    const rows = Object.entries(OPENAPI.paths)
      .flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => `<tr><td><code>${method.toUpperCase()}</code></td><td><code>${escape(path)}</code></td><td>${escape((op as { summary: string }).summary)}</td></tr>`))
      .join('\n')
    return reply.type('text/html; charset=utf-8').send(`<!doctype html><html><head><meta charset="utf-8"><title>ingest API</title>
<style>body{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem}td{padding:.3rem .8rem;border-bottom:1px solid #ddd}</style></head>
<body><h1>ingest API</h1><p>${escape(OPENAPI.info.description)} Machine-readable: <a href="/openapi.json">/openapi.json</a>.</p>
<table>${rows}</table></body></html>`)
  })
}
