// The request decorators that change the login: loginUser, logoutUser,
// confirmLogin, and the read-only loginFresh, loginRemembered and safeNextUrl.
import type { FastifyRequest } from 'fastify'
import type { LoginUser, LoginUserOptions } from '../types/index.js'
import { FST_LOGIN_INVALID_DURATION, FST_LOGIN_NO_SESSION } from './errors.js'
import { isFresh } from './freshness.js'
import { becomeAnonymous, currentUser, ensureState, tokenOf, writeLogin, type LoginContext } from './loading.js'
import { isRememberDuration } from './options.js'
import { safeRedirectTarget } from './redirects.js'
import {
  KEY_FRESH, KEY_FRESH_AT, KEY_IDENTIFIER, KEY_REMEMBER_SECONDS, KEY_USER_ID, LOGIN_KEYS,
  removeKeys, rotateSession, sessionOf, type SessionLike
} from './session.js'
import { stateOf } from './state.js'
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
}

export function createActions (context: LoginContext): Actions {
  const { config, codec, events } = context

  async function loginUser (this: FastifyRequest, user: LoginUser, options: LoginUserOptions = {}): Promise<boolean> {
    const { remember = false, force = false, fresh = true } = options
    const duration = options.duration ?? config.remember.duration
    if (!isRememberDuration(duration)) throw new FST_LOGIN_INVALID_DURATION(describeDuration(options.duration))
    if (!force && (user as { isActive?: unknown } | null)?.isActive === false) return false
    const userId = userIdOf(config, user)
    const version = versionOf(config, user)
    const state = ensureState(context, this)
    let session = requireSession(this)
    if (config.regenerateSession) session = await rotateSession(this, session, config.keysReplacedByLogin)
    else removeKeys(session, config.keysReplacedByLogin)
    writeLogin(context, this, session, userId, fresh !== false, version)
    if (remember === true) {
      // As in Flask-Login, only a duration chosen for this login is kept.
      if (options.duration !== undefined) session.set(KEY_REMEMBER_SECONDS, duration)
      const value = codec.sign(userId, duration, codec.versionTag(userId, version))
      state.cookieAction = { kind: 'set', value, maxAge: Math.ceil(duration) }
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
    const user = currentUser(context, this) as LoginUser
    const session = sessionOf(this)
    if (session !== null && session.get(KEY_USER_ID) !== undefined) {
      const target = config.regenerateSession ? await rotateSession(this, session, LOGIN_KEYS, true) : session
      removeKeys(target, LOGIN_KEYS)
    } else if (session !== null) {
      removeKeys(session, LOGIN_KEYS)
    }
    state.cookieAction = state.cookie === undefined ? null : { kind: 'clear' }
    becomeAnonymous(state)
    if (events.wanted('userLoggedOut')) events.emit('userLoggedOut', { request: this, user })
    return true
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
    return tokenOf(context, state) !== null
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

  return { loginUser, logoutUser, confirmLogin, isAuthenticated, loginFresh, loginRemembered, safeNextUrl }
}
