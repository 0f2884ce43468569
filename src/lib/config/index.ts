export { loadConfig, loadConfigFromProcess, type LoadConfigInput, type LoadedConfig, maskSecret, parseDurationSeconds } from './load.js'
export type { Config, IotEngine, LogLevel, SqlServerConfig, UniversalEngine } from './types.js'
export { type VarName, VARIABLES, type VarSpec } from './variables.js'
