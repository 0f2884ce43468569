const HEX32 = /^[0-9a-f]{32}$/

/**
 * Accepts upper-case, hyphenless and braced UUIDs (as the original's pydantic did) and returns the
 * lower-case hyphenated form, or undefined when it is not a UUID.
 */
const CANONICAL = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

export function normaliseUuid(input: string): string | undefined {
  // Nearly every device sends the canonical form: one test, no allocation.
  if (CANONICAL.test(input)) return input
  let s = input.trim().toLowerCase()
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1)
  if (s.startsWith('urn:uuid:')) s = s.slice(9)
  const hex = s.length === 36 && s[8] === '-' && s[13] === '-' && s[18] === '-' && s[23] === '-' ? s.replaceAll('-', '') : s
  if (!HEX32.test(hex)) return undefined
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}
