import { z } from 'zod'

import { normaliseUuid } from './uuid.js'

/**
 * The `ingest apply` file (DESIGN §8.1): devices with sensors, alert thresholds and a delta rule,
 * and universal stream configs with value constraints. Unknown fields are errors; any column of
 * devices/sensors may be given by name.
 */
const uuid = z.string().transform((s, ctx) => {
  const u = normaliseUuid(s)
  if (u === undefined) {
    ctx.addIssue({ code: 'custom', message: `must be a UUID, got ${JSON.stringify(s)}` })
    return z.NEVER
  }
  return u
})

const finite = z.number().refine(Number.isFinite, 'must be a finite number')
const nullableFinite = finite.nullable()
const severity = z.enum(['info', 'warning', 'critical'], { error: 'must be one of info, warning, critical' })
const positiveInt = z.number().int('must be an integer').min(0, 'must be >= 0')
const json = z.record(z.string(), z.unknown())

export const ThresholdSpecSchema = z
  .strictObject({
    name: z.string().min(1, 'must not be empty').max(255),
    condition: z.enum(['greater_than', 'less_than', 'equal_to', 'out_of_range'], { error: 'must be one of greater_than, less_than, equal_to, out_of_range' }),
    min: nullableFinite.optional(),
    max: nullableFinite.optional(),
    severity: severity.default('warning'),
    consecutive_readings: z.number().int('must be an integer').min(1, 'must be >= 1').default(1),
    is_active: z.boolean().default(true),
  })
  .superRefine((t, ctx) => {
    const min = t.min ?? null
    const max = t.max ?? null
    if (t.condition === 'out_of_range' && min === null && max === null) ctx.addIssue({ code: 'custom', path: ['min'], message: 'out_of_range needs min, max or both' })
    if (t.condition !== 'out_of_range' && min === null) ctx.addIssue({ code: 'custom', path: ['min'], message: `${t.condition} needs min` })
    if (min !== null && max !== null && min > max) ctx.addIssue({ code: 'custom', path: ['max'], message: `must be >= min (${min})` })
  })

export const DeltaSpecSchema = z
  .strictObject({
    abs_delta: nullableFinite.optional(),
    rel_delta: nullableFinite.optional(),
    abs_slope: nullableFinite.optional(),
    rel_slope: nullableFinite.optional(),
    severity: severity.default('warning'),
    cooldown_sec: positiveInt.default(300),
    min_delta_abs: nullableFinite.optional(),
    min_readings: positiveInt.default(5),
    max_gap_sec: positiveInt.default(600),
    is_active: z.boolean().default(true),
  })
  .superRefine((d, ctx) => {
    if ([d.abs_delta, d.rel_delta, d.abs_slope, d.rel_slope].every((v) => v === undefined || v === null)) {
      ctx.addIssue({ code: 'custom', message: 'needs at least one of abs_delta, rel_delta, abs_slope, rel_slope' })
    }
  })

/** sensors columns that may be set by name (besides uuid/type/name/unit). */
const sensorColumns = {
  status: z.string().max(25).optional(),
  is_active: z.boolean().optional(),
  min_readings_for_normal: positiveInt.optional(),
  resolve_after_readings: positiveInt.optional(),
  require_qr_confirmation: z.boolean().optional(),
  is_deleted: z.boolean().optional(),
}

export const SensorSpecSchema = z.strictObject({
  uuid,
  type: z.string().min(1).max(100).optional(),
  name: z.string().max(255).optional(),
  unit: z.string().max(50).optional(),
  ...sensorColumns,
  thresholds: z.array(ThresholdSpecSchema).default([]),
  delta: DeltaSpecSchema.nullable().optional(),
})

export const DeviceSpecSchema = z.strictObject({
  uuid,
  name: z.string().max(255).optional(),
  device_type: z.string().max(100).optional(),
  status: z.enum(['draft', 'pending_activation', 'online', 'offline', 'maintenance', 'error', 'deleted'], { error: 'must be one of draft, pending_activation, online, offline, maintenance, error, deleted' }).optional(),
  metadata: json.optional(),
  sensors: z.array(SensorSpecSchema).default([]),
})

