// One adapter over @fastify/session and @fastify/secure-session. Both expose
// `get`/`set` on `request.session`; only @fastify/session has ids to rotate.
import type { FastifyRequest } from 'fastify'

/** Session keys, under Flask-Login's names where Flask-Login has one. */
export const KEY_USER_ID = '_user_id'
export const KEY_FRESH = '_fresh'
export const KEY_IDENTIFIER = '_id'
export const KEY_REMEMBER = '_remember'
export const KEY_REMEMBER_SECONDS = '_remember_seconds'
export const KEY_NEXT = 'next'
/** Beyond Flask: the `sessionVersion` of the user at login. */
export const KEY_VERSION = '_session_version'
/** Beyond Flask: when the login was last made fresh, in milliseconds since the epoch. */
export const KEY_FRESH_AT = '_fresh_at'
/**
 * Beyond Flask, with `idleTimeout` or `absoluteTimeout`: when the login was
 * made and when its activity was last written (lib/lifetime.ts has the format).
 */
export const KEY_LIFETIME = '_lifetime'

/** Beyond Flask: with a login store, the id of the login's record. */
export const KEY_LOGIN_ID = '_login_id'

/** Every key fastify-login may write into a session. Nothing else is touched. */
export const SESSION_KEYS: readonly string[] = Object.freeze([
  KEY_USER_ID, KEY_FRESH, KEY_IDENTIFIER, KEY_REMEMBER, KEY_REMEMBER_SECONDS, KEY_NEXT, KEY_VERSION, KEY_FRESH_AT,
  KEY_LIFETIME, KEY_LOGIN_ID
])

/** The keys a login owns; `next` is not one of them (it survives login and logout). */
export const LOGIN_KEYS: readonly string[] = Object.freeze(SESSION_KEYS.filter((key) => key !== KEY_NEXT))

/** What both session plugins have in common. */
export interface SessionLike {
  get (key: string): unknown
  set (key: string, value: unknown): void
}

/** @fastify/session: a store-backed session with an id that can be rotated. */
interface StoredSession extends SessionLike {
  readonly sessionId: string
  regenerate (keepKeys?: string[]): Promise<void>
  options?: (cookieOptions: { maxAge: number }) => void
}

// Our public types must not depend on either plugin's declaration of
// `request.session`, so the session is read through this narrow view.
interface WithSession {
  session?: unknown
}

// Prototypes whose objects are known to have `get` and `set`: the session
// classes of both plugins. @fastify/secure-session hands out a Proxy whose
// every method read allocates a wrapper, so checking the methods on each
// request is not free; reading the prototype goes through no trap.
const sessionPrototypes = new WeakSet<object>()

/** The request's session, or `null` when none is usable on this request. */
export function sessionOf (request: FastifyRequest): SessionLike | null {
  const session = (request as WithSession).session
  if (session === null || typeof session !== 'object') return null
  const prototype = Object.getPrototypeOf(session) as Partial<SessionLike> | null
  if (prototype !== null && sessionPrototypes.has(prototype)) return session as SessionLike
  const candidate = session as Partial<SessionLike>
  // @fastify/session leaves a plain `{}` on routes outside its cookie path.
  if (typeof candidate.get !== 'function' || typeof candidate.set !== 'function') return null
  if (prototype !== null && typeof prototype.get === 'function' && typeof prototype.set === 'function') sessionPrototypes.add(prototype)
  return session as SessionLike
}

function isStoredSession (session: SessionLike): session is StoredSession {
  const candidate = session as Partial<StoredSession>
  return typeof candidate.sessionId === 'string' && typeof candidate.regenerate === 'function'
}

/** Deletes `keys` that are present (writing nothing when none is). */
export function removeKeys (session: SessionLike, keys: readonly string[]): void {
  for (const key of keys) {
    if (session.get(key) !== undefined) session.set(key, undefined)
  }
}

/**
 * Gives the session a new id, keeping its data except `dropKeys`, and
 * destroys the old id in the store. Returns the session to write to
 * afterwards (@fastify/session replaces `request.session`). With
 * `discardIfEmpty` (logout), a new session with nothing in it is removed from
 * the store again. A stateless
 * session has no id to rotate: only the keys are dropped.
 *
 * Not `async`: the rest runs in regenerate()'s own `then`. With the plain
 * loop below, that took 1.8 % off a sign-in's instructions (bench/RESULTS.md).
 */
export function rotateSession (request: FastifyRequest, session: SessionLike, dropKeys: readonly string[], discardIfEmpty = false): Promise<SessionLike> {
  if (!isStoredSession(session)) {
    removeKeys(session, dropKeys)
    return Promise.resolve(session)
  }
  const keep: string[] = []
  for (const key of Object.keys(session)) {
    if (key !== 'cookie' && !dropKeys.includes(key) && session.get(key) !== undefined) keep.push(key)
  }
  const maxAge = persistentMaxAge(session)
  return session.regenerate(keep).then(() => {
    // @fastify/session has put the new session on the request.
    const rotated = sessionOf(request)!
    // regenerate() starts from the plugin's cookie options: keep a lifetime the
    // application gave this session (a persistent session stays persistent).
    if (maxAge !== undefined && isStoredSession(rotated) && persistentMaxAge(rotated) !== maxAge) rotated.options?.({ maxAge })
    // regenerate() stores the new session at once; an empty one would only be
    // clutter in the store (it is saved again if anything is written to it).
    if (!discardIfEmpty || keep.length > 0 || !isStoredSession(rotated)) return rotated
    // @fastify/session's store (its regenerate() has just used its destroy()).
    const store = (request as { sessionStore?: SessionStore }).sessionStore!
    return new Promise<SessionLike>((resolve, reject) => {
      store.destroy(rotated.sessionId, (error) => { if (error) reject(error); else resolve(rotated) })
    })
  })
}

interface SessionStore {
  destroy (sessionId: string, callback: (error?: unknown) => void): void
}

/** The max age of a stored session's cookie, if it has one. */
function persistentMaxAge (session: SessionLike): number | undefined {
  if (!isStoredSession(session)) return undefined
  const cookie = (session as { cookie?: { originalMaxAge?: unknown } }).cookie
  return typeof cookie?.originalMaxAge === 'number' && cookie.originalMaxAge > 0 ? cookie.originalMaxAge : undefined
}

/** A session whose cookie outlives the browser (it has a max age): Flask's `session.permanent`. */
export function isPersistent (session: SessionLike): boolean {
  return persistentMaxAge(session) !== undefined
}
