// Password hashing with node:crypto scrypt. A stored hash looks like
// `scrypt$16384$8$1$<salt>$<key>` (base64url), so its cost can be raised later
// without breaking the hashes already stored.
import { randomBytes, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto'

const COST = 16384 // N: CPU and memory cost (16 MB with r = 8)
const BLOCK_SIZE = 8 // r
const PARALLELISM = 1 // p
const SALT_BYTES = 16
const KEY_BYTES = 32

/** node:crypto's scrypt as a promise (util.promisify picks the overload without options). */
function scrypt (password: string, salt: Buffer, keyLength: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    scryptCallback(password, salt, keyLength, options, (error, key) => {
      if (error === null) resolve(key)
      else reject(error)
    })
  })
}

/** The string to store for `password`. */
export async function hashPassword (password: string): Promise<string> {
  const salt = randomBytes(SALT_BYTES)
  const key = await scrypt(password, salt, KEY_BYTES, { N: COST, r: BLOCK_SIZE, p: PARALLELISM })
  return ['scrypt', COST, BLOCK_SIZE, PARALLELISM, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/** `stored`: a hash made by hashPassword. */
async function verifyPassword (stored: string, password: string): Promise<boolean> {
  const [scheme, cost, blockSize, parallelism, salt, key] = stored.split('$')
  if (scheme !== 'scrypt' || salt === undefined || key === undefined) return false
  const expected = Buffer.from(key, 'base64url')
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length, {
    N: Number(cost), r: Number(blockSize), p: Number(parallelism)
  })
  // Constant-time comparison: how long it takes says nothing about how many bytes matched.
  return timingSafeEqual(actual, expected)
}

// A hash of a random password nobody knows. Checking a password against it
// costs exactly what a real check costs, so a login attempt for an unknown
// username takes as long as one for a real user: response times do not tell
// an attacker which usernames exist.
const unknownUserHash = hashPassword(randomBytes(32).toString('base64url'))

/**
 * Checks `password` against a user's stored hash, doing the same work when
 * there is no such user (`stored` is null).
 */
export async function passwordMatches (stored: string | null, password: string): Promise<boolean> {
  const matches = await verifyPassword(stored ?? await unknownUserHash, password)
  return stored !== null && matches
}
