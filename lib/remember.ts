// The remember-me cookie. Keys are derived from `secret` for this purpose only.
//
// Without a login store, a stateless token whose MAC covers the user id, an
// expiry, the login's duration and (optionally) a tag of the user's
// `sessionVersion`:
//
//   v1.<base64url(id)>.<expires, unix seconds>.<duration, seconds>.<version tag or empty>.<base64url(mac)>
//
// With a login store, it names a login record and carries that record's
// current validator, derived from the secret, the login id and the rotation
// counter (so the current cookie can be sent again during the grace window,
// while the store keeps only a hash of it):
//
//   v2.<login id>.<rotation>.<base64url(validator)>
import { createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { COOKIE_DOMAIN, COOKIE_PATH, HOST_PREFIX, type LoginConfig } from './options.js'

const FORMAT = 'v1'
const MAC_BYTES = 32
const MAC_CHARS = 43
const TAG_BYTES = 16
const TAG_CHARS = 22
/** Longer values are rejected before any MAC is computed. */
export const MAX_COOKIE_LENGTH = 4096
const BASE64URL = /^[A-Za-z0-9_-]+$/
const SECONDS = /^[1-9][0-9]{0,12}$/
const STORE_FORMAT = 'v2'
/** What a login id may look like (see `LoginRecord.id`). */
export const LOGIN_ID = /^[A-Za-z0-9_-]{22,128}$/
const ROTATION = /^(?:0|[1-9][0-9]{0,14})$/

/** A verified remember token. */
export interface RememberToken {
  readonly userId: string
  /** Unix seconds after which the token is refused. */
  readonly expires: number
  /** The lifetime chosen at login, in seconds; kept when the cookie is refreshed. */
  readonly duration: number
  readonly versionTag: string
  /** True when a secret other than the first verified it: re-issue under the current one. */
  readonly stale: boolean
}

/** A store cookie whose validator verified: which login, at which rotation. */
export interface StoreToken {
  readonly loginId: string
  readonly rotation: number
  /** SHA-256 (base64url) of the validator, as the store keeps it. */
  readonly validatorHash: string
}

interface KeyPair {
  readonly mac: Buffer
  readonly version: Buffer
  readonly validator: Buffer
}

function derive (secret: string, info: string): Buffer {
  return Buffer.from(hkdfSync('sha256', secret, 'fastify-login', info, 32))
}

/** Signs and verifies remember tokens with keys derived once from the secrets. */
export class RememberCodec {
  readonly #keys: readonly KeyPair[]

  constructor (secrets: readonly string[]) {
    this.#keys = secrets.map((secret) => ({
      mac: derive(secret, 'remember-cookie mac v1'),
      version: derive(secret, 'remember-cookie session-version v1'),
      validator: derive(secret, 'remember-cookie store validator v2')
    }))
  }

  /** The store cookie of login `loginId` at `rotation`, under the current key. */
  signStore (loginId: string, rotation: number): string {
    return `${STORE_FORMAT}.${loginId}.${rotation}.${this.#validator(this.#keys[0]!, loginId, rotation).toString('base64url')}`
  }

  /**
   * The store cookie of `loginId` at `rotation` whose validator hashes to
   * `validatorHash`, under whichever key made it; `null` when none does.
   */
  storeCookieMatching (loginId: string, rotation: number, validatorHash: string): string | null {
    for (const key of this.#keys) {
      const validator = this.#validator(key, loginId, rotation)
      if (hashValidator(validator) === validatorHash) return `${STORE_FORMAT}.${loginId}.${rotation}.${validator.toString('base64url')}`
    }
    return null
  }

  /** The login and rotation a store cookie names, or `null` when it is malformed or forged (no store read needed). */
  verifyStore (value: string): StoreToken | null {
    if (value.length > MAX_COOKIE_LENGTH) return null
    const parts = value.split('.')
    if (parts.length !== 4 || parts[0] !== STORE_FORMAT) return null
    const [, loginId, rotationText, validatorText] = parts as [string, string, string, string]
    if (!LOGIN_ID.test(loginId) || !ROTATION.test(rotationText)) return null
    if (validatorText.length !== MAC_CHARS || !BASE64URL.test(validatorText)) return null
    // 43 characters are 32 bytes; only the canonical spelling of them is accepted.
    const validator = Buffer.from(validatorText, 'base64url')
    if (validator.toString('base64url') !== validatorText) return null
    const rotation = Number(rotationText)
    if (!this.#keys.some((key) => timingSafeEqual(this.#validator(key, loginId, rotation), validator))) return null
    return { loginId, rotation, validatorHash: hashValidator(validator) }
  }

  #validator (key: KeyPair, loginId: string, rotation: number): Buffer {
    return createHmac('sha256', key.validator).update(`${loginId}.${rotation}`).digest()
  }

  /** A tag of `version` for `userId`, under the current key; empty without a version. */
  versionTag (userId: string, version: string | undefined): string {
    if (version === undefined) return ''
    return this.#tag(this.#keys[0]!, userId, version)
  }

  /** Whether `tag` is the tag of `version` under the key that verified the token. */
  versionMatches (token: RememberToken, version: string | undefined): boolean {
    if (version === undefined) return token.versionTag === ''
    if (token.versionTag.length !== TAG_CHARS) return false
    const expected = Buffer.from(token.versionTag, 'base64url')
    return this.#keys.some((key) => {
      const actual = Buffer.from(this.#tag(key, token.userId, version), 'base64url')
      return actual.length === expected.length && timingSafeEqual(actual, expected)
    })
  }

  sign (userId: string, durationSeconds: number, versionTag: string, now = Date.now()): string {
    const expires = Math.floor(now / 1000) + Math.ceil(durationSeconds)
    return this.#signFields(Buffer.from(userId, 'utf8').toString('base64url'), expires, Math.ceil(durationSeconds), versionTag)
  }

  /** Re-signs a verified token under the current key, keeping its expiry and duration. */
  resign (token: RememberToken, versionTag: string): string {
    return this.#signFields(Buffer.from(token.userId, 'utf8').toString('base64url'), token.expires, token.duration, versionTag)
  }

  /** The token in `value`, or `null` when it is malformed, forged or expired. */
  verify (value: unknown, now = Date.now()): RememberToken | null {
    if (typeof value !== 'string' || value.length > MAX_COOKIE_LENGTH) return null
    const parts = value.split('.')
    if (parts.length !== 6 || parts[0] !== FORMAT) return null
    const [, encodedId, expiresText, durationText, versionTag, macText] = parts as [string, string, string, string, string, string]
    if (!BASE64URL.test(encodedId) || !SECONDS.test(expiresText) || !SECONDS.test(durationText)) return null
    if (versionTag !== '' && (versionTag.length !== TAG_CHARS || !BASE64URL.test(versionTag) ||
      Buffer.from(versionTag, 'base64url').toString('base64url') !== versionTag)) return null
    if (macText.length !== MAC_CHARS || !BASE64URL.test(macText)) return null
    const mac = Buffer.from(macText, 'base64url')
    // Only the canonical encoding is accepted: no two cookies carry one MAC.
    if (mac.length !== MAC_BYTES || mac.toString('base64url') !== macText) return null
    const payload = `${FORMAT}.${encodedId}.${expiresText}.${durationText}.${versionTag}`
    const index = this.#keys.findIndex((key) => {
      const expected = createHmac('sha256', key.mac).update(payload).digest()
      return timingSafeEqual(expected, mac)
    })
    if (index === -1) return null
    const expires = Number(expiresText)
    if (expires * 1000 <= now) return null
    const idBytes = Buffer.from(encodedId, 'base64url')
    const userId = idBytes.toString('utf8')
    if (userId === '' || Buffer.from(userId, 'utf8').toString('base64url') !== encodedId) return null
    return { userId, expires, duration: Number(durationText), versionTag, stale: index !== 0 }
  }

  #signFields (encodedId: string, expires: number, duration: number, versionTag: string): string {
    const payload = `${FORMAT}.${encodedId}.${expires}.${duration}.${versionTag}`
    const mac = createHmac('sha256', this.#keys[0]!.mac).update(payload).digest('base64url')
    return `${payload}.${mac}`
  }

  #tag (key: KeyPair, userId: string, version: string): string {
    return createHmac('sha256', key.version).update(`${userId}\u0000${version}`).digest().subarray(0, TAG_BYTES).toString('base64url')
  }
}

