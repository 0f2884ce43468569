import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

import { header, refuse } from '../route-helpers.js'
import type { HttpRuntime } from '../runtime.js'

/**
 * `/resilience/health` and `/health/resilience` (reference §1.14 fields, plus the breaker, the DLQ
 * backend, depth, oldest entry, parked count and replay statistics). Read credential required.
 */
export function registerResilienceRoutes(app: FastifyInstance, rt: HttpRuntime): void {
  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    const auth = await rt.auth.global({ apiKey: header(req, 'x-api-key'), sourceIp: req.clientAddress, write: false, route: '/resilience/health' })
    if (!auth.ok) return refuse(rt, reply, auth, '/resilience/health')
    return rt.resilienceHealth()
  }
  app.get('/resilience/health', handler)
  app.get('/health/resilience', handler)
}
