// Session lifetime (`idleTimeout`, `absoluteTimeout`): a session login
// carries when it was made and when it was last seen active, and ends when
// either is too long ago. The activity time is written at most once per
// interval, so the timeouts never turn every request into a session write.
import type { FastifyRequest } from 'fastify'
import type { SessionExpiryReason } from '../types/index.js'
import type { LoginEventHub } from './events.js'
import type { LoginConfig } from './options.js'
import { KEY_LIFETIME, KEY_USER_ID, LOGIN_KEYS, removeKeys, type SessionLike } from './session.js'
import { stateOf, type LoginState } from './state.js'

/** Longest time between two writes of the activity time, in seconds (a tenth of `idleTimeout` when that is shorter). */
const MAX_ACTIVITY_INTERVAL = 60

// Both times live in one session key, as `<login time>.<activity time>`, each
// in milliseconds since the epoch in base 36 (`mxe3gdmf.mxe3h1q0`, 17
// characters). @fastify/session hashes the whole session twice per request and
// @fastify/secure-session decrypts it from the cookie, so every key and byte
// costs on every request; two 13-digit keys cost twice as much.
const LIFETIME_FORMAT = /^[0-9a-z]{1,11}\.[0-9a-z]{1,11}$/

function encodeTimes (loginAt: number, activeAt: number): string {
  return loginAt.toString(36) + '.' + activeAt.toString(36)
}

/** The login and activity times of a session's `_lifetime`, or `null` when it is missing or malformed. */
function decodeTimes (value: unknown): [loginAt: number, activeAt: number] | null {
  if (typeof value !== 'string' || !LIFETIME_FORMAT.test(value)) return null
  const dot = value.indexOf('.')
  return [parseInt(value.slice(0, dot), 36), parseInt(value.slice(dot + 1), 36)]
}

export class SessionLifetime {
  readonly #events: LoginEventHub
  readonly #idleMs: number | undefined
  readonly #absoluteMs: number | undefined
  readonly #intervalMs: number

  constructor (config: LoginConfig, events: LoginEventHub) {
    this.#events = events
    this.#idleMs = config.idleTimeout === undefined ? undefined : config.idleTimeout * 1000
    this.#absoluteMs = config.absoluteTimeout === undefined ? undefined : config.absoluteTimeout * 1000
    this.#intervalMs = Math.min(MAX_ACTIVITY_INTERVAL * 1000, (this.#idleMs ?? Infinity) / 10)
  }

  /** Stamps a new login (`loginUser`, a remember-cookie restore) with the times its timeouts count from. */
  stamp (session: SessionLike, now: number): void {
    session.set(KEY_LIFETIME, encodeTimes(now, now))
  }

  /**
   * Ends the session's login if it has expired: the login keys leave the
   * session (other data stays) and `sessionExpired` fires; returns true.
   * Otherwise writes the activity time when it is due and returns false.
   */
  endIfExpired (request: FastifyRequest, state: LoginState, session: SessionLike): boolean {
    const now = Date.now()
    const reason = this.#check(session, now)
    if (reason === null) return false
    const userId = session.get(KEY_USER_ID)
    removeKeys(session, LOGIN_KEYS)
    state.expired = reason
    if (this.#events.wanted('sessionExpired')) {
      this.#events.emit('sessionExpired', { request, userId: String(userId), reason })
    }
    return true
  }

  // Why the login has expired, or null once the activity time is written
  // (when due). A login without its times (made before a timeout was turned
  // on) counts as expired: an encrypted cookie session could otherwise be
  // replayed without them, and stamped anew, forever.
  #check (session: SessionLike, now: number): SessionExpiryReason | null {
    const times = decodeTimes(session.get(KEY_LIFETIME))
    const loginAt = times === null ? -Infinity : times[0]
    const activeAt = times === null ? -Infinity : times[1]
    const absoluteEnd = this.#absoluteMs === undefined ? Infinity : loginAt + this.#absoluteMs
    const idleEnd = this.#idleMs === undefined ? Infinity : activeAt + this.#idleMs
    // The reason is whichever timeout ended the login first.
    if (now > absoluteEnd || now > idleEnd) return absoluteEnd <= idleEnd ? 'absolute' : 'idle'
    // The activity time written lags the real one by less than an interval:
    // idle expiry may come that much early, never late.
    if (this.#idleMs !== undefined && now - activeAt >= this.#intervalMs) session.set(KEY_LIFETIME, encodeTimes(loginAt, now))
    return null
  }
}

/** The lifetime of session logins, or `null` when neither timeout is set (nothing is then written or checked). */
export function createLifetime (config: LoginConfig, events: LoginEventHub): SessionLifetime | null {
  if (config.idleTimeout === undefined && config.absoluteTimeout === undefined) return null
  return new SessionLifetime(config, events)
}

/** `request.loginExpired`: why the session's login expired on this request, or `null`. */
export function loginExpiredOf (request: FastifyRequest): SessionExpiryReason | null {
  return stateOf(request)?.expired ?? null
}
