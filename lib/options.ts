// Defaults, and the one-time validation that turns user options into the
// frozen configuration every hook closes over.
import { createHash } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type {
  AnonymousUser, FastifyLoginOptions, LoginStore, LoginUser, LoginView, RequestLoader, ResolvedLoginOptions,
  ResponseHandler, SessionProtection, UserLoader
} from '../types/index.js'
import { FST_LOGIN_INVALID_OPTION, FST_LOGIN_MISSING_LOADER, FST_LOGIN_MISSING_SECRET } from './errors.js'
import { AnonymousUserMixin } from './mixins.js'
import { LOGIN_KEYS, SESSION_KEYS } from './session.js'

/** Flashed when an anonymous user is sent to the login view. */
export const DEFAULT_LOGIN_MESSAGE = 'Please log in to access this page.'
/** Flashed when a stale login is sent to the refresh view. */
export const DEFAULT_NEEDS_REFRESH_MESSAGE = 'Please reauthenticate to access this page.'
/** Flashed when a guard turns away a request whose login has just expired (`idleTimeout`, `absoluteTimeout`). */
export const DEFAULT_EXPIRED_MESSAGE = 'Your session has expired. Please log in again.'
/** Flash category of the login and needs-refresh messages (the expired message takes the login message's). */
export const DEFAULT_MESSAGE_CATEGORY = 'message'
/** Name of the remember-me cookie. */
export const DEFAULT_REMEMBER_COOKIE_NAME = 'remember_token'
/** Lifetime of the remember-me cookie: 365 days, in seconds. */
export const DEFAULT_REMEMBER_DURATION = 365 * 24 * 60 * 60
/**
 * Longest remember duration: 100 years (of 365.25 days), in seconds. Much
 * longer ones overflow the token's expiry field or the cookie's Expires date.
 */
export const MAX_REMEMBER_DURATION = 100 * 365.25 * 24 * 60 * 60
/** Query and session field carrying the return address. */
export const DEFAULT_NEXT_FIELD = 'next'
/** Methods the guards let through (CORS preflights carry no cookies). */
export const DEFAULT_EXEMPT_METHODS: readonly string[] = Object.freeze(['OPTIONS'])
/** Shortest accepted secret, in characters. */
export const MIN_SECRET_LENGTH = 32
/** Session keys dropped by every login: @fastify/csrf-protection's secret. */
export const DEFAULT_DROP_ON_LOGIN: readonly string[] = Object.freeze(['_csrf'])
/** With a login store: seconds a rotated-out remember cookie is still accepted. */
export const DEFAULT_ROTATION_GRACE = 60

/** Everything the hooks need, resolved once at register time. */
export interface LoginConfig extends ResolvedLoginOptions {
  readonly secrets: readonly string[]
  readonly userLoader: UserLoader | undefined
  readonly requestLoader: RequestLoader | undefined
  readonly anonymousUser: (request: FastifyRequest) => AnonymousUser
  readonly getUserId: (user: LoginUser) => unknown
  readonly localize: ((message: string, request: FastifyRequest) => string) | undefined
  readonly unauthorizedHandler: ResponseHandler | undefined
  readonly needsRefreshHandler: ResponseHandler | undefined
  readonly sessionIdentifier: (request: FastifyRequest) => string
  readonly sessionVersion: ((user: LoginUser) => string) | undefined
  readonly exemptMethodSet: ReadonlySet<string>
  /** What a new login removes from the session: the previous login's keys and `dropOnLogin`. */
  readonly keysReplacedByLogin: readonly string[]
  readonly loginStore: LoginStore | undefined
}

// Recent identifiers, so a client's hash is computed once, not on every
// request: User-Agent → address → identifier (two lookups instead of
// joining the two strings on every request). Both keys are the client's
// (the address too, behind a trusted proxy), so the cache is bounded in
// entries and in characters, and a client whose keys are longer than any
// browser's is hashed on every request instead of being kept.
const identifierCache = new Map<string, Map<string, string>>()
let cachedIdentifiers = 0
let cachedCharacters = 0
/** Most identifiers kept. */
export const IDENTIFIER_CACHE_ENTRIES = 1024
/** Most characters kept, keys and identifiers together (at most 1 MiB of strings). */
export const IDENTIFIER_CACHE_CHARACTERS = 512 * 1024
/** Longest User-Agent plus address that is cached. */
export const MAX_CACHED_CLIENT_LENGTH = 1024

