// The request decorators that change the login: loginUser, logoutUser,
// confirmLogin, and the read-only loginFresh, loginRemembered and safeNextUrl.
import type { FastifyRequest } from 'fastify'
import type { LoginInfo, LoginRevokedReason, LoginUser, LoginUserOptions } from '../types/index.js'
import { FST_LOGIN_INVALID_DURATION, FST_LOGIN_INVALID_USER_ID, FST_LOGIN_NO_SESSION, FST_LOGIN_NO_STORE } from './errors.js'
import { isFresh } from './freshness.js'
import type { LoginRecords } from './login-records.js'
import { becomeAnonymous, currentUser, ensureState, rememberCookieVerifies, storeTokenOf, writeLogin, type LoginContext } from './loading.js'
import { isRememberDuration } from './options.js'
import { safeRedirectTarget } from './redirects.js'
import {
  KEY_FRESH, KEY_FRESH_AT, KEY_IDENTIFIER, KEY_LOGIN_ID, KEY_REMEMBER_SECONDS, KEY_USER_ID, LOGIN_KEYS,
  removeKeys, rotateSession, sessionOf, type SessionLike
} from './session.js'
import { setCookieUntil, stateOf, type LoginState } from './state.js'
import { countsAsAuthenticated, userIdOf, versionOf } from './users.js'

function describeDuration (value: unknown): string {
  return typeof value === 'number' ? String(value) : `a value of type ${typeof value}`
}

function requireSession (request: FastifyRequest): SessionLike {
  const session = sessionOf(request)
  if (session === null) throw new FST_LOGIN_NO_SESSION()
  return session
}

export interface Actions {
  loginUser (this: FastifyRequest, user: LoginUser, options?: LoginUserOptions): Promise<boolean>
  logoutUser (this: FastifyRequest): Promise<boolean>
  confirmLogin (this: FastifyRequest): Promise<void>
  isAuthenticated (this: FastifyRequest): boolean
  loginFresh (this: FastifyRequest): boolean
  loginRemembered (this: FastifyRequest): boolean
  safeNextUrl (this: FastifyRequest, fallback?: string): string
  loginId (this: FastifyRequest): string | null
  listLogins (this: FastifyRequest): Promise<LoginInfo[]>
  revokeLogin (this: FastifyRequest, id: string): Promise<boolean>
  revokeOtherLogins (this: FastifyRequest): Promise<number>
  /** `loginManager.listLogins`. */
  listUserLogins (userId: string | number): Promise<LoginInfo[]>
  /** `loginManager.revokeLogins`. */
  revokeUserLogins (userId: string | number): Promise<number>
}

/** A user id an administrator gives `loginManager`: as `loginUser` would store it. */
function storedUserId (userId: unknown): string {
  const id = typeof userId === 'number' && Number.isFinite(userId) ? String(userId) : userId
  if (typeof id !== 'string' || id === '' || !id.isWellFormed()) {
    throw new FST_LOGIN_INVALID_USER_ID('the user id must be a non-empty, well-formed string or a finite number')
  }
  return id
}

