/** One `security_audit_log` row. Never a secret: kids and hash prefixes only. */
export interface SecurityEvent {
  /** `auth.failure`, `key.create`, `key.revoke`, `key.rotate`, `audit.suppressed`, ... */
  eventType: string
  outcome: 'success' | 'failure' | 'denied'
  actorType: 'api_key' | 'device' | 'cli' | 'system' | 'anonymous'
  actorKid?: string | null | undefined
  actorRole?: string | null | undefined
  sourceIp?: string | null | undefined
  transport?: string | null | undefined
  requestId?: string | null | undefined
  targetType?: string | null | undefined
  targetId?: string | null | undefined
  reasonCode?: string | null | undefined
  /** Allow-listed, non-secret fields only. */
  details?: Record<string, unknown> | null | undefined
  /** When it happened (epoch ms); the database's clock when absent. */
  at?: number | undefined
}

/**
 * The security audit log (`security_audit_log`), an operations table: callers use the universal
 * Database's `securityAudit`. Append-only: there is no way to change or remove a row through this
 * port, and the database refuses UPDATE and DELETE on the table.
 */
export interface SecurityAuditStore {
  /** Appends one event; overlong fields are clipped and control characters removed (no log injection). */
  record(event: SecurityEvent): Promise<void>
}
