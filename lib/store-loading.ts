// Loading the user of a request when a login store is configured: Flask-Login's
// order as in loading.ts, with the store as the authority. A session login
// holds only while its record does; a remember cookie names a record and is
// rotated on every restore; logins from before the store get their record.
import type { FastifyRequest } from 'fastify'
import type { LoginRecord, LoginUser } from '../types/index.js'
import type { LoginRecords } from './login-records.js'
import {
  becomeAnonymous, becomeUser, callUserLoader, dropLogin, ensureState, fromCookie, fromRequest, fromSession, hasCredentials,
  loaderFailure, protectionRemovedLogin, storeTokenOf, tokenOf, writeLogin, type LoadDone, type LoginContext
} from './loading.js'
import { isStoreCookie } from './remember.js'
import { KEY_LOGIN_ID, KEY_USER_ID, LOGIN_KEYS, removeKeys, rotateSession, sessionOf, type SessionLike } from './session.js'
import { setCookieUntil, type LoginState } from './state.js'
import { versionOf } from './users.js'

/** A loading step of loading.ts (it returns true when it will call `done`), as a promise. */
function step (run: (done: LoadDone) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!run((error) => { if (error === undefined) resolve(); else reject(error) })) resolve()
  })
}

/**
 * `loadUser` with a login store. Returns false when there is nothing to load
 * (no credentials: no store read); else true, and calls `done` once the
 * request's user is known.
 */
export function loadStoredUser (context: LoginContext, request: FastifyRequest, done: LoadDone): boolean {
  const session = sessionOf(request)
  const sessionLogin = session !== null && session.get(KEY_USER_ID) !== undefined
  if (!hasCredentials(context, request, sessionLogin)) return false
  const state = ensureState(context, request)
  loadStored(context, request, state, session, sessionLogin).then(() => { done() }, (error: unknown) => { done(loaderFailure(error)) })
  return true
}

async function loadStored (context: LoginContext, request: FastifyRequest, state: LoginState, session: SessionLike | null, sessionLogin: boolean): Promise<void> {
  const { config } = context
  const records = context.records!
  if (sessionLogin) {
    const loginId = session!.get(KEY_LOGIN_ID)
    if (context.lifetime !== null && context.lifetime.endIfExpired(request, state, session!)) {
      // An expired login goes first, as in loading.ts; the request goes on without it.
      if (typeof loginId === 'string') await records.expired(request, loginId)
    } else if (protectionRemovedLogin(context, request, state, session!)) {
      // Strong protection ended this login: its record goes too.
      if (typeof loginId === 'string') await records.end(request, loginId, 'revoked')
      return
    } else if (config.userLoader !== undefined) {
      const userId = session!.get(KEY_USER_ID)
      if (typeof userId !== 'string') {
        dropLogin(context, request, state, session)
        return
      }
      if (await fromStoredSession(context, records, request, state, session!, userId, loginId)) return
    }
  }
  if (state.cookie !== undefined && config.userLoader !== undefined) {
    if (isStoreCookie(state.cookie)) {
      if (await fromStoreCookie(context, records, request, state, session)) return
    } else {
      const token = tokenOf(context, state)
      if (token !== null) {
        await fromCookie(context, request, state, session, token)
        // A cookie from before the store: this login gets its record, and a store
        // cookie (in the session the restore rotated to; without one, nothing is kept).
        const restored = sessionOf(request)
        if (state.source === 'remember' && restored !== null) {
          await addRecord(context, records, request, state, restored, token.userId, { seconds: token.duration, expiresAt: token.expires * 1000 })
        }
        return
      }
    }
    // A bad cookie is treated as absent, and cleared.
    state.cookieAction = { kind: 'clear' }
  }
  if (config.requestLoader !== undefined) await step((done) => fromRequest(context, request, state, done))
}

/**
 * A session login: it holds while its record does. Returns false when the
 * record is gone, so the request goes on to the remember cookie.
 */
