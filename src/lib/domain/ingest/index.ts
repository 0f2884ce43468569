export * from './fields.js'
export * from './issues.js'
export * from './readings.js'
