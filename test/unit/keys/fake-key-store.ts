import { NotFoundError } from '../../../src/lib/errors/index.js'
import type { DeviceKeyRecord, DeviceKeyStore, NewDeviceKey } from '../../../src/lib/ports/device-key-store.js'
import type { NewRoleKey, RoleKeyRecord, RoleKeyStore } from '../../../src/lib/ports/role-key-store.js'
import type { SecurityAuditStore, SecurityEvent } from '../../../src/lib/ports/security-audit-store.js'

/** Call counters, a lookup outage and hanging touches: what the use-case and authenticator tests steer. */
class FakeStore {
  readonly calls: Record<string, number> = {}
  /** Makes every lookup fail (a database outage). */
  failLookups: Error | undefined
  /** Makes last-used writes hang (to show the request never waits for them). */
  hangTouches = false

  protected count(name: string): void {
    this.calls[name] = (this.calls[name] ?? 0) + 1
  }

  protected gate(name: string): Promise<void> {
    this.count(name)
    return this.failLookups ? Promise.reject(this.failLookups) : Promise.resolve()
  }

  protected touchGate(name: string): Promise<void> {
    this.count(name)
    return this.hangTouches ? new Promise(() => undefined) : Promise.resolve()
  }

  lookups(): number {
    return (this.calls['findByKid'] ?? 0) + (this.calls['findByHash'] ?? 0)
  }
}

/** The rows of one key table and what both key ports do to them the same way. */
class FakeKeyRows<R extends DeviceKeyRecord | RoleKeyRecord> extends FakeStore {
  readonly keys: R[] = []
  protected nextId = 1

  list(): Promise<Array<Omit<R, 'hash'>>> {
    return Promise.resolve(this.keys.map(({ hash: _h, ...r }) => r))
  }

  revoke(kid: string, now: number): Promise<boolean> {
    const r = this.keys.find((k) => k.kid === kid && k.revokedAt === null)
    if (!r) return Promise.resolve(false)
    r.revokedAt = now
    r.isActive = false
    return Promise.resolve(true)
  }

  setExpiry(kid: string, expiresAt: number | null): Promise<boolean> {
    const r = this.keys.find((k) => k.kid === kid)
    if (!r) return Promise.resolve(false)
    r.expiresAt = expiresAt
    return Promise.resolve(true)
  }

  async markUsed(ids: readonly number[], now: number): Promise<void> {
    await this.touchGate('markUsed')
    for (const r of this.keys) if (ids.includes(r.id)) r.lastUsedAt = now
  }
}

/** An in-memory DeviceKeyStore (with its devices), for unit tests of the use-cases and the authenticator. */
export class FakeDeviceKeyStore extends FakeKeyRows<DeviceKeyRecord> implements DeviceKeyStore {
  readonly devices = new Map<string, { id: number; deleted: boolean; lastConnection: number | null; status: string }>()

  addDevice(uuid: string, deleted = false): number {
    const id = this.nextId++
    this.devices.set(uuid, { id, deleted, lastConnection: null, status: 'draft' })
    return id
  }

  /** A legacy key row (no kid), as the backend provisions them. */
  addLegacyKey(deviceUuid: string, hash: string): DeviceKeyRecord {
    const d = this.devices.get(deviceUuid)
    if (!d) throw new Error('no device')
    const r: DeviceKeyRecord = { id: this.nextId++, kid: null, name: null, deviceId: d.id, deviceUuid, hash, isActive: true, deviceDeleted: d.deleted, createdAt: 0, expiresAt: null, revokedAt: null, lastUsedAt: null }
    this.keys.push(r)
    return r
  }

  private withDevice(r: DeviceKeyRecord | undefined): DeviceKeyRecord | null {
    return r ? { ...r, deviceDeleted: this.devices.get(r.deviceUuid)?.deleted ?? false } : null
  }

  create(k: NewDeviceKey): ReturnType<DeviceKeyStore['create']> {
    this.count('create')
    const d = this.devices.get(k.deviceUuid)
    if (!d || d.deleted) return Promise.reject(new NotFoundError(`device ${k.deviceUuid} not found`))
    const id = this.nextId++
    this.keys.push({ id, kid: k.kid, name: k.name, deviceId: d.id, deviceUuid: k.deviceUuid, hash: k.hash, isActive: true, deviceDeleted: false, createdAt: k.createdAt, expiresAt: k.expiresAt, revokedAt: null, lastUsedAt: null })
    return Promise.resolve({ id, kid: k.kid, deviceId: d.id })
  }

  async findByKid(kid: string): Promise<DeviceKeyRecord | null> {
    await this.gate('findByKid')
    return this.withDevice(this.keys.find((k) => k.kid === kid))
  }

  async findByHash(hash: string): Promise<DeviceKeyRecord | null> {
    await this.gate('findByHash')
    return this.withDevice(this.keys.find((k) => k.hash === hash))
  }

  async touchDevice(deviceId: number, now: number): Promise<void> {
    await this.touchGate('touchDevice')
    for (const d of this.devices.values()) if (d.id === deviceId) Object.assign(d, { lastConnection: now, status: 'online' })
  }
}

/** An in-memory RoleKeyStore, for unit tests of the use-cases and the authenticator. */
export class FakeRoleKeyStore extends FakeKeyRows<RoleKeyRecord> implements RoleKeyStore {
  create(k: NewRoleKey): ReturnType<RoleKeyStore['create']> {
    this.count('create')
    const id = this.nextId++
    this.keys.push({ id, kid: k.kid, hash: k.hash, prefix: k.prefix, name: k.name, role: k.role, allowedSourceId: k.allowedSourceId, allowedDomains: [...k.allowedDomains], isActive: true, createdBy: k.createdBy, createdAt: k.createdAt, expiresAt: k.expiresAt, revokedAt: null, lastUsedAt: null })
    return Promise.resolve({ id, kid: k.kid })
  }

  async findByKid(kid: string): Promise<RoleKeyRecord | null> {
    await this.gate('findByKid')
    const r = this.keys.find((k) => k.kid === kid)
    return r ? { ...r } : null
  }

  async findByHash(hash: string): Promise<RoleKeyRecord | null> {
    await this.gate('findByHash')
    const r = this.keys.find((k) => k.hash === hash)
    return r ? { ...r } : null
  }
}

/** An in-memory SecurityAuditStore: the events in order. */
export class FakeSecurityAudit implements SecurityAuditStore {
  readonly events: SecurityEvent[] = []

  record(e: SecurityEvent): Promise<void> {
    this.events.push(e)
    return Promise.resolve()
  }
}
