// Per-request login state, kept on the request behind a Symbol: nothing about
// a request lives outside it.
import type { FastifyRequest } from 'fastify'
import type { AnonymousUser, LoginUser, SessionExpiryReason } from '../types/index.js'
import type { RememberToken } from './remember.js'

/** What the response must do with the remember cookie. */
export type CookieAction =
  | { readonly kind: 'set', readonly value: string, readonly maxAge: number }
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
  cookieAction: CookieAction | null
  /** loginUser, logoutUser and confirmLogin calls still running: a reply sent meanwhile is logged. */
  pendingCalls: number
  /** The last of those calls to start, for the log. */
  pendingCall: string
  /** Why the session's login expired on this request (idleTimeout, absoluteTimeout), if it did. */
  expired: SessionExpiryReason | null
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