/** Flask-Login's identifier: SHA-512 (hex) of the client address and its User-Agent. */
export function defaultSessionIdentifier (request: FastifyRequest): string {
  const userAgent = request.headers['user-agent'] ?? ''
  const address = request.ip
  let byAddress = identifierCache.get(userAgent)
  let identifier = byAddress?.get(address)
  if (identifier !== undefined) return identifier
  identifier = createHash('sha512').update(`${address}|${userAgent}`, 'utf8').digest('hex')
  if (userAgent.length + address.length > MAX_CACHED_CLIENT_LENGTH) return identifier
  let characters = address.length + identifier.length + (byAddress === undefined ? userAgent.length : 0)
  if (cachedIdentifiers >= IDENTIFIER_CACHE_ENTRIES || cachedCharacters + characters > IDENTIFIER_CACHE_CHARACTERS) {
    identifierCache.clear()
    cachedIdentifiers = 0
    cachedCharacters = 0
    byAddress = undefined
    characters = address.length + identifier.length + userAgent.length
  }
  if (byAddress === undefined) {
    byAddress = new Map()
    identifierCache.set(userAgent, byAddress)
  }
  byAddress.set(address, identifier)
  cachedIdentifiers++
  cachedCharacters += characters
  return identifier
}

/** What the identifier cache holds now, counted from its contents (for tests). */
export function identifierCacheFootprint (): { entries: number, characters: number } {
  let entries = 0
  let characters = 0
  for (const [userAgent, byAddress] of identifierCache) {
    characters += userAgent.length
    for (const [address, identifier] of byAddress) {
      entries++
      characters += address.length + identifier.length
    }
  }
  return { entries, characters }
}

/** `user.getId()` when it is a function, else `user.id`. */
export function defaultGetUserId (user: LoginUser): unknown {
  const candidate = user as { getId?: unknown, id?: unknown }
  return typeof candidate.getId === 'function' ? candidate.getId() : candidate.id
}

function defaultAnonymousUser (): AnonymousUser {
  return new AnonymousUserMixin() as AnonymousUser
}

function fail (message: string): never {
  throw new FST_LOGIN_INVALID_OPTION(message)
}

function optionalFunction<T> (value: T | undefined, name: string): T | undefined {
  if (value !== undefined && typeof value !== 'function') fail(`\`${name}\` must be a function`)
  return value
}

function optionalString (value: unknown, name: string): string | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'string' || value === '') fail(`\`${name}\` must be a non-empty string`)
  return value
}

function message (value: unknown, name: string, fallback: string): string | false {
  if (value === undefined) return fallback
  if (value === false || typeof value === 'string') return value
  return fail(`\`${name}\` must be a string or false`)
}

function bool (value: unknown, name: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') fail(`\`${name}\` must be true or false`)
  return value
}

function view (value: unknown, name: string): LoginView | undefined {
  if (value === undefined) return undefined
  if (typeof value === 'function') return value as LoginView
  const path = optionalString(value, name)
  if (path !== undefined && !URL.canParse(path, 'http://localhost/')) fail(`\`${name}\` must be a path or URL`)
  return path
}

function nonNegativeSeconds (value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    fail(`\`${name}\` must be a finite number of seconds, 0 or more`)
  }
  return value
}

const STORE_METHODS = ['create', 'get', 'update', 'delete', 'list'] as const

function resolveLoginStore (value: unknown): LoginStore | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object') fail('`loginStore` must be a login store (MemoryLoginStore, RedisLoginStore or your own LoginStore)')
  const store = value as Record<string, unknown>
  const missing = STORE_METHODS.filter((method) => typeof store[method] !== 'function')
  if (missing.length > 0) fail(`\`loginStore\` lacks the method${missing.length > 1 ? 's' : ''} ${missing.join(', ')} of LoginStore`)
  if (store.createId !== undefined && typeof store.createId !== 'function') fail('`loginStore.createId` must be a function')
  return value as LoginStore
}

function positiveSeconds (value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(`\`${name}\` must be a positive, finite number of seconds`)
  }
  return value
}

/** True for a duration `loginUser` and `remember.duration` accept. */
export function isRememberDuration (value: unknown): value is number {
  return typeof value === 'number' && value > 0 && value <= MAX_REMEMBER_DURATION
}

function rememberDuration (value: unknown): number {
  if (value === undefined) return DEFAULT_REMEMBER_DURATION
  if (!isRememberDuration(value)) {
    fail(`\`remember.duration\` must be a positive, finite number of seconds, at most ${MAX_REMEMBER_DURATION} (100 years)`)
  }
  return value
}

function resolveSecrets (secret: unknown): readonly string[] {
  const list = Array.isArray(secret) ? secret : [secret]
  if (list.length === 0) throw new FST_LOGIN_MISSING_SECRET()
  for (const item of list) {
    if (typeof item !== 'string' || item.length < MIN_SECRET_LENGTH) throw new FST_LOGIN_MISSING_SECRET()
  }
  return Object.freeze([...list] as string[])
}

