import type { KeyKind } from '../../../src/lib/domain/keys.js'
import { NotFoundError } from '../../../src/lib/errors/index.js'
import type { DeviceKeyRecord, KeyStore, KeySummary, RoleKeyRecord, SecurityEvent } from '../../../src/lib/ports/key-store.js'

/** An in-memory KeyStore with call counters, for unit tests of the use-cases and the authenticator. */
export class FakeKeyStore implements KeyStore {
  readonly devices = new Map<string, { id: number; deleted: boolean; lastConnection: number | null; status: string }>()
  readonly deviceKeys: DeviceKeyRecord[] = []
  readonly roleKeys: RoleKeyRecord[] = []
  readonly events: SecurityEvent[] = []
  readonly calls: Record<string, number> = {}
  /** Makes every lookup fail (a database outage). */
  failLookups: Error | undefined
  /** Makes touch writes hang (to show the request never waits for them). */
  hangTouches = false
  private nextId = 1

  private count(name: string): void {
    this.calls[name] = (this.calls[name] ?? 0) + 1
  }

  lookups(): number {
    return (this.calls['findDeviceKeyByKid'] ?? 0) + (this.calls['findDeviceKeyByHash'] ?? 0) + (this.calls['findRoleKeyByKid'] ?? 0) + (this.calls['findRoleKeyByHash'] ?? 0)
  }

  addDevice(uuid: string, deleted = false): number {
    const id = this.nextId++
    this.devices.set(uuid, { id, deleted, lastConnection: null, status: 'draft' })
    return id
  }

  /** A legacy key row (no kid), as the backend provisions them. */
  addLegacyDeviceKey(deviceUuid: string, hash: string): DeviceKeyRecord {
    const d = this.devices.get(deviceUuid)
    if (!d) throw new Error('no device')
    const r: DeviceKeyRecord = { id: this.nextId++, kid: null, name: null, deviceId: d.id, deviceUuid, hash, isActive: true, deviceDeleted: d.deleted, createdAt: 0, expiresAt: null, revokedAt: null, lastUsedAt: null }
    this.deviceKeys.push(r)
    return r
  }

  private async gate(name: string): Promise<void> {
    this.count(name)
    if (this.failLookups) throw this.failLookups
  }

  async createDeviceKey(k: Parameters<KeyStore['createDeviceKey']>[0]) {
    this.count('createDeviceKey')
    const d = this.devices.get(k.deviceUuid)
    if (!d || d.deleted) throw new NotFoundError(`device ${k.deviceUuid} not found`)
    const id = this.nextId++
    this.deviceKeys.push({ id, kid: k.kid, name: k.name, deviceId: d.id, deviceUuid: k.deviceUuid, hash: k.hash, isActive: true, deviceDeleted: false, createdAt: k.createdAt, expiresAt: k.expiresAt, revokedAt: null, lastUsedAt: null })
    return { id, kid: k.kid, deviceId: d.id }
  }

  async findDeviceKeyByKid(kid: string) {
    await this.gate('findDeviceKeyByKid')
    const r = this.deviceKeys.find((k) => k.kid === kid)
    return r ? { ...r, deviceDeleted: this.devices.get(r.deviceUuid)?.deleted ?? false } : null
  }

  async findDeviceKeyByHash(hash: string) {
    await this.gate('findDeviceKeyByHash')
    const r = this.deviceKeys.find((k) => k.hash === hash)
    return r ? { ...r, deviceDeleted: this.devices.get(r.deviceUuid)?.deleted ?? false } : null
  }

  async createRoleKey(k: Parameters<KeyStore['createRoleKey']>[0]) {
    this.count('createRoleKey')
    const id = this.nextId++
    this.roleKeys.push({ id, kid: k.kid, hash: k.hash, prefix: k.prefix, name: k.name, role: k.role, allowedSourceId: k.allowedSourceId, allowedDomains: [...k.allowedDomains], isActive: true, createdBy: k.createdBy, createdAt: k.createdAt, expiresAt: k.expiresAt, revokedAt: null, lastUsedAt: null })
    return { id, kid: k.kid }
  }

  async findRoleKeyByKid(kid: string) {
    await this.gate('findRoleKeyByKid')
    const r = this.roleKeys.find((k) => k.kid === kid)
    return r ? { ...r } : null
  }

  async findRoleKeyByHash(hash: string) {
    await this.gate('findRoleKeyByHash')
    const r = this.roleKeys.find((k) => k.hash === hash)
    return r ? { ...r } : null
  }

  async listKeys(kind: KeyKind): Promise<KeySummary[]> {
    if (kind === 'device') return this.deviceKeys.map(({ hash: _h, ...r }) => ({ kind, ...r }))
    return this.roleKeys.map(({ hash: _h, ...r }) => ({ kind, ...r }))
  }

  private rows(kind: KeyKind): Array<DeviceKeyRecord | RoleKeyRecord> {
    return kind === 'device' ? this.deviceKeys : this.roleKeys
  }

  async revokeKey(kind: KeyKind, kid: string, now: number) {
    const r = this.rows(kind).find((k) => k.kid === kid && k.revokedAt === null)
    if (!r) return false
    r.revokedAt = now
    r.isActive = false
    return true
  }

  async setExpiry(kind: KeyKind, kid: string, expiresAt: number | null) {
    const r = this.rows(kind).find((k) => k.kid === kid)
    if (!r) return false
    r.expiresAt = expiresAt
    return true
  }

  async touchKeys(kind: KeyKind, ids: readonly number[], now: number) {
    this.count(`touchKeys:${kind}`)
    if (this.hangTouches) await new Promise(() => undefined)
    for (const r of this.rows(kind)) if (ids.includes(r.id)) r.lastUsedAt = now
  }

  async touchDevice(deviceId: number, now: number) {
    this.count('touchDevice')
    if (this.hangTouches) await new Promise(() => undefined)
    for (const d of this.devices.values()) if (d.id === deviceId) Object.assign(d, { lastConnection: now, status: 'online' })
  }

  async recordSecurityEvent(e: SecurityEvent) {
    this.count('recordSecurityEvent')
    this.events.push(e)
  }
}