async function fromStoredSession (
  context: LoginContext, records: LoginRecords, request: FastifyRequest, state: LoginState, session: SessionLike, userId: string, loginId: unknown
): Promise<boolean> {
  if (typeof loginId !== 'string') {
    // A login from before the store was turned on: it gets its record now.
    await step((done) => fromSession(context, request, state, session, userId, done))
    if (state.authenticated) {
      const token = tokenOf(context, state)
      const remember = token !== null && token.userId === userId ? { seconds: token.duration, expiresAt: token.expires * 1000 } : null
      await addRecord(context, records, request, state, session, userId, remember)
    }
    return true
  }
  const record = await records.read(request, loginId, userId)
  if (record === null) {
    // Logged out, revoked or expired, maybe on another instance.
    removeKeys(session, LOGIN_KEYS)
    becomeAnonymous(state)
    return false
  }
  await step((done) => fromSession(context, request, state, session, userId, done))
  if (state.source !== 'session') {
    // The user is gone, or its sessionVersion changed: so is this login.
    await records.end(request, loginId, 'revoked')
    return true
  }
  state.loginId = loginId
  state.record = record
  await records.touch(request, record)
  return true
}

/** Gives a login from before the store its record (and a store cookie when it is remembered). */
async function addRecord (
  context: LoginContext, records: LoginRecords, request: FastifyRequest, state: LoginState, session: SessionLike,
  userId: string, remember: { seconds: number, expiresAt: number } | null
): Promise<void> {
  // Called once the login is authenticated: its user is loaded.
  const version = versionOf(context.config, state.user as LoginUser)
  const { record, cookie } = await records.create(request, userId, remember, context.codec.versionTag(userId, version))
  session.set(KEY_LOGIN_ID, record.id)
  state.loginId = record.id
  state.record = record
  if (cookie !== null) state.cookieAction = setCookieUntil(cookie, record.expiresAt)
}

/**
 * A store cookie: verified without a store read, then checked against its
 * record (current, just rotated out, or stolen), rotated, and its login
 * restored into the session. Returns false when it restored nothing and the
 * request may go on to the request loader.
 */
async function fromStoreCookie (context: LoginContext, records: LoginRecords, request: FastifyRequest, state: LoginState, session: SessionLike | null): Promise<boolean> {
  const { config, codec, events } = context
  const token = storeTokenOf(context, state)
  if (token === null) return false
  const check = await records.check(token)
  if (check.kind === 'gone') return false
  if (check.kind === 'theft') return caughtTheft(records, request, state, check.record)
  const { record } = check
  const user = await callUserLoader(context, request, record.userId)
  // The user is gone, or its credentials changed: so is this login.
  if (user === null || user === undefined) return endedLogin(context, records, request, state, record)
  const version = versionOf(config, user)
  if (codec.versionTag(record.userId, version) !== record.versionTag) return endedLogin(context, records, request, state, record)
  // Without a session (a route outside the session cookie's path) nothing keeps
  // the login: the cookie is accepted as it is, and rotated where it is kept.
  const rotation = session === null ? { kind: 'rotated', record, cookie: null } as const : await records.rotate(request, check, token)
  if (rotation.kind === 'gone') {
    dropLogin(context, request, state, null)
    return true
  }
  if (rotation.kind === 'theft') return caughtTheft(records, request, state, rotation.record)
  if (session !== null) {
    // The session becomes this login: a new id, as a login would get.
    const target = config.regenerateSession ? await rotateSession(request, session, config.keysReplacedByLogin) : session
    if (!config.regenerateSession) removeKeys(target, config.keysReplacedByLogin)
    writeLogin(context, request, target, record.userId, false, version)
    target.set(KEY_LOGIN_ID, record.id)
  }
  state.loginId = record.id
  state.record = rotation.record
  if (rotation.cookie !== null) state.cookieAction = setCookieUntil(rotation.cookie, rotation.record.expiresAt)
  becomeUser(state, user)
  state.source = 'remember'
  if (events.wanted('userLoadedFromCookie')) events.emit('userLoadedFromCookie', { request, user })
  return true
}

async function endedLogin (context: LoginContext, records: LoginRecords, request: FastifyRequest, state: LoginState, record: LoginRecord): Promise<boolean> {
  await records.end(request, record.id, 'revoked')
  dropLogin(context, request, state, null)
  return true
}

async function caughtTheft (records: LoginRecords, request: FastifyRequest, state: LoginState, record: LoginRecord): Promise<boolean> {
  await records.theft(request, record)
  state.cookieAction = { kind: 'clear' }
  becomeAnonymous(state)
  return true
}
