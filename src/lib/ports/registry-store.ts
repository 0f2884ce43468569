import type { DeviceResult, DeviceSpec, StreamResult, StreamSpec } from '../domain/registry.js'

export interface ApplyOptions {
  /** Remove thresholds and delta rules of the file's sensors that the file no longer lists. */
  prune: boolean
  /** Validate and diff only: report what would change, write nothing. */
  dryRun: boolean
}

/** Declarative registration (`ingest apply`): idempotent upserts keyed by uuid / name / series. */
export interface RegistryStore {
  /** Devices, sensors, alert thresholds and delta rules, in one transaction of the IoT store. */
  applyDevices(devices: readonly DeviceSpec[], options: ApplyOptions): Promise<DeviceResult[]>
  /** Stream configs and value constraints, in one transaction of the universal store. */
  applyStreams(streams: readonly StreamSpec[], options: ApplyOptions): Promise<StreamResult[]>
}
