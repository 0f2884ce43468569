import { createHash } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { hostname, tmpdir } from 'node:os'
import { join } from 'node:path'

/** Who holds an import's lock. */
export interface CsvRunHolder {
  pid: number
  host: string
  startedAt: number
}

export type CsvRunLockResult = { ok: true; release: () => void } | { ok: false; holder: CsvRunHolder }

/** Whether a process of this host is alive (EPERM: alive, another user's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

function readHolder(path: string): CsvRunHolder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Partial<CsvRunHolder>
    return typeof h.pid === 'number' && typeof h.host === 'string' ? { pid: h.pid, host: h.host, startedAt: Number(h.startedAt) || 0 } : null
  } catch {
    return null
  }
}

/**
 * One run at a time per import job on this host: an exclusive lock file under the system temp folder,
 * named by the job and the database it writes to, holding the owner's pid. A lock whose process is
 * gone (a SIGKILLed run) is taken over; one held by a live process refuses. Released when the run ends
 * (and, as a last resort, when the process exits).
 */
export function acquireCsvRunLock(jobId: string, database: string, now: number): CsvRunLockResult {
  const dir = join(tmpdir(), 'ingest-csv-locks')
  mkdirSync(dir, { recursive: true })
  const name = createHash('sha256').update(`${database}\u0000${jobId}`).digest('hex').slice(0, 32)
  const path = join(dir, `${name}.lock`)
  const me: CsvRunHolder = { pid: process.pid, host: hostname(), startedAt: now }
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      writeFileSync(path, JSON.stringify(me), { flag: 'wx' })
      let released = false
      const release = (): void => {
        if (released) return
        released = true
        process.off('exit', release)
        // Only our own lock: never one a later run took over.
        if (readHolder(path)?.pid === process.pid) rmSync(path, { force: true })
      }
      process.on('exit', release)
      return { ok: true, release }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const holder = readHolder(path)
      if (holder && holder.host === me.host && holder.pid !== process.pid && alive(holder.pid)) return { ok: false, holder }
      // Empty and fresh: another run is between creating and writing it.
      if (!holder && Date.now() - (statSync(path, { throwIfNoEntry: false })?.mtimeMs ?? 0) < 10_000) return { ok: false, holder: { pid: 0, host: me.host, startedAt: now } }
      // Stale (its process is gone), unreadable for long (a writer died mid-write) or ours: take it over.
      rmSync(path, { force: true })
    }
  }
  const holder = readHolder(path)
  return holder ? { ok: false, holder } : { ok: false, holder: { pid: 0, host: me.host, startedAt: now } }
}
