import type { IotCsvPoint, UniversalCsvPoint } from '../../csv/formats.js'
import type { IdReading } from '../../domain/ingest/readings.js'
import type { IngestService } from '../ingest/ingest-service.js'
import type { ReceiptStatus } from '../ingest/items.js'

/** What happened to one point handed to a sink (the receipts of DESIGN §3). */
export interface SinkOutcome {
  status: ReceiptStatus
  code?: string | undefined
}

/**
 * Where an import's points go: the one ingest path of their domain, with backfill semantics (the
 * point's own time, exempt from the age window, no alerts or rule-state movement unless `alerts`).
 * One implementation per path: IoT readings (IngestService) and universal points.
 */
export interface CsvRowSink<P> {
  /** Commits the points (group commit); one outcome per point, in order. Throws when the store is unavailable. */
  write(points: readonly P[]): Promise<SinkOutcome[]>
  /** A dry run: what the path would refuse before writing (unknown sensors...), without writing. */
  check(points: readonly P[]): Promise<SinkOutcome[]>
}

const STORED: SinkOutcome = Object.freeze({ status: 'stored' })
const UNKNOWN: SinkOutcome = Object.freeze({ status: 'rejected', code: 'UNKNOWN_SENSOR' })
const INACTIVE: SinkOutcome = Object.freeze({ status: 'rejected', code: 'SENSOR_INACTIVE' })

/**
 * IoT readings through the IoT ingest service: rows by `sensor_id`, or by `device_uuid`+`sensor_uuid`
 * resolved through the service's cached resolver. Each reading's dedup key is built from its sensor,
 * time and value (DESIGN §6), so a re-run or a resumed run stores nothing twice.
 */
export function createIotCsvSink(ingest: IngestService, options: { alerts: boolean }): CsvRowSink<IotCsvPoint> {
  const ingestOptions = { backfill: true, alerts: options.alerts }

  /** Sensor ids for the points (null: unknown pair), one query per distinct unknown pair. */
  async function sensorIds(points: readonly IotCsvPoint[]): Promise<Array<number | null>> {
    const ids = new Array<number | null>(points.length)
    let pairs: Map<string, { deviceUuid: string; sensorUuid: string }> | undefined
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as IotCsvPoint
      if (p.sensorId !== null) ids[i] = p.sensorId
      else {
        pairs ??= new Map()
        pairs.set(`${p.deviceUuid}|${p.sensorUuid}`, { deviceUuid: p.deviceUuid as string, sensorUuid: p.sensorUuid as string })
      }
    }
    if (!pairs) return ids
    const found = await ingest.resolver.resolveUuids([...pairs.values()])
    for (let i = 0; i < points.length; i++) {
      const p = points[i] as IotCsvPoint
      if (p.sensorId === null) ids[i] = found.get(`${p.deviceUuid}|${p.sensorUuid}`)?.id ?? null
    }
    return ids
  }

  return {
    async write(points) {
      const ids = await sensorIds(points)
      const outcomes = new Array<SinkOutcome>(points.length)
      const readings: IdReading[] = []
      const at: number[] = []
      for (let i = 0; i < points.length; i++) {
        const id = ids[i]
        if (id === null || id === undefined) {
          outcomes[i] = UNKNOWN
          continue
        }
        const p = points[i] as IotCsvPoint
        readings.push({ sensorId: id, value: p.value, timestamp: p.time, deviceTsSeconds: p.time / 1000, sequence: p.sequence })
        at.push(i)
      }
      if (readings.length > 0) {
        const receipt = await ingest.ingestById(readings, 'csv', ingestOptions)
        for (let k = 0; k < at.length; k++) {
          const r = receipt.receipts[k]
          outcomes[at[k] as number] = r ? { status: r.status, code: r.code } : { status: 'rejected', code: 'INTERNAL' }
        }
      }
      return outcomes
    },
    async check(points) {
      const ids = await sensorIds(points)
      const infos = await ingest.resolver.resolveIds([...new Set(ids.filter((id): id is number => id !== null))])
      return ids.map((id) => {
        const info = id === null ? null : (infos.get(`#${id}`) ?? null)
        return !info ? UNKNOWN : info.active ? STORED : INACTIVE
      })
    },
  }
}

/**
 * The universal path's side of the seam: whatever ingests universal points (the multi-domain service)
 * with backfill semantics and one outcome per point. The CSV import only needs this.
 */
export interface UniversalPointWriter {
  ingestCsvPoints(points: readonly UniversalCsvPoint[], options: { alerts: boolean; dryRun: boolean }): Promise<SinkOutcome[]>
}

/** Universal points through the multi-domain ingest path (see UniversalPointWriter). */
export function createUniversalCsvSink(writer: UniversalPointWriter, options: { alerts: boolean }): CsvRowSink<UniversalCsvPoint> {
  return {
    write: (points) => writer.ingestCsvPoints(points, { alerts: options.alerts, dryRun: false }),
    check: (points) => writer.ingestCsvPoints(points, { alerts: options.alerts, dryRun: true }),
  }
}
