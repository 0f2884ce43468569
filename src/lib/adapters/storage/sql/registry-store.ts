import type { ApplyStatus, DeltaSpec, DeviceResult, DeviceSpec, SensorResult, SensorSpec, StreamResult, StreamSpec, ThresholdResult, ThresholdSpec } from '../../../domain/registry.js'
import type { ApplyOptions, RegistryStore } from '../../../ports/registry-store.js'
import type { Param, Row, SqlExecutor } from './executor.js'
import { toBool, toJson, toNumber, toNumberOrNull, toStringOrNull } from './row.js'

type ColType = 'text' | 'int' | 'real' | 'bool' | 'json'
type Desired = Record<string, { type: ColType; value: unknown }>

/** Rolls back a dry run after computing what would change. */
class DryRun extends Error {
  constructor(readonly result: unknown) {
    super('dry run')
  }
}

function canonical(v: unknown): string {
  if (v === null || v === undefined) return 'null'
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`
  if (typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}

function decode(type: ColType, v: unknown): unknown {
  switch (type) {
    case 'text':
      return toStringOrNull(v)
    case 'int':
    case 'real':
      return toNumberOrNull(v)
    case 'bool':
      return v === null || v === undefined ? null : toBool(v)
    case 'json':
      return toJson(v)
  }
}

function encode(type: ColType, v: unknown): Param {
  if (v === null || v === undefined) return null
  if (type === 'json') return JSON.stringify(v)
  return v as Param
}

function changedColumns(existing: Row, desired: Desired): string[] {
  return Object.entries(desired)
    .filter(([col, d]) => canonical(decode(d.type, existing[col])) !== canonical(d.value))
    .map(([col]) => col)
}

/**
 * Inserts or updates one row found by `key`; only changed columns (and updated_at) are written, so
 * a second apply of the same file changes no row and no updated_at.
 */
async function upsert(tx: SqlExecutor, table: string, key: Record<string, Param>, desired: Desired, now: Date, extraOrder = ''): Promise<{ id: number; status: ApplyStatus }> {
  const where = Object.keys(key).map((k) => `"${k}" = ?`).join(' AND ')
  const rows = await tx.all(`SELECT * FROM "${table}" WHERE ${where} ORDER BY "id"${extraOrder}`, Object.values(key))
  const existing = rows[0]
  if (!existing) {
    const values: Record<string, Param> = { ...key }
    for (const [col, d] of Object.entries(desired)) values[col] = encode(d.type, d.value)
    // Explicit and UTC: the legacy SQL Server columns have no default (and GETDATE() would be local time).
    values['created_at'] = now
    return { id: await tx.insert(table, values), status: 'created' }
  }
  const id = toNumber(existing['id'])
  const changed = changedColumns(existing, desired)
  if (changed.length === 0) return { id, status: 'unchanged' }
  const sets = [...changed.map((c) => `"${c}" = ?`), '"updated_at" = ?']
  const params = [...changed.map((c) => encode(desired[c]?.type ?? 'text', desired[c]?.value)), now, id]
  await tx.run(`UPDATE "${table}" SET ${sets.join(', ')} WHERE "id" = ?`, params)
  return { id, status: 'updated' }
}

function defined(entries: Array<[string, ColType, unknown]>): Desired {
  const out: Desired = {}
  for (const [col, type, value] of entries) if (value !== undefined) out[col] = { type, value }
  return out
}

function thresholdColumns(t: ThresholdSpec): Desired {
  return defined([
    ['condition_type', 'text', t.condition],
    ['threshold_value_min', 'real', t.min ?? null],
    ['threshold_value_max', 'real', t.max ?? null],
    ['severity', 'text', t.severity],
    ['consecutive_readings', 'int', t.consecutive_readings],
    ['is_active', 'bool', t.is_active],
  ])
}

function deltaColumns(d: DeltaSpec): Desired {
  return defined([
    ['abs_delta', 'real', d.abs_delta ?? null],
    ['rel_delta', 'real', d.rel_delta ?? null],
    ['abs_slope', 'real', d.abs_slope ?? null],
    ['rel_slope', 'real', d.rel_slope ?? null],
    ['severity', 'text', d.severity],
    ['cooldown_sec', 'int', d.cooldown_sec],
    ['min_delta_abs', 'real', d.min_delta_abs ?? null],
    ['min_readings', 'int', d.min_readings],
    ['max_gap_sec', 'int', d.max_gap_sec],
    ['is_active', 'bool', d.is_active],
  ])
}

function sensorColumns(s: SensorSpec): Desired {
  return defined([
    ['sensor_type', 'text', s.type],
    ['name', 'text', s.name],
    ['unit', 'text', s.unit],
    ['status', 'text', s.status],
    ['is_active', 'bool', s.is_active],
    ['min_readings_for_normal', 'int', s.min_readings_for_normal],
    ['resolve_after_readings', 'int', s.resolve_after_readings],
    ['require_qr_confirmation', 'bool', s.require_qr_confirmation],
    ['is_deleted', 'bool', s.is_deleted],
  ])
}

async function applySensor(tx: SqlExecutor, deviceId: number, s: SensorSpec, options: ApplyOptions, now: Date): Promise<SensorResult> {
  const sensor = await upsert(tx, 'sensors', { device_id: deviceId, sensor_uuid: s.uuid }, sensorColumns(s), now)
  const thresholds: ThresholdResult[] = []
  for (const t of s.thresholds) {
    const r = await upsert(tx, 'alert_thresholds', { sensor_id: sensor.id, name: t.name }, thresholdColumns(t), now)
    thresholds.push({ name: t.name, ...r })
  }
  if (options.prune) {
    const keep = new Set(s.thresholds.map((t) => t.name))
    const rows = await tx.all('SELECT "id", "name" FROM "alert_thresholds" WHERE "sensor_id" = ? ORDER BY "id"', [sensor.id])
    for (const row of rows) {
      const name = toStringOrNull(row['name'])
      if (name !== null && keep.has(name)) continue
      await tx.run('DELETE FROM "alert_thresholds" WHERE "id" = ?', [toNumber(row['id'])])
      thresholds.push({ name: name ?? '', id: toNumber(row['id']), status: 'deleted' })
    }
  }
  let delta: SensorResult['delta'] = null
  if (s.delta) {
    delta = await upsert(tx, 'delta_thresholds', { sensor_id: sensor.id }, deltaColumns(s.delta), now)
  } else if (options.prune && s.delta === null) {
    const rows = await tx.all('SELECT "id" FROM "delta_thresholds" WHERE "sensor_id" = ?', [sensor.id])
    for (const row of rows) {
      await tx.run('DELETE FROM "delta_thresholds" WHERE "id" = ?', [toNumber(row['id'])])
      delta = { id: toNumber(row['id']), status: 'deleted' }
    }
  }
  return { uuid: s.uuid, ...sensor, thresholds, delta }
}

/** The registry over any engine's SqlExecutor (low-volume, so one shared implementation). */
export function createSqlRegistryStore(exec: SqlExecutor, clock: () => number = Date.now): RegistryStore {
  async function run<T>(dryRun: boolean, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    try {
      return await exec.transaction(async (tx) => {
        const out = await fn(tx)
        if (dryRun) throw new DryRun(out)
        return out
      })
    } catch (err) {
      if (err instanceof DryRun) return err.result as T
      throw err
    }
  }

  return {
    applyDevices(devices: readonly DeviceSpec[], options: ApplyOptions): Promise<DeviceResult[]> {
      const now = new Date(clock())
      return run(options.dryRun, async (tx) => {
        const out: DeviceResult[] = []
        for (const d of devices) {
          const device = await upsert(
            tx,
            'devices',
            { device_uuid: d.uuid },
            defined([
              ['name', 'text', d.name],
              ['device_type', 'text', d.device_type],
              ['status', 'text', d.status],
              ['metadata', 'json', d.metadata],
            ]),
            now,
          )
          const sensors: SensorResult[] = []
          for (const s of d.sensors) sensors.push(await applySensor(tx, device.id, s, options, now))
          out.push({ uuid: d.uuid, ...device, sensors })
        }
        return out
      })
    },

    applyStreams(streams: readonly StreamSpec[], options: ApplyOptions): Promise<StreamResult[]> {
      const now = new Date(clock())
      return run(options.dryRun, async (tx) => {
        const out: StreamResult[] = []
        for (const s of streams) {
          const cfg = await upsert(
            tx,
            'stream_configs',
            { domain: s.domain, source_id: s.source_id, stream_id: s.stream_id },
            defined([
              ['display_name', 'text', s.display_name],
              ['unit', 'text', s.unit],
              ['enable_ml_prediction', 'bool', s.enable_ml_prediction],
              ['enable_alerting', 'bool', s.enable_alerting],
              ['domain_metadata', 'json', s.domain_metadata],
            ]),
            now,
          )
          let status = cfg.status
          if (s.constraints) {
            const c = s.constraints
            const vc = await upsert(
              tx,
              'value_constraints',
              { stream_config_id: cfg.id },
              defined([
                ...(['physical_min', 'physical_max', 'operational_min', 'operational_max', 'warning_min', 'warning_max', 'critical_min', 'critical_max', 'max_abs_delta', 'max_rel_delta', 'noise_abs_threshold'] as const).map(
                  (k): [string, ColType, unknown] => [k, 'real', c[k] ?? null],
                ),
                ['z_score_threshold', 'real', c.z_score_threshold],
                ['consecutive_violations_required', 'int', c.consecutive_violations_required],
                ['cooldown_seconds', 'int', c.cooldown_seconds],
                ['store_out_of_physical', 'bool', c.store_out_of_physical],
              ]),
              now,
            )
            if (status === 'unchanged' && vc.status !== 'unchanged') status = 'updated'
          }
          out.push({ series_id: `${s.domain}:${s.source_id}:${s.stream_id}`, id: cfg.id, status })
        }
        return out
      })
    },
  }
}
