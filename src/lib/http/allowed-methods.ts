import type { FastifyInstance } from 'fastify'

interface RoutePattern {
  match: RegExp
  methods: string[]
}

const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** `/sensors/:sensor_id/status` as a regular expression over request paths. */
function patternOf(url: string): RegExp {
  const body = url
    .split('/')
    .map((seg) => (seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : escapeRe(seg)))
    .join('/')
  return new RegExp(`^${body}$`)
}

/**
 * The methods each registered path answers, for the legacy 405 (Starlette answers a known path with a
 * wrong method `405 {"detail": "Method Not Allowed"}` and `Allow`; fastify has no 405 of its own).
 * Call before the routes are registered: it listens to `onRoute`.
 */
export function trackAllowedMethods(app: FastifyInstance): (url: string) => string[] {
  const routes = new Map<string, RoutePattern>()
  app.addHook('onRoute', (route) => {
    let entry = routes.get(route.url)
    if (!entry) {
      entry = { match: patternOf(route.url), methods: [] }
      routes.set(route.url, entry)
    }
    for (const m of Array.isArray(route.method) ? route.method : [route.method]) if (!entry.methods.includes(m)) entry.methods.push(m)
  })
  return (url) => {
    const q = url.indexOf('?')
    const path = q === -1 ? url : url.slice(0, q)
    const allowed: string[] = []
    for (const r of routes.values()) if (r.match.test(path)) for (const m of r.methods) if (!allowed.includes(m)) allowed.push(m)
    return allowed
  }
}
