import { pino, type Logger } from 'pino'

export type { Logger } from 'pino'

export interface LoggerOptions {
  level: string
  /** Secret values (keys, passwords): replaced by `[REDACTED]` wherever they would appear. */
  secrets?: readonly string[]
  /** Where lines go; default stderr, so stdout carries only results. */
  write?: (line: string) => void
  bindings?: Record<string, unknown>
}

function scrubber(secrets: readonly string[]): (line: string) => string {
  const unique = [...new Set(secrets.filter((s) => s.length >= 4))].sort((a, b) => b.length - a.length)
  if (unique.length === 0) return (line) => line
  return (line) => {
    let out = line
    for (const secret of unique) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]')
    return out
  }
}

/** The one pino logger: JSON lines on stderr, secrets redacted by path and by value. */
export function createLogger(options: LoggerOptions): Logger {
  const scrub = scrubber(options.secrets ?? [])
  const write = options.write ?? ((line: string) => process.stderr.write(line))
  return pino(
    {
      level: options.level,
      base: options.bindings ?? null,
      redact: {
        paths: ['*.password', '*.apiKey', '*.api_key', 'req.headers["x-api-key"]', 'req.headers["x-device-key"]', 'req.headers.authorization', 'headers["x-api-key"]', 'headers["x-device-key"]'],
        censor: '[REDACTED]',
      },
    },
    { write: (line: string) => write(scrub(line)) },
  )
}
