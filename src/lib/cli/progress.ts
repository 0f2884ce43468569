import { Listr } from 'listr2'

/**
 * Runs a job under one listr2 task showing `line(progress)`: the default renderer on a TTY, the simple
 * one (a line every few seconds) otherwise, nothing with --json.
 */
export async function withJobProgress<T, P>(title: string, options: { json: boolean; tty: boolean }, line: (p: P) => string, fn: (onProgress: (p: P) => void) => Promise<T>): Promise<T> {
  let result: T | undefined
  const minGapMs = options.tty ? 200 : 5000
  const tasks = new Listr(
    [
      {
        title,
        task: async (_ctx, task) => {
          let last = 0
          result = await fn((p) => {
            const now = Date.now()
            if (now - last < minGapMs) return
            last = now
            task.output = line(p)
          })
          task.title = `${title}: done`
        },
        rendererOptions: { outputBar: 1, persistentOutput: false },
      },
    ],
    { renderer: options.json ? 'silent' : options.tty ? 'default' : 'simple', exitOnError: true, rendererOptions: {} },
  )
  await tasks.run()
  return result as T
}