function resolveProtection (value: unknown): SessionProtection {
  if (value === undefined) return 'basic'
  if (value === 'basic' || value === 'strong' || value === false) return value
  return fail('`sessionProtection` must be \'basic\', \'strong\' or false')
}

// What a Set-Cookie header can carry (RFC 6265): a token for the name, and
// attribute values without control characters or ';'.
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/
export const COOKIE_PATH = /^\/[\u0020-\u003a\u003c-\u007e]*$/
export const COOKIE_DOMAIN = /^\.?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/i
// Browsers keep a cookie named so only with these attributes (matched case-insensitively).
export const HOST_PREFIX = /^__host-/i
const SECURE_PREFIX = /^__secure-/i

function cookieAttribute (value: unknown, name: string, pattern: RegExp, what: string): string | undefined {
  const text = optionalString(value, name)
  if (text !== undefined && !pattern.test(text)) fail(`\`${name}\` must be ${what}`)
  return text
}

function resolveRemember (options: FastifyLoginOptions['remember']): LoginConfig['remember'] {
  if (options !== undefined && (options === null || typeof options !== 'object')) fail('`remember` must be an object')
  const remember = options ?? {}
  const secure = remember.secure ?? 'auto'
  if (secure !== true && secure !== false && secure !== 'auto') fail('`remember.secure` must be true, false or \'auto\'')
  const sameSite = remember.sameSite ?? 'lax'
  if (sameSite !== 'lax' && sameSite !== 'strict' && sameSite !== 'none' && sameSite !== false) {
    fail('`remember.sameSite` must be \'lax\', \'strict\', \'none\' or false')
  }
  // Browsers drop SameSite=None cookies that are not Secure.
  if (sameSite === 'none' && secure !== true) fail('`remember.sameSite: \'none\'` needs `remember.secure: true`')
  const cookieName = cookieAttribute(remember.cookieName, 'remember.cookieName', COOKIE_NAME, 'a cookie name (letters, digits and !#$%&\'*+-.^_`|~)') ?? DEFAULT_REMEMBER_COOKIE_NAME
  const domain = cookieAttribute(remember.domain, 'remember.domain', COOKIE_DOMAIN, 'a domain name')
  const path = cookieAttribute(remember.path, 'remember.path', COOKIE_PATH, 'a path starting with / without ; or control characters') ?? '/'
  if (HOST_PREFIX.test(cookieName) && (secure !== true || path !== '/' || domain !== undefined)) {
    fail('a `__Host-` cookie name needs `remember.secure: true`, `remember.path: \'/\'` and no `remember.domain` (browsers drop it otherwise)')
  }
  if (SECURE_PREFIX.test(cookieName) && secure !== true) fail('a `__Secure-` cookie name needs `remember.secure: true` (browsers drop it otherwise)')
  return Object.freeze({
    cookieName,
    duration: rememberDuration(remember.duration),
    domain,
    path,
    secure,
    httpOnly: bool(remember.httpOnly, 'remember.httpOnly', true),
    sameSite,
    refreshEachRequest: bool(remember.refreshEachRequest, 'remember.refreshEachRequest', false),
    rotationGrace: nonNegativeSeconds(remember.rotationGrace, 'remember.rotationGrace', DEFAULT_ROTATION_GRACE)
  })
}

function resolveExemptMethods (value: unknown): readonly string[] {
  if (value === undefined) return DEFAULT_EXEMPT_METHODS
  if (!Array.isArray(value) || !value.every((method) => typeof method === 'string')) {
    fail('`exemptMethods` must be an array of HTTP method names')
  }
  return Object.freeze((value as string[]).map((method) => method.toUpperCase()))
}

function resolveDropOnLogin (value: unknown): readonly string[] {
  if (value === undefined) return DEFAULT_DROP_ON_LOGIN
  if (!Array.isArray(value) || !value.every((key) => typeof key === 'string' && key !== '')) {
    fail('`dropOnLogin` must be an array of session key names (non-empty strings)')
  }
  const keys = value as string[]
  if (keys.some((key) => SESSION_KEYS.includes(key))) {
    fail(`\`dropOnLogin\` cannot name fastify-login's own session keys (${SESSION_KEYS.join(', ')}): a login writes them itself`)
  }
  // @fastify/session keeps the session cookie's options under `cookie`.
  if (keys.includes('cookie')) fail('`dropOnLogin` cannot name `cookie`: @fastify/session keeps its cookie options there')
  return Object.freeze([...new Set(keys)])
}

