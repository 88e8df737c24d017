// Password hashing with node:crypto scrypt. A stored hash looks like
// `scrypt$16384$8$1$<salt>$<key>` (base64url), so its cost can be raised later
// without breaking the hashes already stored.
import { randomBytes, scrypt as scryptCallback, timingSafeEqual } from 'node:crypto'
import { promisify } from 'node:util'

const scrypt = promisify(scryptCallback)

const COST = 16384 // N: CPU and memory cost (16 MB with r = 8)
const BLOCK_SIZE = 8 // r
const PARALLELISM = 1 // p
const SALT_BYTES = 16
const KEY_BYTES = 32

/**
 * @param {string} password
 * @returns {Promise<string>} the string to store
 */
export async function hashPassword (password) {
  const salt = randomBytes(SALT_BYTES)
  const key = await scrypt(password, salt, KEY_BYTES, { N: COST, r: BLOCK_SIZE, p: PARALLELISM })
  return ['scrypt', COST, BLOCK_SIZE, PARALLELISM, salt.toString('base64url'), key.toString('base64url')].join('$')
}

/**
 * @param {string} stored a hash made by hashPassword
 * @param {string} password
 * @returns {Promise<boolean>}
 */
async function verifyPassword (stored, password) {
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
 * @param {string | null} stored
 * @param {string} password
 * @returns {Promise<boolean>}
 */
export async function passwordMatches (stored, password) {
  const matches = await verifyPassword(stored ?? await unknownUserHash, password)
  return stored !== null && matches
}