export function createActions (context: LoginContext): Actions {
  const { config, codec, events, records } = context

  function requireRecords (): LoginRecords {
    if (records === null) throw new FST_LOGIN_NO_STORE()
    return records
  }

  async function loginUser (this: FastifyRequest, user: LoginUser, options: LoginUserOptions = {}): Promise<boolean> {
    const { remember = false, force = false, fresh = true } = options
    const duration = options.duration ?? config.remember.duration
    if (!isRememberDuration(duration)) throw new FST_LOGIN_INVALID_DURATION(describeDuration(options.duration))
    if (!force && (user as { isActive?: unknown } | null)?.isActive === false) return false
    const userId = userIdOf(config, user)
    const version = versionOf(config, user)
    const state = ensureState(context, this)
    let session = requireSession(this)
    // With a store, the record comes first: a store that fails changes nothing.
    const replaced = session.get(KEY_LOGIN_ID)
    const created = records === null
      ? null
      : await records.create(this, userId, remember === true ? { seconds: duration } : null, codec.versionTag(userId, version))
    if (records !== null && typeof replaced === 'string') await records.end(this, replaced, 'logout')
    if (config.regenerateSession) session = await rotateSession(this, session, config.keysReplacedByLogin)
    else removeKeys(session, config.keysReplacedByLogin)
    writeLogin(context, this, session, userId, fresh !== false, version)
    if (created !== null) {
      session.set(KEY_LOGIN_ID, created.record.id)
      state.loginId = created.record.id
      state.record = created.record
    }
    if (remember === true) {
      // As in Flask-Login, only a duration chosen for this login is kept.
      if (options.duration !== undefined) session.set(KEY_REMEMBER_SECONDS, duration)
      if (created !== null && created.cookie !== null) {
        state.cookieAction = setCookieUntil(created.cookie, created.record.expiresAt)
      } else {
        const now = Date.now()
        const value = codec.sign(userId, duration, codec.versionTag(userId, version), now)
        state.cookieAction = { kind: 'set', value, maxAge: Math.ceil(duration), expires: Math.floor(now / 1000) + Math.ceil(duration) }
      }
    } else if (state.cookie !== undefined) {
      // A remember cookie of an earlier login must not outlive this one.
      state.cookieAction = { kind: 'clear' }
    } else {
      state.cookieAction = null
    }
    state.user = user
    state.authenticated = countsAsAuthenticated(user)
    state.source = 'session'
    if (events.wanted('userLoggedIn')) events.emit('userLoggedIn', { request: this, user })
    return true
  }

  async function logoutUser (this: FastifyRequest): Promise<boolean> {
    const state = ensureState(context, this)
    if (records !== null) await endRecords(this, state, records, 'logout')
    return logOut(this, state)
  }

  // With a store, logout is real: the login's record goes first (a store that
  // fails changes nothing), so copies of the cookies are worth nothing. A
  // remember cookie of another login of this user goes too.
  async function endRecords (request: FastifyRequest, state: LoginState, records: LoginRecords, reason: LoginRevokedReason): Promise<void> {
    const session = sessionOf(request)
    // The login this request loaded, or (on a route that loads none) the session's.
    const loginId = state.loginId ?? session?.get(KEY_LOGIN_ID)
    if (typeof loginId === 'string') await records.end(request, loginId, reason)
    const token = storeTokenOf(context, state)
    const userId = session?.get(KEY_USER_ID)
    if (token === null || token.loginId === loginId || typeof userId !== 'string') return
    if (await records.own(token.loginId, userId) !== null) await records.end(request, token.loginId, reason)
  }

  async function logOut (request: FastifyRequest, state: LoginState): Promise<boolean> {
    const user = currentUser(context, request) as LoginUser
    const session = sessionOf(request)
    if (session !== null && session.get(KEY_USER_ID) !== undefined) {
      const target = config.regenerateSession ? await rotateSession(request, session, LOGIN_KEYS, true) : session
      removeKeys(target, LOGIN_KEYS)
    } else if (session !== null) {
      removeKeys(session, LOGIN_KEYS)
    }
    state.cookieAction = state.cookie === undefined ? null : { kind: 'clear' }
    state.loginId = null
    state.record = null
    becomeAnonymous(state)
    if (events.wanted('userLoggedOut')) events.emit('userLoggedOut', { request, user })
    return true
  }

  function loginId (this: FastifyRequest): string | null {
    return stateOf(this)?.loginId ?? null
  }

  /** The request's state and its user's id, when a user is logged in (a requestLoader's user too). */
  function loggedIn (request: FastifyRequest): { state: LoginState, userId: string } | null {
    const state = stateOf(request)
    if (state?.authenticated !== true) return null
    return { state, userId: userIdOf(config, state.user as LoginUser) }
  }

  async function listLogins (this: FastifyRequest): Promise<LoginInfo[]> {
    const store = requireRecords()
    const current = loggedIn(this)
    return current === null ? [] : store.list(current.userId, current.state.loginId)
  }

  async function revokeLogin (this: FastifyRequest, id: string): Promise<boolean> {
    const store = requireRecords()
    const current = loggedIn(this)
    if (current === null || typeof id !== 'string') return false
    const { state, userId } = current
    if (id === state.loginId) {
      // This request's own login: logged out here as logoutUser does.
      await endRecords(this, state, store, 'revoked')
      await logOut(this, state)
      return true
    }
    if (await store.own(id, userId) === null) return false
    return await store.end(this, id, 'revoked') !== null
  }

  async function revokeOtherLogins (this: FastifyRequest): Promise<number> {
    const store = requireRecords()
    const current = loggedIn(this)
    return current === null ? 0 : store.revokeAll(this, current.userId, current.state.loginId)
  }

  async function listUserLogins (userId: string | number): Promise<LoginInfo[]> {
    return requireRecords().list(storedUserId(userId), null)
  }

  async function revokeUserLogins (userId: string | number): Promise<number> {
    return requireRecords().revokeAll(undefined, storedUserId(userId), null)
  }

  async function confirmLogin (this: FastifyRequest): Promise<void> {
    let session = requireSession(this)
    // A refreshed login is a login: a new session id, and nothing planted before it.
    if (config.regenerateSession) session = await rotateSession(this, session, config.dropOnLogin)
    else removeKeys(session, config.dropOnLogin)
    session.set(KEY_FRESH, true)
    if (config.freshMaxAge !== undefined) session.set(KEY_FRESH_AT, Date.now())
    session.set(KEY_IDENTIFIER, config.sessionIdentifier(this))
    if (events.wanted('userLoginConfirmed')) events.emit('userLoginConfirmed', { request: this, user: currentUser(context, this) as LoginUser })
  }

  function isAuthenticated (this: FastifyRequest): boolean {
    return stateOf(this)?.authenticated === true
  }

  function loginFresh (this: FastifyRequest): boolean {
    return isFresh(config, this)
  }

  function loginRemembered (this: FastifyRequest): boolean {
    const state = ensureState(context, this)
    if (state.cookie === undefined || state.cookieAction?.kind === 'clear') return false
    return rememberCookieVerifies(context, state, state.cookie)
  }

  function safeNextUrl (this: FastifyRequest, fallback = '/'): string {
    let candidate: unknown = (this.query as Record<string, unknown> | undefined)?.[config.nextField]
    if (candidate === undefined) {
      const body: unknown = this.body
      if (body !== null && typeof body === 'object') candidate = (body as Record<string, unknown>)[config.nextField]
    }
    if (config.useSessionForNext) {
      const session = sessionOf(this)
      const stored = session?.get(config.nextField)
      if (stored !== undefined) {
        session!.set(config.nextField, undefined)
        candidate ??= stored
      }
    }
    if (Array.isArray(candidate)) candidate = candidate[0]
    return safeRedirectTarget(candidate, this.host, this.protocol === 'https') ?? fallback
  }

  return {
    loginUser,
    logoutUser,
    confirmLogin,
    isAuthenticated,
    loginFresh,
    loginRemembered,
    safeNextUrl,
    loginId,
    listLogins,
    revokeLogin,
    revokeOtherLogins,
    listUserLogins,
    revokeUserLogins
  }
}