/** What a store keeps of a validator: its SHA-256, base64url. */
export function hashValidator (validator: Buffer): string {
  return createHash('sha256').update(validator).digest('base64url')
}

/** The hash a store keeps for the store cookie `value` (one this codec signed). */
export function validatorHashOf (value: string): string {
  return hashValidator(Buffer.from(value.slice(value.lastIndexOf('.') + 1), 'base64url'))
}

/** True when `value` looks like a store cookie (not whether it verifies). */
export function isStoreCookie (value: string): boolean {
  return value.startsWith(`${STORE_FORMAT}.`)
}

interface CookieOptions {
  path: string
  domain: string | undefined
  secure: boolean
  httpOnly: boolean
  sameSite: 'lax' | 'strict' | 'none' | false
  maxAge?: number
  expires?: Date
}

// @fastify/cookie's reply methods, without depending on its type declarations.
interface CookieReply {
  setCookie (name: string, value: string, options: CookieOptions): unknown
  clearCookie (name: string, options: CookieOptions): unknown
}

function cookieOptions (config: LoginConfig, request: FastifyRequest): CookieOptions {
  const remember = config.remember
  return {
    path: remember.path,
    domain: remember.domain,
    secure: remember.secure === 'auto' ? request.protocol === 'https' : remember.secure,
    httpOnly: remember.httpOnly,
    sameSite: remember.sameSite
  }
}