/** Validates the options once and returns the frozen configuration. Never mutates `options`. */
export function resolveOptions (options: FastifyLoginOptions): LoginConfig {
  if (options === null || typeof options !== 'object') fail('options must be an object')
  const userLoader = optionalFunction(options.userLoader, 'userLoader')
  const requestLoader = optionalFunction(options.requestLoader, 'requestLoader')
  if (userLoader === undefined && requestLoader === undefined) throw new FST_LOGIN_MISSING_LOADER()
  const exemptMethods = resolveExemptMethods(options.exemptMethods)
  const dropOnLogin = resolveDropOnLogin(options.dropOnLogin)
  const loginMessageCategory = optionalString(options.loginMessageCategory, 'loginMessageCategory') ?? DEFAULT_MESSAGE_CATEGORY
  return Object.freeze({
    secrets: resolveSecrets(options.secret),
    userLoader,
    requestLoader,
    anonymousUser: optionalFunction(options.anonymousUser, 'anonymousUser') ?? defaultAnonymousUser,
    getUserId: optionalFunction(options.getUserId, 'getUserId') ?? defaultGetUserId,
    loginView: view(options.loginView, 'loginView'),
    loginMessage: message(options.loginMessage, 'loginMessage', DEFAULT_LOGIN_MESSAGE),
    loginMessageCategory,
    refreshView: view(options.refreshView, 'refreshView'),
    needsRefreshMessage: message(options.needsRefreshMessage, 'needsRefreshMessage', DEFAULT_NEEDS_REFRESH_MESSAGE),
    needsRefreshMessageCategory: optionalString(options.needsRefreshMessageCategory, 'needsRefreshMessageCategory') ?? DEFAULT_MESSAGE_CATEGORY,
    localize: optionalFunction(options.localize, 'localize'),
    unauthorizedHandler: optionalFunction(options.unauthorizedHandler, 'unauthorizedHandler'),
    needsRefreshHandler: optionalFunction(options.needsRefreshHandler, 'needsRefreshHandler'),
    sessionProtection: resolveProtection(options.sessionProtection),
    sessionIdentifier: optionalFunction(options.sessionIdentifier, 'sessionIdentifier') ?? defaultSessionIdentifier,
    useSessionForNext: bool(options.useSessionForNext, 'useSessionForNext', false),
    nextField: optionalString(options.nextField, 'nextField') ?? DEFAULT_NEXT_FIELD,
    exemptMethods,
    exemptMethodSet: new Set(exemptMethods),
    forceHostForRedirects: optionalString(options.forceHostForRedirects, 'forceHostForRedirects'),
    remember: resolveRemember(options.remember),
    sessionVersion: optionalFunction(options.sessionVersion, 'sessionVersion'),
    freshMaxAge: positiveSeconds(options.freshMaxAge, 'freshMaxAge'),
    regenerateSession: bool(options.regenerateSession, 'regenerateSession', true),
    loginRequiredByDefault: bool(options.loginRequiredByDefault, 'loginRequiredByDefault', false),
    dropOnLogin,
    keysReplacedByLogin: Object.freeze([...LOGIN_KEYS, ...dropOnLogin]),
    idleTimeout: positiveSeconds(options.idleTimeout, 'idleTimeout'),
    absoluteTimeout: positiveSeconds(options.absoluteTimeout, 'absoluteTimeout'),
    expiredMessage: message(options.expiredMessage, 'expiredMessage', DEFAULT_EXPIRED_MESSAGE),
    expiredMessageCategory: optionalString(options.expiredMessageCategory, 'expiredMessageCategory') ?? loginMessageCategory,
    loginDisabled: bool(options.loginDisabled, 'loginDisabled', false),
    loginStore: resolveLoginStore(options.loginStore)
  })
}

/** The options as `app.loginManager.options` shows them: everything but the secrets and callbacks. */
export function publicOptions (config: LoginConfig): ResolvedLoginOptions {
  return Object.freeze({
    loginView: config.loginView,
    loginMessage: config.loginMessage,
    loginMessageCategory: config.loginMessageCategory,
    refreshView: config.refreshView,
    needsRefreshMessage: config.needsRefreshMessage,
    needsRefreshMessageCategory: config.needsRefreshMessageCategory,
    sessionProtection: config.sessionProtection,
    useSessionForNext: config.useSessionForNext,
    nextField: config.nextField,
    exemptMethods: config.exemptMethods,
    forceHostForRedirects: config.forceHostForRedirects,
    remember: config.remember,
    freshMaxAge: config.freshMaxAge,
    regenerateSession: config.regenerateSession,
    loginRequiredByDefault: config.loginRequiredByDefault,
    dropOnLogin: config.dropOnLogin,
    idleTimeout: config.idleTimeout,
    absoluteTimeout: config.absoluteTimeout,
    expiredMessage: config.expiredMessage,
    expiredMessageCategory: config.expiredMessageCategory,
    loginDisabled: config.loginDisabled
  })
}
