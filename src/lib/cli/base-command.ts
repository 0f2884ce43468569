import { Command, Flags, type Interfaces } from '@oclif/core'

import { type AppContext, createContext } from '../app/context.js'
import { type Config, loadConfigFromProcess, type VarName } from '../config/index.js'
import { AppError, coerceError } from '../errors/index.js'
import { createLogger, type Logger } from '../log/index.js'

export type CommandFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>
export type CommandArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>

type Releaser = () => Promise<void> | void

/**
 * Every command's base: `--json`, configuration (flags > env > .env > defaults), the app context,
 * error -> exit code (2 usage/config, 1 failure) and releasers run LIFO even on failure.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true
  static override baseFlags = {
    'log-level': Flags.string({ description: 'log level (logs go to stderr)', options: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], helpGroup: 'GLOBAL' }),
  }

  protected flags!: CommandFlags<T>
  protected args!: CommandArgs<T>
  private readonly releasers: Releaser[] = []
  /** The most one releaser may take (a stuck pool must not hold the process after a failed drain). */
  protected releaseTimeoutMs = 10_000
  private cachedConfig: Config | undefined
  private cachedLogger: Logger | undefined

  public override async init(): Promise<void> {
    await super.init()
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (super.ctor as typeof BaseCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    })
    this.flags = flags as CommandFlags<T>
    this.args = args as CommandArgs<T>
  }

  /** Flag values that override environment variables, by variable name. */
  protected configOverrides(): Partial<Record<VarName, string | number | boolean | undefined>> {
    return {}
  }

  protected config_(): Config {
    if (!this.cachedConfig) {
      const overrides = { ...this.configOverrides(), ...(this.flags['log-level'] ? { LOG_LEVEL: this.flags['log-level'] } : {}) }
      const { config, warnings } = loadConfigFromProcess(overrides)
      this.cachedConfig = config
      for (const w of warnings) this.logger().warn(w)
    }
    return this.cachedConfig
  }

  protected logger(): Logger {
    if (!this.cachedLogger) {
      const config = this.cachedConfig
      this.cachedLogger = createLogger({ level: config?.logLevel ?? 'info', secrets: config?.secrets ?? [], bindings: { cmd: this.id } })
    }
    return this.cachedLogger
  }

  /** Opens the app context once; its databases are closed when the command ends. */
  protected async context(options: { createEmbedded?: boolean; requireMigrated?: boolean } = {}): Promise<AppContext> {
    const config = this.config_()
    this.cachedLogger = undefined
    const ctx = await createContext(config, this.logger(), { createEmbedded: options.createEmbedded ?? false, requireMigrated: options.requireMigrated ?? true })
    this.release(() => ctx.close())
    return ctx
  }

  protected release(fn: Releaser): void {
    this.releasers.push(fn)
  }

  /** Human output (stdout) when not --json; the typed result is what --json prints. */
  protected print(lines: readonly string[]): void {
    if (!this.jsonEnabled()) for (const line of lines) this.log(line)
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    // oclif's own parse errors (unknown flag, missing arg) and exits keep their handling (exit 2).
    if (!(err instanceof AppError) && (err.oclif !== undefined || err.constructor.name.endsWith('ExitError'))) return super.catch(err)
    const appError = coerceError(err)
    const lines = appError.problems.length > 0 ? appError.problems : [appError.message]
    if (this.jsonEnabled()) {
      this.logJson({ error: { code: appError.code, message: appError.message, problems: appError.problems, suggestions: appError.suggestions } })
    } else {
      for (const line of lines) process.stderr.write(`Error: ${line}\n`)
      for (const s of appError.suggestions) process.stderr.write(`  try: ${s}\n`)
    }
    if (appError.code === 'BUG') this.logger().error({ err }, 'unexpected error')
    this.exit(appError.exitCode)
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    while (this.releasers.length > 0) {
      const fn = this.releasers.pop()
      try {
        let timer: NodeJS.Timeout | undefined
        await Promise.race([
          Promise.resolve(fn?.()),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, this.releaseTimeoutMs)
            timer.unref()
          }),
        ])
        clearTimeout(timer)
      } catch (releaseErr) {
        this.logger().warn({ err: releaseErr }, 'releasing a resource failed')
      }
    }
    return super.finally(err)
  }
}
