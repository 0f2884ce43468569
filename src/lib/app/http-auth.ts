import { timingSafeEqual, createHash } from 'node:crypto'

import { type AuthResult, createAuthenticator, type Principal } from './authenticate.js'
import type { AppContext } from './context.js'
import type { AuthOutcome, HttpAuth } from './serve.js'

/** A short, non-secret name of the caller (idempotency scope, logs). */
export function principalName(p: Principal): string {
  switch (p.type) {
    case 'device':
      return `device:${p.deviceId}:${p.kid ?? p.keyId}`
    case 'role':
      return `role:${p.kid}`
    case 'global':
      return 'global'
    case 'anonymous':
      return 'anonymous'
  }
}

function outcome(r: AuthResult): AuthOutcome {
  return r.ok ? { ok: true, principal: principalName(r.principal) } : { ok: false, reason: r.reason, code: r.code }
}

const digest = (s: string) => createHash('sha256').update(s).digest()

/** The routes' view of the authenticator (device keys in the IoT store, role keys and audit in the universal one). */
export function createHttpAuth(ctx: AppContext): HttpAuth {
  const authenticator = createAuthenticator({
    config: ctx.config,
    deviceKeys: ctx.iot.deviceKeys,
    roleKeys: ctx.universal.roleKeys,
    securityAudit: ctx.universal.securityAudit,
    clock: ctx.clock,
    logger: ctx.logger,
  })
  const metricsKey = ctx.config.auth.metricsApiKey
  return {
    device: async (input) => outcome(await authenticator.authenticateDevice({ deviceUuid: input.deviceUuid, deviceKey: input.deviceKey, apiKey: input.apiKey, sourceIp: input.sourceIp })),
    global: async (input) => outcome(await authenticator.authenticateGlobal({ apiKey: input.apiKey, sourceIp: input.sourceIp, requireRole: input.write ? 'admin' : undefined })),
    metrics: (apiKey) => metricsKey !== undefined && apiKey !== undefined && timingSafeEqual(digest(apiKey), digest(metricsKey)),
  }
}
