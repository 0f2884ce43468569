/**
 * What the HTTP layer needs from the ingest runtime. The one import of the runtime's module, so a
 * rename there touches one file here.
 */
export type { AuthOutcome, ServeRuntime as HttpRuntime } from '../app/serve.js'
