/** Resolves on the first SIGINT or SIGTERM (long-running commands end their run() only then). */
export function untilSignal(signals: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM']): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const handler = (signal: NodeJS.Signals) => {
      for (const s of signals) process.off(s, handler)
      resolve(signal)
    }
    for (const s of signals) process.on(s, handler)
  })
}
