/*
 * Times inside the product are epoch milliseconds as numbers, carrying microseconds in their fraction
 * (the legacy service kept device times to the microsecond). These helpers round and format them
 * without going through `Date`, which truncates to the millisecond. A double holds epoch ms to under
 * half a microsecond between about 1900 and 2040 (so every live reading round-trips exactly); further
 * away the nearest microsecond may be one off.
 */

/** Epoch ms rounded to the nearest microsecond (1796386296.7999997 s -> ...296800 ms, not .799). */
export function roundToMicros(ms: number): number {
  const r = Math.round(ms * 1000) / 1000
  return r === 0 ? 0 : r // never -0
}

/** Epoch seconds (a device's float `sensor_ts`) as epoch ms rounded to the nearest microsecond. */
export function secondsToMs(seconds: number): number {
  return Math.round(seconds * 1e6) / 1000
}

/** Whole microseconds since the epoch (exact for every time this product stores). */
export function epochMicros(ms: number): number {
  return Math.round(ms * 1000)
}

/** The whole-millisecond part and the microseconds below it (0..999) of a time. */
export function splitMicros(ms: number): { wholeMs: number; micros: number } {
  const us = epochMicros(ms)
  const wholeMs = Math.floor(us / 1000)
  return { wholeMs, micros: us - wholeMs * 1000 }
}

/** ISO-8601 UTC with six fraction digits (`2026-12-04T12:00:00.123456Z`): the stored text form. */
export function isoMicros(ms: number): string {
  const { wholeMs, micros } = splitMicros(ms)
  const iso = new Date(wholeMs).toISOString()
  return `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`
}

/** ISO-8601 UTC for answers: milliseconds as before, six digits only when the time has microseconds. */
export function isoForWire(ms: number): string {
  const { wholeMs, micros } = splitMicros(ms)
  const iso = new Date(wholeMs).toISOString()
  return micros === 0 ? iso : `${iso.slice(0, -1)}${String(micros).padStart(3, '0')}Z`
}

const ISO = /^(\d{4,}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d+))?\s*(Z|[+-]\d{2}(?::?\d{2})?)?$/i

/**
 * Epoch ms (microseconds kept) of an ISO-8601 or SQL timestamp text, with or without zone (none =
 * UTC), any number of fraction digits (beyond six rounded); NaN when it is not one.
 */
export function parseIsoMicros(text: string): number {
  const m = ISO.exec(text.trim())
  if (!m) return Number.NaN
  const [, date, time, frac, zone] = m
  let offset = zone === undefined || zone.toUpperCase() === 'Z' ? 'Z' : zone
  if (/^[+-]\d{2}$/.test(offset)) offset += ':00'
  else if (/^[+-]\d{4}$/.test(offset)) offset = `${offset.slice(0, 3)}:${offset.slice(3)}`
  const base = Date.parse(`${date}T${time}${offset}`)
  if (Number.isNaN(base) || frac === undefined) return base
  // Whole microseconds first (integers are exact), one division last.
  const micros = Math.round(Number(`${frac.slice(0, 6).padEnd(6, '0')}.${frac.slice(6) || '0'}`))
  return (base * 1000 + micros) / 1000
}
