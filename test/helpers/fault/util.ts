import { readdirSync, readFileSync } from 'node:fs'
import { createServer } from 'node:net'

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A free TCP port on 127.0.0.1 (bind to 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address()
      const port = typeof addr === 'object' && addr ? addr.port : 0
      srv.close(() => resolve(port))
    })
  })
}

/** Polls `fn` every `everyMs` until it returns a truthy value or `timeoutMs` passes (then throws `what`). */
export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, options: { timeoutMs: number; everyMs?: number }): Promise<T> {
  const deadline = Date.now() + options.timeoutMs
  let lastErr: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      lastErr = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`)
    await sleep(options.everyMs ?? 200)
  }
}

/** Seconds with 1 decimal, for logs. */
export const secs = (ms: number): string => (ms / 1000).toFixed(1)

/** Prints a line to the test output (vitest shows stdout of the worker). */
export function note(...parts: unknown[]): void {
  console.log('[fault]', ...parts.map((p) => (typeof p === 'string' ? p : JSON.stringify(p))))
}

/** Process ids of `pid`'s descendants (children first-level, then theirs), via /proc. */
export function descendants(pid: number): number[] {
  const out: number[] = []
  const stack = [pid]
  while (stack.length > 0) {
    const p = stack.pop() as number
    let children: number[] = []
    try {
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const text = readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim()
        if (text) children = children.concat(text.split(/\s+/).map(Number))
      }
    } catch {
      // gone
    }
    for (const c of children) {
      out.push(c)
      stack.push(c)
    }
  }
  return out
}
