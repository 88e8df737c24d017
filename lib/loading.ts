// Loading the user of a request, in Flask-Login's order: session protection,
// the session's user id, the remember cookie, the request loader, anonymous.
import type { FastifyRequest } from 'fastify'
import type { AnonymousUser, LoginUser } from '../types/index.js'
import type { LoginEventHub } from './events.js'
import type { SessionLifetime } from './lifetime.js'
import type { LoginConfig } from './options.js'
import type { LoginRecords } from './login-records.js'
import { isStoreCookie, severalCookies, type RememberCodec, type RememberToken, type StoreToken } from './remember.js'
import {
  KEY_FRESH, KEY_FRESH_AT, KEY_IDENTIFIER, KEY_USER_ID, KEY_VERSION, LOGIN_KEYS,
  isPersistent, removeKeys, rotateSession, sessionOf, type SessionLike
} from './session.js'
import { attachState, stateOf, type LoginState } from './state.js'
import { countsAsAuthenticated, versionOf } from './users.js'
import { FST_LOGIN_LOADER_FAILED } from './errors.js'

/** What the loading, login and response modules share. */
export interface LoginContext {
  readonly config: LoginConfig
  readonly events: LoginEventHub
  readonly codec: RememberCodec
  /** Idle and absolute timeouts; `null` when neither is set. */
  readonly lifetime: SessionLifetime | null
  /** The login store's records, or `null` without a `loginStore`. */
  readonly records: LoginRecords | null
}

interface WithCookies {
  cookies?: Record<string, string | undefined>
}

/** The request's login state, created (anonymous) when the hook has not run. */
export function ensureState (context: LoginContext, request: FastifyRequest): LoginState {
  const existing = stateOf(request)
  if (existing !== null) return existing
  const cookie = (request as WithCookies).cookies?.[context.config.remember.cookieName]
  // Only a request that has the cookie pays for looking for a second one.
  const several = cookie !== undefined && severalCookies(request.headers.cookie, context.config.remember.cookieName)
  const state: LoginState = {
    user: null,
    authenticated: false,
    source: null,
    cookie: several ? undefined : cookie,
    severalCookies: several,
    token: undefined,
    storeToken: undefined,
    cookieAction: null,
    pendingCalls: 0,
    pendingCall: '',
    expired: null,
    loginId: null,
    record: null
  }
  attachState(request, state)
  return state
}

/** The verified remember token of the request (verified at most once; `null` without a cookie). */
export function tokenOf (context: LoginContext, state: LoginState): RememberToken | null {
  if (state.token === undefined) state.token = context.codec.verify(state.cookie)
  return state.token
}

/** The verified store cookie of the request (verified at most once); only with a login store. */
export function storeTokenOf (context: LoginContext, state: LoginState): StoreToken | null {
  if (state.storeToken === undefined) {
    state.storeToken = state.cookie === undefined || context.records === null ? null : context.codec.verifyStore(state.cookie)
  }
  return state.storeToken
}

/**
 * Whether the request's remember cookie, sent as `cookie`, verifies, whichever
 * kind it is (no store read). None (or several, which count as none) does not.
 */
export function rememberCookieVerifies (context: LoginContext, state: LoginState, cookie: string | undefined): boolean {
  if (cookie === undefined) return false
  return isStoreCookie(cookie) ? storeTokenOf(context, state) !== null : tokenOf(context, state) !== null
}

/** `request.user`: the loaded user, or the anonymous user (made once, when first read). */
export function currentUser (context: LoginContext, request: FastifyRequest): LoginUser | AnonymousUser {
  const state = ensureState(context, request)
  state.user ??= context.config.anonymousUser(request)
  return state.user
}

export function becomeAnonymous (state: LoginState): void {
  state.user = null
  state.authenticated = false
  state.source = null
}

export function becomeUser (state: LoginState, user: LoginUser): void {
  state.user = user
  state.authenticated = countsAsAuthenticated(user)
}

/** Forget a login that no longer holds: the session keys and the remember cookie. */
export function dropLogin (context: LoginContext, request: FastifyRequest, state: LoginState, session: SessionLike | null): void {
  if (session !== null) removeKeys(session, LOGIN_KEYS)
  if (state.cookie !== undefined) state.cookieAction = { kind: 'clear' }
  becomeAnonymous(state)
}

