import type { SecurityAuditStore, SecurityEvent } from '../../../ports/security-audit-store.js'
import type { Param, SqlExecutor } from './executor.js'

/** `__NOW__` becomes the dialect's "now": an event without `at` gets the database's clock. */
const INSERT = `INSERT INTO "security_audit_log"
  ("ts", "event_type", "outcome", "actor_type", "actor_kid", "actor_role", "source_ip", "transport", "request_id", "target_type", "target_id", "reason_code", "details")
VALUES (COALESCE(?, __NOW__), ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

/** Audit columns are short varchars: control characters (CR/LF log injection) removed, length clipped. */
function clip(v: string | null | undefined, max: number): string | null {
  if (v === null || v === undefined) return null
  // eslint-disable-next-line no-control-regex
  return v.replace(/[\u0000-\u001f\u007f]/g, ' ').slice(0, max)
}

/** `security_audit_log` over the universal store's SqlExecutor: inserts only (the table refuses the rest). */
export function createSqlSecurityAuditStore(universal: SqlExecutor): SecurityAuditStore {
  const insert = INSERT.replace('__NOW__', universal.dialect.now)
  return {
    async record(e: SecurityEvent) {
      const params: Param[] = [
        e.at === undefined ? null : new Date(e.at),
        clip(e.eventType, 64),
        clip(e.outcome, 16),
        clip(e.actorType, 16),
        clip(e.actorKid, 32),
        clip(e.actorRole, 20),
        clip(e.sourceIp, 64),
        clip(e.transport, 16),
        clip(e.requestId, 64),
        clip(e.targetType, 32),
        clip(e.targetId, 255),
        clip(e.reasonCode, 64),
        e.details === null || e.details === undefined ? null : JSON.stringify(e.details),
      ]
      await universal.run(insert, params)
    },
  }
}
