import { describe, expect, it } from 'vitest'

import { clientIp } from '../../../src/lib/app/rate-limit/client-ip.js'

describe('clientIp', () => {
  const headers = { 'x-forwarded-for': ' 203.0.113.7 , 10.0.0.1', 'x-real-ip': '198.51.100.2' }

  it('takes the first X-Forwarded-For entry, trimmed, behind a trusted proxy', () => {
    expect(clientIp({ socketAddress: '10.0.0.9', headers, trustProxy: true })).toBe('203.0.113.7')
  })

  it('falls back to X-Real-IP, then to the socket address', () => {
    expect(clientIp({ socketAddress: '10.0.0.9', headers: { 'x-real-ip': ' 198.51.100.2 ' }, trustProxy: true })).toBe('198.51.100.2')
    expect(clientIp({ socketAddress: '10.0.0.9', headers: { 'x-forwarded-for': ' , ' }, trustProxy: true })).toBe('10.0.0.9')
    expect(clientIp({ socketAddress: '10.0.0.9', headers: { 'x-forwarded-for': ['192.0.2.1, 10.0.0.1', '192.0.2.2'] }, trustProxy: true })).toBe('192.0.2.1')
  })

  it('ignores the forgeable headers unless the proxy is trusted', () => {
    expect(clientIp({ socketAddress: '10.0.0.9', headers, trustProxy: false })).toBe('10.0.0.9')
  })

  it('answers "unknown" without any address', () => {
    expect(clientIp({ socketAddress: undefined, headers, trustProxy: false })).toBe('unknown')
    expect(clientIp({ socketAddress: '', headers: {}, trustProxy: true })).toBe('unknown')
  })

  it('gives an IPv4 peer of a dual-stack socket its plain form, and bounds the length', () => {
    expect(clientIp({ socketAddress: '::ffff:127.0.0.1', headers: {}, trustProxy: false })).toBe('127.0.0.1')
    expect(clientIp({ socketAddress: '::1', headers: {}, trustProxy: false })).toBe('::1')
    expect(clientIp({ socketAddress: '10.0.0.9', headers: { 'x-forwarded-for': 'x'.repeat(10_000) }, trustProxy: true })).toHaveLength(100)
  })
})
