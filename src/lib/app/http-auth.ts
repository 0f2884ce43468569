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

/** The first 12 hex digits of a credential's SHA-256: enough to tell keys apart in the audit, never the key. */
export function credentialOf(apiKey: string | undefined): string | null {
  return apiKey === undefined ? null : createHash('sha256').update(apiKey).digest('hex').slice(0, 12)
}

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
    source: async (input) => {
      const meta = { sourceIp: input.sourceIp, transport: input.transport }
      const r = await authenticator.authenticateRole({ apiKey: input.apiKey, ...meta })
      if (!r.ok) return outcome(r) as Extract<AuthOutcome, { ok: false }>
      const decision = authenticator.authorizeWrite(r.principal, { sourceId: input.sourceId, domain: input.domain, ...meta })
      if (!decision.allowed) return { ok: false, reason: 'forbidden', code: decision.code, detail: decision.detail }
      return { ok: true, principal: principalName(r.principal), credential: credentialOf(input.apiKey) }
    },
    credential: credentialOf,
    metrics: (apiKey) => metricsKey !== undefined && apiKey !== undefined && timingSafeEqual(digest(apiKey), digest(metricsKey)),
  }
}
