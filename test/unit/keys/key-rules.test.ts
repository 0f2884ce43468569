import { describe, expect, it } from 'vitest'

import { type RoleScope, roleMayRead, roleMayWriteGlobal, validateKeyRequest, verifySourceAccess } from '../../../src/lib/domain/keys.js'

const admin: RoleScope = { role: 'admin', allowedSourceId: null, allowedDomains: [] }
const writer: RoleScope = { role: 'source_writer', allowedSourceId: 'ward-3', allowedDomains: ['health', 'finance'] }
const writerNoDomains: RoleScope = { role: 'source_writer', allowedSourceId: 'ward-3', allowedDomains: [] }
const reader: RoleScope = { role: 'read_only', allowedSourceId: null, allowedDomains: [] }

describe('verify_source_access (reference §2.3)', () => {
  it.each([
    ['admin, any source and domain', admin, 'anything', 'health', { allowed: true }],
    ['source_writer, its source and a listed domain', writer, 'ward-3', 'finance', { allowed: true }],
    ['source_writer, another source', writer, 'ward-4', 'health', { allowed: false, code: 'SOURCE_NOT_ALLOWED', detail: "Not authorized to write to source_id 'ward-4'" }],
    ['source_writer, source is case-sensitive', writer, 'WARD-3', 'health', { allowed: false, code: 'SOURCE_NOT_ALLOWED', detail: "Not authorized to write to source_id 'WARD-3'" }],
    ['source_writer, unlisted domain', writer, 'ward-3', 'infrastructure', { allowed: false, code: 'DOMAIN_NOT_ALLOWED', detail: "Not authorized to write to domain 'infrastructure'" }],
    ['source_writer, empty domain list allows none', writerNoDomains, 'ward-3', 'health', { allowed: false, code: 'DOMAIN_NOT_ALLOWED', detail: "Not authorized to write to domain 'health'" }],
    ['source_writer, wrong source is reported before the domain', writer, 'x', 'nope', { allowed: false, code: 'SOURCE_NOT_ALLOWED', detail: "Not authorized to write to source_id 'x'" }],
    ['read_only, denied', reader, 'ward-3', 'health', { allowed: false, code: 'SOURCE_NOT_ALLOWED', detail: "Not authorized to write to source_id 'ward-3'" }],
  ])('%s', (_name, scope, source, domain, expected) => {
    expect(verifySourceAccess(scope, source, domain)).toEqual(expected)
  })

  it('global write routes take admin only; reads take any role', () => {
    expect([roleMayWriteGlobal('admin'), roleMayWriteGlobal('source_writer'), roleMayWriteGlobal('read_only')]).toEqual([true, false, false])
    expect([roleMayRead('admin'), roleMayRead('source_writer'), roleMayRead('read_only')]).toEqual([true, true, true])
  })
})

describe('validateKeyRequest', () => {
  const uuid = '3f0e8d5c-2b1a-4c1e-9a57-1d2f3e4a5b6c'
  it('a device key: the uuid is normalised', () => {
    expect(validateKeyRequest({ device: uuid.toUpperCase(), name: ' boiler ', expiresIn: 60 })).toEqual({ ok: true, spec: { kind: 'device', deviceUuid: uuid, name: 'boiler', expiresIn: 60 } })
  })
  it('role keys', () => {
    expect(validateKeyRequest({ role: 'admin' })).toEqual({ ok: true, spec: { kind: 'role', role: 'admin', allowedSourceId: null, allowedDomains: [], name: null, expiresIn: null } })
    expect(validateKeyRequest({ role: 'source_writer', sourceId: 'ward-3', domains: ['health', 'health'] })).toMatchObject({ ok: true, spec: { allowedSourceId: 'ward-3', allowedDomains: ['health'] } })
  })
  it.each([
    ['neither', {}, /exactly one of --device/],
    ['both', { device: uuid, role: 'admin' }, /exactly one of --device/],
    ['bad uuid', { device: 'nope' }, /--device must be a UUID/],
    ['bad role', { role: 'root' }, /--role must be one of/],
    ['source_writer without source', { role: 'source_writer', domains: ['health'] }, /needs --source-id/],
    ['source_writer without domains', { role: 'source_writer', sourceId: 's' }, /at least one --domain/],
    ['admin with a scope', { role: 'admin', sourceId: 's' }, /source_writer keys only/],
    ['device with a scope', { device: uuid, domains: ['health'] }, /role keys only/],
    ['bad domain', { role: 'source_writer', sourceId: 's', domains: ['Bad Domain'] }, /not a domain name/],
    ['zero lifetime', { role: 'admin', expiresIn: 0 }, /--expires-in/],
    ['NaN lifetime', { role: 'admin', expiresIn: Number.NaN }, /--expires-in/],
    ['empty name', { role: 'admin', name: '  ' }, /--name/],
    ['control characters in the name', { role: 'admin', name: 'a\nb' }, /--name/],
  ])('refuses %s', (_name, req, message) => {
    const r = validateKeyRequest(req)
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.problems.join('\n')).toMatch(message)
  })
})