const ident = z
  .string()
  .min(1, 'must not be empty')
  .max(255)
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is refused
  .refine((s) => !/[:\s/+#\u0000-\u001f]/.test(s), 'must not contain ":", "/", "+", "#", spaces or control characters')

export const ConstraintsSpecSchema = z.strictObject({
  physical_min: nullableFinite.optional(),
  physical_max: nullableFinite.optional(),
  operational_min: nullableFinite.optional(),
  operational_max: nullableFinite.optional(),
  warning_min: nullableFinite.optional(),
  warning_max: nullableFinite.optional(),
  critical_min: nullableFinite.optional(),
  critical_max: nullableFinite.optional(),
  max_abs_delta: nullableFinite.optional(),
  max_rel_delta: nullableFinite.optional(),
  noise_abs_threshold: nullableFinite.optional(),
  z_score_threshold: finite.optional(),
  consecutive_violations_required: z.number().int().min(1).optional(),
  cooldown_seconds: positiveInt.optional(),
  store_out_of_physical: z.boolean().optional(),
})

export const StreamSpecSchema = z.strictObject({
  domain: ident.refine((d) => d.toLowerCase() !== 'iot', "domain='iot' is not allowed in universal ingestion. Use POST /ingest/packets for IoT data."),
  source_id: ident,
  stream_id: ident,
  display_name: z.string().max(255).optional(),
  unit: z.string().max(50).optional(),
  enable_ml_prediction: z.boolean().optional(),
  enable_alerting: z.boolean().optional(),
  domain_metadata: json.optional(),
  constraints: ConstraintsSpecSchema.optional(),
})

export const RegistrySpecSchema = z
  .strictObject({
    devices: z.array(DeviceSpecSchema).default([]),
    streams: z.array(StreamSpecSchema).default([]),
  })
  .superRefine((spec, ctx) => {
    const seenDevices = new Map<string, number>()
    const seenSensors = new Map<string, string>()
    spec.devices.forEach((d, i) => {
      const prev = seenDevices.get(d.uuid)
      if (prev !== undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'uuid'], message: `duplicate device uuid ${d.uuid} (also devices[${prev}])` })
      else seenDevices.set(d.uuid, i)
      d.sensors.forEach((s, j) => {
        const where = `devices[${i}].sensors[${j}]`
        const prevS = seenSensors.get(s.uuid)
        if (prevS !== undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'sensors', j, 'uuid'], message: `duplicate sensor uuid ${s.uuid} (also ${prevS})` })
        else seenSensors.set(s.uuid, where)
        const names = new Map<string, number>()
        s.thresholds.forEach((t, k) => {
          const p = names.get(t.name)
          if (p !== undefined) ctx.addIssue({ code: 'custom', path: ['devices', i, 'sensors', j, 'thresholds', k, 'name'], message: `duplicate threshold name ${JSON.stringify(t.name)} (also thresholds[${p}])` })
          else names.set(t.name, k)
        })
      })
    })
    const series = new Map<string, number>()
    spec.streams.forEach((s, i) => {
      const id = `${s.domain}:${s.source_id}:${s.stream_id}`
      const p = series.get(id)
      if (p !== undefined) ctx.addIssue({ code: 'custom', path: ['streams', i], message: `duplicate stream ${id} (also streams[${p}])` })
      else series.set(id, i)
    })
  })

export type RegistrySpec = z.output<typeof RegistrySpecSchema>
export type DeviceSpec = z.output<typeof DeviceSpecSchema>
export type SensorSpec = z.output<typeof SensorSpecSchema>
export type ThresholdSpec = z.output<typeof ThresholdSpecSchema>
export type DeltaSpec = z.output<typeof DeltaSpecSchema>
export type StreamSpec = z.output<typeof StreamSpecSchema>

export type ApplyStatus = 'created' | 'updated' | 'unchanged' | 'deleted'

export interface ThresholdResult { name: string; id: number; status: ApplyStatus }
export interface SensorResult { uuid: string; id: number; status: ApplyStatus; thresholds: ThresholdResult[]; delta: { id: number; status: ApplyStatus } | null }
export interface DeviceResult { uuid: string; id: number; status: ApplyStatus; sensors: SensorResult[] }
export interface StreamResult { series_id: string; id: number; status: ApplyStatus }
export interface ApplyResult { devices: DeviceResult[]; streams: StreamResult[] }

/** Formats a zod issue path as `devices[0].sensors[1].thresholds[0].condition`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = ''
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`
  return out === '' ? '(file)' : out
}
