export * from './app-error.js'
export * from './input-errors.js'
export * from './store-error.js'
