/** The rows `/sensors/{id}/status` reports (reference §1.8), times as ISO-8601 strings. */
export interface SensorStatusRows {
  alert: { id: number; sensor_id: number; device_id: number; threshold_id: number | null; severity: string; status: string; triggered_value: number; triggered_at: string } | null
  warning: { id: number; sensor_id: number; device_id: number; event_type: string; event_code: string; status: string; created_at: string; title: string | null; message: string | null; payload: unknown } | null
  prediction: { id: number; sensor_id: number; model_id: number; predicted_value: number; confidence: number; predicted_at: string; target_timestamp: string } | null
  /** Rule state and latest reading time, for STALE. */
  operationalState: string | null
  latestTime: string | null
}

export interface StatusStore {
  sensorStatus(sensorId: number): Promise<SensorStatusRows>
}
