// The public type surface of fastify-login. Applications name their user type
// once by merging into `FastifyLoginTypes`; every declaration below follows it.
import type { FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from 'fastify'

/**
 * Merge into this interface to type `request.user` everywhere:
 *
 * ```ts
 * declare module 'fastify-login' {
 *   interface FastifyLoginTypes { user: User }
 * }
 * ```
 *
 * `anonymousUser` may be merged too when `anonymousUser` returns your own class.
 */
export interface FastifyLoginTypes {}

/** The shape fastify-login reads from any user object. Every member is optional. */
export interface UserLike {
  /** Used by the default `getUserId` when there is no `getId()`. */
  id?: unknown
  /** Preferred over `id` by the default `getUserId`. */
  getId?: () => unknown
  /** `false` makes `loginUser` refuse the user unless `force` is set. */
  isActive?: boolean
  /** `false` makes `request.isAuthenticated()` false for a loaded user. */
  isAuthenticated?: boolean
}

/**
 * The fallback user type when the application has not merged its own: any
 * object (class instances included) except a promise: a forgotten `await`
 * is a type error. Merge `FastifyLoginTypes` to read your
 * user's fields without casts.
 */
export type DefaultUser = { readonly then?: never, readonly [key: string]: unknown } | (object & { readonly then?: never })

/** The application's user type (from `FastifyLoginTypes['user']`, else `DefaultUser`). */
export type LoginUser = FastifyLoginTypes extends { user: infer U } ? U : DefaultUser

/** The type of the anonymous user (from `FastifyLoginTypes['anonymousUser']`, else the mixin). */
export type AnonymousUser = FastifyLoginTypes extends { anonymousUser: infer A } ? A : AnonymousUserShape

/** What `AnonymousUserMixin` looks like. */
export interface AnonymousUserShape {
  readonly isAuthenticated: boolean
  readonly isActive: boolean
  readonly isAnonymous: boolean
  getId (): string | number | null
}

/** A value that is returned directly or through a promise. */
export type Awaitable<T> = T | Promise<T>

/** Loads a user from the id stored in the session or remember cookie. */
export type UserLoader = (id: string, request: FastifyRequest) => Awaitable<LoginUser | null | undefined>

/** Loads a user from the request itself (an API key, a header). Runs before the body is parsed. */
export type RequestLoader = (request: FastifyRequest) => Awaitable<LoginUser | null | undefined>

/**
 * A path or URL, or a function of the request that returns one. A function
 * that returns no path or URL (`undefined`, `null`, `''`, or a string that does
 * not parse) means there is no view for that request: the answer is the 401.
 */
export type LoginView = string | ((request: FastifyRequest) => string | null | undefined)

/** Replaces a default unauthorized or needs-refresh response; it sends the reply itself. */
export type ResponseHandler = (request: FastifyRequest, reply: FastifyReply) => unknown

/** `'basic'` marks a session from another client not fresh; `'strong'` logs it out. */
export type SessionProtection = 'basic' | 'strong' | false

/** Options of the remember-me cookie. */
export interface RememberCookieOptions {
  /**
   * Cookie name. Default `'remember_token'`. On HTTPS sites prefer
   * `'__Host-remember_token'` (needs `secure: true`, `path: '/'` and no `domain`):
   * no subdomain or other path can then plant a cookie of that name.
   * A `__Secure-` name needs `secure: true`.
   */
  cookieName?: string
  /** Lifetime in seconds. Default 31536000 (365 days). */
  duration?: number
  /** Cookie Domain. Default none (host-only). */
  domain?: string
  /** Cookie Path. Default `'/'`. */
  path?: string
  /** `'auto'` sets Secure when the request is HTTPS. Default `'auto'`. */
  secure?: boolean | 'auto'
  /** Default `true`. */
  httpOnly?: boolean
  /** Default `'lax'`. */
  sameSite?: 'lax' | 'strict' | 'none' | false
  /** Re-issue the cookie on every request that carries it. Default `false`. */
  refreshEachRequest?: boolean
  /**
   * With a `loginStore`: seconds a rotated-out remember cookie is still
   * accepted (parallel requests, restored tabs, lost responses). Default 60.
   */
  rotationGrace?: number
}

/**
 * A login as a `LoginStore` keeps it: one per device a user logged in on.
 * Times are milliseconds since the epoch.
 */
export interface LoginRecord {
  /** Random, at least 128 bits, in base64url characters (`[A-Za-z0-9_-]`, 22 to 128 of them). */
  readonly id: string
  readonly userId: string
  readonly createdAt: number
  /** The last request of this login, written back at most once a minute. */
  readonly lastSeenAt: number
  /** After this the login is over; the store may drop the record. */
  readonly expiresAt: number
  /** The client address of the last request written back. */
  readonly ip: string
  /** The User-Agent of the last request written back (at most 512 characters). */
  readonly userAgent: string
  /** Made with "remember me": a remember cookie names this record. */
  readonly remembered: boolean
  /** A remembered login's cookie lifetime in seconds (0 when not remembered). */
  readonly rememberSeconds: number
  /** How many times the remember validator was rotated: the compare-and-set field. */
  readonly rotation: number
  /** When the validator was last rotated (0 if never). */
  readonly rotatedAt: number
  /** SHA-256 (base64url) of the current remember validator, `''` when not remembered. Never the validator. */
  readonly validatorHash: string
  /** A keyed tag of the user's `sessionVersion` at login, `''` without it. */
  readonly versionTag: string
}

/**
 * What `LoginStore.update` compares before it writes: the fields given must
 * still have these values. fastify-login gives `rotation` when it rotates a
 * remember validator, and `lastSeenAt` when it writes a login's activity.
 */
export type LoginRecordExpected = Partial<Pick<LoginRecord, 'rotation' | 'lastSeenAt'>>

/** What `LoginStore.update` may change. */
export type LoginRecordChanges = Partial<Pick<LoginRecord,
  'lastSeenAt' | 'expiresAt' | 'ip' | 'userAgent' | 'rotation' | 'rotatedAt' | 'validatorHash'>>

/**
 * Where logins are kept (`loginStore`). Small enough to write over SQL; check
 * an implementation with `testLoginStore` from `fastify-login/testing`.
 * Every method but `createId` may be async; a method that throws or rejects
 * fails the request with a 503 `FST_LOGIN_STORE_FAILED`.
 */
export interface LoginStore {
  /**
   * Optional: a new login id for `userId` (at least 128 random bits, 22-128
   * characters of `[A-Za-z0-9_-]`). Without it fastify-login makes 24 random
   * characters. `RedisLoginStore` puts the user's hash tag in front.
   */
  createId? (userId: string): string
  /** Stores a new record. */
  create (record: LoginRecord): Promise<void>
  /** The record, or `null` when there is none or it has expired. */
  get (id: string): Promise<LoginRecord | null>
  /**
   * Compare-and-set: applies `changes` only when the record exists, has not
   * expired, and every field of `expected` still has the value given there;
   * resolves whether it did. Never creates a record. Of concurrent calls with
   * the same `expected` that change those fields, at most one may succeed.
   */
  update (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges): Promise<boolean>
  /** Deletes the record; resolves it as it was, or `null` when there was none. */
  delete (id: string): Promise<LoginRecord | null>
  /** The user's records that have not expired, in any order. */
  list (userId: string): Promise<LoginRecord[]>
}

/** Options of `MemoryLoginStore`. */
export interface MemoryLoginStoreOptions {
  /** Most records kept; when full, expired records are dropped (at most once a minute), then the oldest logins. Default 100000. */
  maxLogins?: number
}

/** A login as `listLogins` shows it. */
export interface LoginInfo {
  readonly id: string
  /** True for the login of the request that asked. */
  readonly current: boolean
  readonly createdAt: Date
  readonly lastSeenAt: Date
  readonly expiresAt: Date
  readonly ip: string
  readonly userAgent: string
  readonly remembered: boolean
}

/** Why a login ended: `loginRevoked`'s `reason`. */
export type LoginRevokedReason = 'logout' | 'revoked' | 'theft' | 'expired'

/** Options of `fastify-login`. A `userLoader` (or `requestLoader`) and `secret` are required. */
export interface FastifyLoginOptions {
  /** Signs the remember cookie: a string of at least 32 characters, or an array (first signs, all verify). */
  secret: string | readonly string[]
  /** Loads a user by id; returns the user or `null`/`undefined`. */
  userLoader?: UserLoader
  /** Loads a user from the request itself, e.g. an API key. */
  requestLoader?: RequestLoader
  /** Factory for the anonymous user. Default `() => new AnonymousUserMixin()`. */
  anonymousUser?: (request: FastifyRequest) => AnonymousUser
  /** Reads a user's id. Default `user.getId()` if a function, else `user.id`. */
  getUserId?: (user: LoginUser) => unknown
  /** Where to redirect unauthenticated users. None: answer 401. */
  loginView?: LoginView
  /** Flashed before the redirect to `loginView`; `false` disables. */
  loginMessage?: string | false
  /** Default `'message'`. */
  loginMessageCategory?: string
  /** Where to redirect authenticated users whose login is not fresh. None: answer 401. */
  refreshView?: LoginView
  /** Flashed before the redirect to `refreshView`; `false` disables. */
  needsRefreshMessage?: string | false
  /** Default `'message'`. */
  needsRefreshMessageCategory?: string
  /** Translates flashed messages. */
  localize?: (message: string, request: FastifyRequest) => string
  /** Replaces the default unauthorized response. */
  unauthorizedHandler?: ResponseHandler
  /** Replaces the default needs-refresh response. */
  needsRefreshHandler?: ResponseHandler
  /** Default `'basic'`. */
  sessionProtection?: SessionProtection
  /** Identifies the client for session protection. Default: SHA-512 of `request.ip|User-Agent`. */
  sessionIdentifier?: (request: FastifyRequest) => string
  /** Keep `next` in the session instead of the query string. Default `false`. */
  useSessionForNext?: boolean
  /** Query and session field of the return address. Default `'next'`. */
  nextField?: string
  /** Methods the guards never block. Default `['OPTIONS']`. */
  exemptMethods?: readonly string[]
  /** Host used in login redirects. */
  forceHostForRedirects?: string
  /** Remember-me cookie settings. */
  remember?: RememberCookieOptions
  /** A string that changes when the user's credentials change; a mismatch ends sessions and remember cookies. */
  sessionVersion?: (user: LoginUser) => string
  /** Seconds a login stays fresh. Default: no limit. */
  freshMaxAge?: number
  /** Rotate the session id on `loginUser`, a remember-cookie restore, `confirmLogin` and `logoutUser`. Default `true`. */
  regenerateSession?: boolean
  /** Require a login on every route registered after the plugin (and any already there when it loads) unless `config.login` says otherwise. Default `false`. */
  loginRequiredByDefault?: boolean
  /**
   * Session keys that `loginUser`, a remember-cookie restore and `confirmLogin`
   * remove, so that nothing planted in a session before a login survives it.
   * Default `['_csrf']` (@fastify/csrf-protection's secret); `[]` keeps everything.
   */
  dropOnLogin?: readonly string[]
  /**
   * Seconds without a request after which a session login is over (fractions
   * allowed). The activity time is written at most once a minute, or per tenth
   * of `idleTimeout` when that is shorter, so the login may end up to one such
   * interval early, never late. Default: none.
   */
  idleTimeout?: number
  /** Seconds after `loginUser` (or the remember-cookie restore that made the login) after which a session login is over. Default: none. */
  absoluteTimeout?: number
  /** Flashed instead of `loginMessage` when a guard turns away a request whose login has just expired; `false` flashes `loginMessage` as usual. Default `'Your session has expired. Please log in again.'` */
  expiredMessage?: string | false
  /** Default: `loginMessageCategory`. */
  expiredMessageCategory?: string
  /** Every guard lets every request through; users are still loaded. For tests only: a warning is logged at register. Default `false`. */
  loginDisabled?: boolean
  /**
   * Keep every login as a record here (`MemoryLoginStore`, `RedisLoginStore`
   * from `fastify-login/redis`, or your own): logins can be listed and
   * revoked, logout ends copies of the cookies, remember cookies rotate.
   */
  loginStore?: LoginStore
}

/** Options of `request.loginUser`. */
export interface LoginUserOptions {
  /** Set a remember-me cookie. Default `false`. */
  remember?: boolean
  /** Remember-cookie lifetime in seconds for this login. Default `remember.duration`. */
  duration?: number
  /** Log in even when `user.isActive === false`. Default `false`. */
  force?: boolean
  /** Mark the login fresh. Default `true`. */
  fresh?: boolean
}

/** Options of `isSafeRedirectUrl`. */
export interface SafeRedirectOptions {
  /** Refuse `http:` URLs: for a page served over HTTPS (no scheme downgrade). Default `false`. */
  requireHttps?: boolean
}

/** Route-level `config.login`. */
export type RouteLoginMode = 'required' | 'fresh' | 'optional' | false

/** Payload of events that concern a user. */
export interface UserEvent {
  request: FastifyRequest
  user: LoginUser
}

/** Payload of `loginRevoked`: no `request` when an administrator revoked it through `loginManager`. */
export interface LoginRevokedEvent {
  request?: FastifyRequest
  userId: string
  loginId: string
  reason: LoginRevokedReason
}

/** Payload of `rememberTheft`: a rotated-out remember cookie came back after its grace window. */
export interface RememberTheftEvent {
  request: FastifyRequest
  userId: string
  loginId: string
}

/** Payload of events with only a request. */
export interface RequestEvent {
  request: FastifyRequest
}

/** Why a session login ended: no request for `idleTimeout`, or older than `absoluteTimeout`. */
export type SessionExpiryReason = 'idle' | 'absolute'

/** Payload of `sessionExpired`. */
export interface SessionExpiredEvent {
  request: FastifyRequest
  /** The id the session's login was for (the loader is not called for it). */
  userId: string
  reason: SessionExpiryReason
}

/** Every event and its payload. */
export interface LoginEvents {
  userLoggedIn: UserEvent
  userLoggedOut: UserEvent
  userLoadedFromCookie: UserEvent
  userLoadedFromRequest: UserEvent
  userLoginConfirmed: UserEvent
  userUnauthorized: RequestEvent
  userNeedsRefresh: RequestEvent
  userAccessed: RequestEvent
  sessionProtected: RequestEvent
  sessionExpired: SessionExpiredEvent
  loginRevoked: LoginRevokedEvent
  rememberTheft: RememberTheftEvent
}

export type LoginEventName = keyof LoginEvents
export type LoginEventListener<E extends LoginEventName> = (payload: LoginEvents[E]) => void

/** The resolved, frozen options (without the secret). */
export interface ResolvedLoginOptions {
  readonly loginView: LoginView | undefined
  readonly loginMessage: string | false
  readonly loginMessageCategory: string
  readonly refreshView: LoginView | undefined
  readonly needsRefreshMessage: string | false
  readonly needsRefreshMessageCategory: string
  readonly sessionProtection: SessionProtection
  readonly useSessionForNext: boolean
  readonly nextField: string
  readonly exemptMethods: readonly string[]
  readonly forceHostForRedirects: string | undefined
  readonly remember: Readonly<Required<Omit<RememberCookieOptions, 'domain'>>> & { readonly domain: string | undefined }
  readonly freshMaxAge: number | undefined
  readonly regenerateSession: boolean
  readonly loginRequiredByDefault: boolean
  readonly dropOnLogin: readonly string[]
  readonly idleTimeout: number | undefined
  readonly absoluteTimeout: number | undefined
  readonly expiredMessage: string | false
  readonly expiredMessageCategory: string
  readonly loginDisabled: boolean
}

/** `app.loginManager`. */
export interface LoginManager {
  readonly options: ResolvedLoginOptions
  on<E extends LoginEventName>(event: E, listener: LoginEventListener<E>): LoginManager
  once<E extends LoginEventName>(event: E, listener: LoginEventListener<E>): LoginManager
  off<E extends LoginEventName>(event: E, listener: LoginEventListener<E>): LoginManager
  /**
   * Sends the unauthorized response; rejects with `FST_LOGIN_UNAUTHORIZED` when that is the
   * response (`FST_LOGIN_SESSION_EXPIRED` when the request's login has just expired).
   */
  unauthorized (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** Sends the needs-refresh response; rejects with `FST_LOGIN_NEEDS_REFRESH` when that is the response. */
  needsRefresh (request: FastifyRequest, reply: FastifyReply): Promise<void>
  /** The login URL with `nextUrl` in its query (`make_login_url`). */
  loginUrl (loginView: string, nextUrl?: string, nextField?: string): string
  /** The logins of `userId`, newest first. Rejects with `FST_LOGIN_NO_STORE` without a `loginStore`. */
  listLogins (userId: string | number): Promise<LoginInfo[]>
  /** Revokes every login of `userId` (a password reset, a ban); resolves how many. Rejects with `FST_LOGIN_NO_STORE` without a `loginStore`. */
  revokeLogins (userId: string | number): Promise<number>
}

/** The `config.login` modes that guard a route: its handler runs only for a logged-in user. */
export type GuardedLoginMode = 'required' | 'fresh'

/**
 * The type of `request.user` on a route whose config is `ContextConfig`: the
 * application's user type when `config.login` is `'required'` or `'fresh'`
 * (the route's guard lets only logged-in users through), else the user or the
 * anonymous user. A config the types cannot know (`any`, `never`) counts as unguarded.
 */
export type RouteUser<ContextConfig = unknown> =
  0 extends (1 & ContextConfig) ? LoginUser | AnonymousUser
    : [ContextConfig] extends [never] ? LoginUser | AnonymousUser
        : [ContextConfig] extends [{ login: GuardedLoginMode }] ? LoginUser
            : LoginUser | AnonymousUser

declare module 'fastify' {
  // A merge must repeat Fastify's type parameters; only ContextConfig is used, so `user` follows the route's config.
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  interface FastifyRequest<RouteGeneric, RawServer, RawRequest, SchemaCompiler, TypeProvider, ContextConfig, Logger, RequestType> {
    /**
     * The loaded user, or the anonymous user. On a route declared with
     * `config: { login: 'required' }` or `'fresh'`, the user type: the route's
     * guard lets only logged-in users reach its handler.
     */
    user: RouteUser<ContextConfig>
    /** True when a real user is loaded; narrows `request.user`. */
    isAuthenticated (): this is Omit<this, 'user'> & { user: LoginUser }
    /** The login was made on this session and is still fresh. */
    readonly loginFresh: boolean
    /** A valid remember cookie came with this request and is not being cleared. */
    readonly loginRemembered: boolean
    /**
     * Why the session's login expired on this request (`idleTimeout` or
     * `absoluteTimeout`), else `null`; still set when a remember cookie then
     * restored a new login.
     */
    readonly loginExpired: SessionExpiryReason | null
    /** Logs `user` in; resolves `false` for an inactive user unless `force`. */
    loginUser (user: LoginUser, options?: LoginUserOptions): Promise<boolean>
    /** Logs the current user out and clears the remember cookie. */
    logoutUser (): Promise<boolean>
    /** Marks the login fresh again; like a login, gives a stored session a new id (with `regenerateSession`) and removes the `dropOnLogin` keys. */
    confirmLogin (): Promise<void>
    /** The `next` target if it is a safe redirect for this host (never `http:` on an HTTPS request), else `fallback` (default `'/'`). */
    safeNextUrl (fallback?: string): string
    /** The id of this request's login record, or `null` (always `null` without a `loginStore`). */
    readonly loginId: string | null
    /** The current user's logins, newest first; empty when anonymous. Needs a `loginStore`. */
    listLogins (): Promise<LoginInfo[]>
    /** Revokes one of the current user's logins; `false` for an unknown id or another user's. Needs a `loginStore`. */
    revokeLogin (id: string): Promise<boolean>
    /** Revokes the current user's other logins ("log out other devices"); resolves how many. Needs a `loginStore`. */
    revokeOtherLogins (): Promise<number>
  }
  interface FastifyInstance {
    /** `preHandler` guard: unauthenticated requests get `loginManager.unauthorized`. */
    requireLogin: preHandlerAsyncHookHandler
    /** `preHandler` guard: also sends stale logins to `loginManager.needsRefresh`. */
    requireFreshLogin: preHandlerAsyncHookHandler
    loginManager: LoginManager
  }
  interface FastifyContextConfig {
    /** `'required'`, `'fresh'`, `'optional'`, or `false` to never load a user. */
    login?: RouteLoginMode
  }
}
