import { randomBytes } from 'node:crypto'

// Crockford base32, as ULID uses it.
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ'
const RANDOM_BITS = 80n
const RANDOM_MAX = (1n << RANDOM_BITS) - 1n

function encode(value: bigint, length: number): string {
  let out = ''
  let v = value
  for (let i = 0; i < length; i++) {
    out = (ALPHABET[Number(v & 31n)] ?? '0') + out
    v >>= 5n
  }
  return out
}

/**
 * DLQ entry ids: ULIDs (26 characters: 48-bit epoch ms, then 80 random bits). They sort by the time of
 * the first failure; within one process ids of the same millisecond are monotonic (the random part
 * is incremented), so a batch keeps its order. The same id identifies an entry on every backend and
 * across replays.
 */
export function createEntryIdGenerator(random: (n: number) => Buffer = randomBytes): (nowMs: number) => string {
  let lastTime = -1
  let lastRandom = 0n
  return (nowMs: number): string => {
    const time = Math.max(0, Math.floor(nowMs))
    if (time <= lastTime && lastRandom < RANDOM_MAX) {
      lastRandom += 1n
    } else {
      lastTime = Math.max(time, lastTime)
      lastRandom = BigInt(`0x${random(10).toString('hex')}`) >> 1n
    }
    return encode(BigInt(lastTime), 10) + encode(lastRandom, 16)
  }
}

export const ENTRY_ID_PATTERN = /^[0-9A-HJKMNP-TV-Z]{26}$/
