export interface ClientIpInput {
  /** The TCP peer address (e.g. `request.socket.remoteAddress`). */
  socketAddress: string | undefined
  /** Request headers with lower-case names (Node's `IncomingHttpHeaders` fits). */
  headers: Readonly<Record<string, string | readonly string[] | undefined>>
  /** `TRUST_PROXY`: only then are `X-Forwarded-For` / `X-Real-IP` believed (clients can forge them). */
  trustProxy: boolean
}

// A key is built from this value; a forged header must not be able to grow memory without bound.
const MAX_ADDRESS_LENGTH = 100

function firstHeader(value: string | readonly string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : value?.[0]
}

function clean(value: string | undefined): string | undefined {
  const trimmed = value?.trim()
  if (!trimmed) return undefined
  // Node reports IPv4 peers of a dual-stack socket as ::ffff:a.b.c.d; one client, one key.
  const unmapped = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(trimmed)?.[1] ?? trimmed
  return unmapped.slice(0, MAX_ADDRESS_LENGTH)
}

/**
 * The client address used for the per-IP limit and the audit log (reference §3): with `trustProxy`,
 * the first entry of `X-Forwarded-For`, else `X-Real-IP`; otherwise (or when those are empty) the
 * socket peer; else `"unknown"`.
 */
export function clientIp(input: ClientIpInput): string {
  if (input.trustProxy) {
    const forwarded = clean(firstHeader(input.headers['x-forwarded-for'])?.split(',')[0])
    if (forwarded) return forwarded
    const real = clean(firstHeader(input.headers['x-real-ip']))
    if (real) return real
  }
  return clean(input.socketAddress) ?? 'unknown'
}
