/**
 * The largest magnitude the legacy `decimal(15,5)` value columns (`sensor_readings.value`,
 * `alerts.triggered_value`, ...) accept: ten integer digits, five decimals.
 *
 * Not simply `< 1e10`: SQL Server rounds a float to five decimals when it converts it, so a value such as
 * 9999999999.999996 becomes 10000000000.00000 and overflows (error 8115). Every value up to
 * 9999999999.999995 rounds to at most 9999999999.99999. That bound is not a double: the expression below
 * gives the nearest one (9999999999.99999427...), which still rounds down, while the next double up
 * (9999999999.99999618...) does not, so `<=` on it is exact.
 */
export const LEGACY_DECIMAL_MAX_ABS = 1e10 - 5e-6

/**
 * Whether a reading's value can be stored in the legacy `decimal(15,5)` columns. The SQL Server
 * adapter rejects the others with `VALUE_OUT_OF_STORAGE_RANGE` instead of letting the insert fail
 * (and take its batch's transaction with it).
 */
export function fitsLegacyDecimal(v: number): boolean {
  return Number.isFinite(v) && Math.abs(v) <= LEGACY_DECIMAL_MAX_ABS
}