/** Writes a login into a session that holds none (the keys `loginUser` and a cookie restore share): only the keys that have a value. */
export function writeLogin (context: LoginContext, request: FastifyRequest, session: SessionLike, userId: string, fresh: boolean, version: string | undefined): void {
  const { config, lifetime } = context
  const now = Date.now()
  session.set(KEY_USER_ID, userId)
  session.set(KEY_FRESH, fresh)
  if (fresh && config.freshMaxAge !== undefined) session.set(KEY_FRESH_AT, now)
  session.set(KEY_IDENTIFIER, config.sessionIdentifier(request))
  if (version !== undefined) session.set(KEY_VERSION, version)
  if (lifetime !== null) lifetime.stamp(session, now)
}

/**
 * Session protection (`_session_protection_failed`). Returns true when the
 * login was removed (strong mode): the request is then anonymous.
 */
export function protectionRemovedLogin (context: LoginContext, request: FastifyRequest, state: LoginState, session: SessionLike): boolean {
  const { config, events } = context
  if (config.sessionProtection === false) return false
  if (config.sessionIdentifier(request) === session.get(KEY_IDENTIFIER)) return false
  if (config.sessionProtection === 'basic' || isPersistent(session)) {
    if (session.get(KEY_FRESH) !== false) session.set(KEY_FRESH, false)
    if (events.wanted('sessionProtected')) events.emit('sessionProtected', { request })
    return false
  }
  dropLogin(context, request, state, session)
  if (events.wanted('sessionProtected')) events.emit('sessionProtected', { request })
  return true
}

function isThenable<T> (value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function'
}

/** Consults the userLoader: its answer, or a promise of it when the loader is asynchronous. */
export function callUserLoader (context: LoginContext, request: FastifyRequest, userId: string): LoginUser | null | undefined | PromiseLike<LoginUser | null | undefined> {
  const { config, events } = context
  if (events.wanted('userAccessed')) events.emit('userAccessed', { request })
  return config.userLoader!(userId, request)
}

/** Called once the request's user is known, with the error when loading failed. */
export type LoadDone = (error?: Error) => void

/**
 * Hands the loader's answer to `accept`. A synchronous answer is accepted at
 * once (returns false: the caller goes on). An asynchronous one is accepted
 * in its own `then`, which then calls `done` (returns true): the request waits
 * one microtask, not a chain of them.
 */
function afterLoad<T> (loaded: T | PromiseLike<T>, accept: (value: T) => void, done: LoadDone): boolean {
  if (!isThenable(loaded)) {
    accept(loaded)
    return false
  }
  Promise.resolve(loaded).then((value) => {
    try {
      accept(value)
    } catch (error) {
      done(loaderFailure(error))
      return
    }
    done()
  }, (error: unknown) => { done(loaderFailure(error)) })
  return true
}

// A loader that throws or rejects with nothing still fails the request: Fastify
// would read `next(undefined)` as success and let it through as anonymous.
export function loaderFailure (error: unknown): Error {
  return error instanceof Error ? error : new FST_LOGIN_LOADER_FAILED(describeRejection(error))
}

function describeRejection (reason: unknown): string {
  return reason === undefined || reason === null ? String(reason) : `a value of type ${typeof reason}`
}

// The hot path of every logged-in request.
export function fromSession (context: LoginContext, request: FastifyRequest, state: LoginState, session: SessionLike, userId: string, done: LoadDone): boolean {
  const loaded = callUserLoader(context, request, userId)
  return afterLoad(loaded, (user) => { acceptSessionUser(context, request, state, session, user) }, done)
}

function acceptSessionUser (context: LoginContext, request: FastifyRequest, state: LoginState, session: SessionLike, user: LoginUser | null | undefined): void {
  const { config } = context
  if (user === null || user === undefined) return dropLogin(context, request, state, session)
  if (config.sessionVersion !== undefined && versionOf(config, user) !== session.get(KEY_VERSION)) {
    return dropLogin(context, request, state, session)
  }
  becomeUser(state, user)
  state.source = 'session'
}

