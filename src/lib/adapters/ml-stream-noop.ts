import { ML_STREAMS, type MlStream, type MlStreamStatus } from '../ports/ml-stream.js'

/** The ML stream when Redis is not configured (DESIGN §11: "without Redis the stream is off and health says so"). */
export function createNoopMlStream(reason: string, settings: { minIntervalSeconds: number; maxLen: number }): MlStream {
  return {
    enabled: false,
    publishReadings() {},
    publishPoints() {},
    status(): MlStreamStatus {
      return {
        enabled: false,
        reason,
        available: false,
        queued: 0,
        published: { [ML_STREAMS.validated]: 0, [ML_STREAMS.raw]: 0, [ML_STREAMS.points]: 0 },
        throttled: 0,
        dropped: 0,
        errors: 0,
        lastPublishAt: null,
        lastPublishAgeSeconds: null,
        lastError: null,
        lastErrorAt: null,
        minIntervalSeconds: settings.minIntervalSeconds,
        maxLen: settings.maxLen,
      }
    },
    close: () => Promise.resolve(),
  }
}
