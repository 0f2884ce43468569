import type { DeltaThresholdName, Severity } from './types.js'

/**
 * `x` with `digits` decimals the way Python's `f"{x:.Nf}"` writes it, which is what the legacy
 * dashboard's users have seen: the same as `toFixed` except on an exact tie, where Python rounds half
 * to even (`0.125` -> `0.12`) and `toFixed` rounds away from zero (`0.13`). Ties are common with
 * sensors that report binary fractions (a DS18B20 steps by 0.0625 °C).
 */
export function formatFixedLikePython(x: number, digits: number): string {
  // x lies exactly halfway between two N-decimal numbers iff x * 2^(N+1) is an odd integer (the 5^N of
  // 10^N cannot divide a power of two), and scaling by a power of two is exact.
  const twice = Math.abs(x) * 2 ** (digits + 1)
  if (!Number.isInteger(twice) || twice % 2 !== 1 || !Number.isSafeInteger(twice)) return x.toFixed(digits)
  const scaled = Math.abs(x) * 10 ** digits // n + 0.5, exact: it is representable and the product is correctly rounded
  const lower = Math.floor(scaled)
  const even = lower % 2 === 0 ? lower : lower + 1
  const text = (even / 10 ** digits).toFixed(digits)
  return x < 0 ? `-${text}` : text
}

/** The DELTA_SPIKE title: the legacy four-way rule (reference §6.8), which the dashboard's users know. */
export function deltaSpikeTitle(severity: Severity, triggered: readonly DeltaThresholdName[]): string {
  if (severity === 'critical') return 'Cambio crítico detectado'
  if (triggered.includes('abs_delta') || triggered.includes('rel_delta')) return 'Cambio significativo en valor'
  if (triggered.includes('abs_slope') || triggered.includes('rel_slope')) return 'Cambio rápido detectado'
  return 'Variación inusual detectada'
}

export interface DeltaSpikeText {
  value: number
  previous: number
  deltaAbs: number
  dtSeconds: number
  triggered: readonly DeltaThresholdName[]
}

/**
 * The DELTA_SPIKE message (reference §6.8): "El valor subió|cambió <Δabs> unidades desde <previous>",
 * then ". en <dt> segundos" when a slope fired over a positive dt, joined the legacy way. The legacy
 * wrote "subió" for every spike (it tested the absolute delta), so a drop read as a rise; here
 * "subió" means the value rose and "cambió" is used otherwise.
 */
export function deltaSpikeMessage(spike: DeltaSpikeText): string {
  const direction = spike.value > spike.previous ? 'subió' : 'cambió'
  let message = `El valor ${direction} ${formatFixedLikePython(spike.deltaAbs, 2)} unidades desde ${formatFixedLikePython(spike.previous, 2)}`
  const slopeFired = spike.triggered.includes('abs_slope') || spike.triggered.includes('rel_slope')
  if (slopeFired && spike.dtSeconds > 0) message += `. en ${formatFixedLikePython(spike.dtSeconds, 0)} segundos`
  return message
}
