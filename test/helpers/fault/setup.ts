import { randomUUID } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'

import { json, runCli } from './package.js'

export interface FaultSensor {
  uuid: string
  id: number
}

export interface FaultDevice {
  uuid: string
  id: number
  key: string
  sensors: FaultSensor[]
}

export interface Fleet {
  devices: FaultDevice[]
  /** Every device key (for the log-pattern check: never in a log). */
  secrets: string[]
}

interface ApplyJson {
  devices: Array<{ uuid: string; id: number; sensors: Array<{ uuid: string; id: number }> }>
}

/**
 * Sets up the private database through the CLI as an operator would: `db migrate`, `apply` of a
 * generated file (`devices` devices with `sensorsPerDevice` humidity sensors each, no thresholds or
 * delta rules, so valid readings classify clean), and one `keys create --device --json` per device.
 */
export async function setupFleet(env: Record<string, string>, dir: string, options: { devices?: number; sensorsPerDevice?: number } = {}): Promise<Fleet> {
  const nDev = options.devices ?? 2
  const nSen = options.sensorsPerDevice ?? 2
  const migrate = await runCli(['db', 'migrate'], { env, cwd: dir })
  if (migrate.code !== 0) throw new Error(`db migrate failed (${migrate.code}): ${migrate.stderr}`)
  const lines = ['devices:']
  for (let d = 0; d < nDev; d++) {
    lines.push(`  - uuid: ${randomUUID()}`, `    name: fault-dev-${d}`, '    sensors:')
    for (let s = 0; s < nSen; s++) lines.push(`      - uuid: ${randomUUID()}`, '        type: humidity', `        name: rh-${d}-${s}`, '        unit: "%"')
  }
  const file = join(dir, 'fleet.yaml')
  writeFileSync(file, `${lines.join('\n')}\n`)
  const applied = await runCli(['apply', file, '--json'], { env, cwd: dir })
  if (applied.code !== 0) throw new Error(`apply failed (${applied.code}): ${applied.stderr}\n${applied.stdout}`)
  const result = json<ApplyJson>(applied)
  const devices: FaultDevice[] = []
  const secrets: string[] = []
  for (const d of result.devices) {
    const created = await runCli(['keys', 'create', '--device', d.uuid, '--json'], { env, cwd: dir })
    if (created.code !== 0) throw new Error(`keys create failed (${created.code}): ${created.stderr}`)
    const key = json<{ key: string }>(created).key
    devices.push({ uuid: d.uuid, id: d.id, key, sensors: d.sensors.map((s) => ({ uuid: s.uuid, id: s.id })) })
    // The whole key and its secret part (`ingd_<kid12>_<secret32><checksum6>`).
    secrets.push(key, key.slice(18))
  }
  return { devices, secrets }
}
