import type { FastifyInstance } from 'fastify'

import { header, refuse } from '../route-helpers.js'
import type { HttpRuntime } from '../runtime.js'

/** The MQTT receivers' figures as the routes read them (lib/mqtt's MqttStats satisfies it). */
export interface MqttStatusSource {
  /** `/mqtt/health`: `{enabled: true, type, health: {...}}`. */
  health(): Record<string, unknown>
  /** `/mqtt/stats`: `{enabled: true, type, stats: {...}}`. */
  snapshot(): Record<string, unknown>
}

/** A runtime that may run the MQTT receivers in-process (`serve --mqtt`, `mqtt listen`). */
export type MqttAwareRuntime = HttpRuntime & { readonly mqtt?: MqttStatusSource | undefined }

/**
 * `/mqtt/health` (no credential) and `/mqtt/stats` (global key or any role key, DESIGN §7), reference
 * §1.7 shapes; `enabled: false` when no receiver runs in this process.
 */
export function registerMqttRoutes(app: FastifyInstance, rt: MqttAwareRuntime): void {
  app.get('/mqtt/health', () => rt.mqtt?.health() ?? { enabled: false, reason: 'FF_MQTT_INGEST_ENABLED=false or receiver not started' })

  app.get('/mqtt/stats', async (req, reply) => {
    const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: false, route: '/mqtt/stats' })
    if (!auth.ok) return refuse(rt, reply, auth, '/mqtt/stats')
    return rt.mqtt?.snapshot() ?? { enabled: false }
  })
}