function cookieReply (reply: FastifyReply): CookieReply {
  return reply as unknown as CookieReply
}

/**
 * Sets the remember cookie `value`, a token signed here; `maxAge` is the
 * seconds left until `expires` (unix seconds), the token's own expiry.
 * Expires carries that expiry too, for clients that read only Expires
 * (Flask-Login sends both).
 */
export function setRememberCookie (config: LoginConfig, request: FastifyRequest, reply: FastifyReply, value: string, maxAge: number, expires: number): void {
  cookieReply(reply).setCookie(config.remember.cookieName, value, { ...cookieOptions(config, request), maxAge: Math.max(0, maxAge), expires: new Date(expires * 1000) })
}

/** Clears the remember cookie with the Path and Domain it was set with. */
export function clearRememberCookie (config: LoginConfig, request: FastifyRequest, reply: FastifyReply): void {
  cookieReply(reply).clearCookie(config.remember.cookieName, cookieOptions(config, request))
}

function isSpace (code: number): boolean {
  return code === 32 || code === 9
}

/**
 * True when the Cookie header holds more than one cookie named `name`: the
 * browser has one per path and domain that match. Names are read as
 * @fastify/cookie reads them: a pair starts the header or follows a `;`, and
 * spaces and tabs around the name do not count.
 */
export function severalCookies (header: unknown, name: string): boolean {
  if (typeof header !== 'string') return false
  let found = 0
  let at = header.indexOf(name)
  while (at !== -1) {
    let before = at - 1
    while (before >= 0 && isSpace(header.charCodeAt(before))) before--
    let after = at + name.length
    while (after < header.length && isSpace(header.charCodeAt(after))) after++
    if ((before === -1 || header.charCodeAt(before) === 59 /* ; */) && header.charCodeAt(after) === 61 /* = */ && ++found === 2) return true
    at = header.indexOf(name, at + name.length)
  }
  return false
}

// Where a tossed cookie may live, shortest first. Bounded, since the URL and
// the Host header are the client's, and small: at most 18 Set-Cookie headers
// (about 2 KB), well within a proxy's header buffer (nginx: 4 KB by default).
const MAX_TOSSED_PATHS = 6
const MAX_TOSSED_DOMAINS = 2
const IP_ADDRESS = /^[\d.]+$|:/

// The cookie paths a browser sends with a request for `url`: `/`, and each
// prefix that ends at a `/` or at the end, with and without that `/`.
function cookiePathsOf (url: string): string[] {
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  const paths = ['/']
  if (!path.startsWith('/')) return paths
  for (let end = path.indexOf('/', 1); paths.length < MAX_TOSSED_PATHS; end = path.indexOf('/', end + 1)) {
    const prefix = end === -1 ? path : path.slice(0, end)
    // Deeper prefixes hold the same character: no cookie path can.
    if (!COOKIE_PATH.test(prefix)) break
    if (prefix !== '/') paths.push(prefix)
    if (end === -1 || paths.length === MAX_TOSSED_PATHS) break
    paths.push(`${prefix}/`)
  }
  return [...new Set(paths)]
}

// Host-only, and the Domain attributes a cookie sent to `hostname` can have:
// the host itself and its parents of two labels or more, shortest first.
function cookieDomainsOf (hostname: string): Array<string | undefined> {
  const domains: Array<string | undefined> = [undefined]
  if (IP_ADDRESS.test(hostname) || !COOKIE_DOMAIN.test(hostname)) return domains
  const labels = hostname.toLowerCase().split('.')
  for (let first = labels.length - 2; first >= 0 && domains.length <= MAX_TOSSED_DOMAINS; first--) {
    domains.push(labels.slice(first).join('.'))
  }
  return domains
}

/**
 * Clears, beside the configured one, the cookies of the remember cookie's
 * name that a tossing attacker can have set for this request: on each path
 * that matches its URL, host-only or on the host and its parent domains.
 * A `__Host-` cookie can only live at `/` on this host, the configured place.
 */
export function clearTossedRememberCookies (config: LoginConfig, request: FastifyRequest, reply: FastifyReply): void {
  const { cookieName, path } = config.remember
  if (HOST_PREFIX.test(cookieName)) return
  // Browsers ignore a leading dot in Domain.
  const domain = config.remember.domain?.replace(/^\./, '').toLowerCase()
  const options = cookieOptions(config, request)
  for (const tossedPath of cookiePathsOf(request.url)) {
    for (const tossedDomain of cookieDomainsOf(request.hostname)) {
      if (tossedPath === path && tossedDomain === domain) continue
      cookieReply(reply).clearCookie(cookieName, { ...options, path: tossedPath, domain: tossedDomain })
    }
  }
}