export async function fromCookie (context: LoginContext, request: FastifyRequest, state: LoginState, session: SessionLike | null, token: RememberToken): Promise<void> {
  const { config, codec, events } = context
  const user = await callUserLoader(context, request, token.userId)
  if (user === null || user === undefined) return dropLogin(context, request, state, null)
  const version = versionOf(config, user)
  if (!codec.versionMatches(token, version)) return dropLogin(context, request, state, null)
  if (session !== null) {
    // The session becomes a login: rotate its id as a login would.
    const target = config.regenerateSession ? await rotateSession(request, session, config.keysReplacedByLogin) : session
    if (!config.regenerateSession) removeKeys(target, config.keysReplacedByLogin)
    writeLogin(context, request, target, token.userId, false, version)
  }
  if (token.stale) {
    const value = codec.resign(token, codec.versionTag(token.userId, version))
    state.cookieAction = { kind: 'set', value, maxAge: token.expires - Math.floor(Date.now() / 1000), expires: token.expires }
  }
  becomeUser(state, user)
  state.source = 'remember'
  if (events.wanted('userLoadedFromCookie')) events.emit('userLoadedFromCookie', { request, user })
}

export function fromRequest (context: LoginContext, request: FastifyRequest, state: LoginState, done: LoadDone): boolean {
  const { config, events } = context
  if (events.wanted('userAccessed')) events.emit('userAccessed', { request })
  const loaded = config.requestLoader!(request)
  return afterLoad(loaded, (user) => { acceptRequestUser(context, request, state, user) }, done)
}

function acceptRequestUser (context: LoginContext, request: FastifyRequest, state: LoginState, user: LoginUser | null | undefined): void {
  if (user === null || user === undefined) return
  becomeUser(state, user)
  state.source = 'request'
  if (context.events.wanted('userLoadedFromRequest')) context.events.emit('userLoadedFromRequest', { request, user })
}

/**
 * False when there is nothing to load: no credentials (nothing to do, not
 * even the per-request state: it is made when first needed), or a route
 * that never loads a user.
 */
export function hasCredentials (context: LoginContext, request: FastifyRequest, sessionLogin: boolean): boolean {
  const { config } = context
  if (!sessionLogin && config.requestLoader === undefined && (request as WithCookies).cookies?.[config.remember.cookieName] === undefined) {
    return false
  }
  return request.routeOptions.config?.login !== false
}

/**
 * Loads the user of `request`. Returns false when that finished synchronously
 * (always so without credentials: no loader, no hashing, no session write);
 * the caller then goes on. Returns true when a loader is being awaited:
 * `done` is called once it has answered. An error thrown before that is
 * thrown from here, and `done` is not called.
 */
export function loadUser (context: LoginContext, request: FastifyRequest, done: LoadDone): boolean {
  const { config } = context
  const session = sessionOf(request)
  const sessionLogin = session !== null && session.get(KEY_USER_ID) !== undefined
  if (!hasCredentials(context, request, sessionLogin)) return false
  const state = ensureState(context, request)
  // An expired login goes first, before protection and any loader; the request then goes on as one without it.
  if (sessionLogin && (context.lifetime === null || !context.lifetime.endIfExpired(request, state, session))) {
    // Protection guards the session's login whoever loads it (a requestLoader may read the id too).
    if (protectionRemovedLogin(context, request, state, session)) return false
    // Without a userLoader the session's id is for the requestLoader, as in Flask-Login.
    if (config.userLoader !== undefined) {
      const userId = session.get(KEY_USER_ID)
      if (typeof userId === 'string') return fromSession(context, request, state, session, userId, done)
      dropLogin(context, request, state, session)
      return false
    }
  }
  if (state.cookie !== undefined && config.userLoader !== undefined) {
    const token = tokenOf(context, state)
    if (token !== null) return afterLoad(fromCookie(context, request, state, session, token), () => {}, done)
    // A bad cookie is treated as absent, and cleared.
    state.cookieAction = { kind: 'clear' }
  }
  if (config.requestLoader !== undefined) return fromRequest(context, request, state, done)
  return false
}
