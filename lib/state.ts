// Per-request login state, kept on the request behind a Symbol: nothing about
// a request lives outside it.
import type { FastifyRequest } from 'fastify'
import type { AnonymousUser, LoginRecord, LoginUser, SessionExpiryReason } from '../types/index.js'
import type { RememberToken, StoreToken } from './remember.js'

/** What the response must do with the remember cookie. */
export type CookieAction =
  | { readonly kind: 'set', readonly value: string, readonly maxAge: number, readonly expires: number }
  | { readonly kind: 'clear' }

export interface LoginState {
  /** The loaded user; `null` stands for the anonymous user, made on first read. */
  user: LoginUser | AnonymousUser | null
  authenticated: boolean
  /** Where the user came from; a user from a cookie makes the response vary by Cookie. */
  source: 'session' | 'remember' | 'request' | null
  /** The raw remember cookie sent with the request, if any (none when it came more than once). */
  readonly cookie: string | undefined
  /** The request carried several remember cookies (some tossed): none is used, all are cleared. */
  readonly severalCookies: boolean
  /** The verified remember token; `undefined` until verified. */
  token: RememberToken | null | undefined
  /** With a login store: the verified store cookie; `undefined` until verified. */
  storeToken: StoreToken | null | undefined
  cookieAction: CookieAction | null
  /** loginUser, logoutUser and confirmLogin calls still running: a reply sent meanwhile is logged. */
  pendingCalls: number
  /** The last of those calls to start, for the log. */
  pendingCall: string
  /** Why the session's login expired on this request (idleTimeout, absoluteTimeout), if it did. */
  expired: SessionExpiryReason | null
  /** With a login store: the id of this request's login record, once it is known to hold. */
  loginId: string | null
  /** With a login store: that record as read on this request. */
  record: LoginRecord | null
}

/** Sets the cookie `value` that is valid until `expiresAt` (milliseconds). */
export function setCookieUntil (value: string, expiresAt: number, now = Date.now()): CookieAction {
  return { kind: 'set', value, maxAge: Math.ceil((expiresAt - now) / 1000), expires: Math.ceil(expiresAt / 1000) }
}

export const kLoginState = Symbol('fastify-login.state')

interface WithState {
  [kLoginState]: LoginState | null
}

export function stateOf (request: FastifyRequest): LoginState | null {
  // `?? null`: on a route of a plugin registered before this one, the
  // request has no own copy of this value decoration: missing, not null.
  return (request as unknown as WithState)[kLoginState] ?? null
}

export function attachState (request: FastifyRequest, state: LoginState): void {
  (request as unknown as WithState)[kLoginState] = state
}
