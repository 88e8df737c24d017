// fastify-login: user session management for Fastify (Flask-Login's feature
// set). This file only wires the modules into Fastify.
import type {
  FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, onRequestHookHandler, onSendHookHandler,
  preHandlerAsyncHookHandler
} from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyLoginOptions, LoginEventListener, LoginEventName, LoginManager } from '../types/index.js'
import { createActions } from './actions.js'
import { FST_LOGIN_ALREADY_REGISTERED, FST_LOGIN_INVALID_OPTION, FST_LOGIN_MISSING_COOKIE, FST_LOGIN_MISSING_SESSION } from './errors.js'
import { LoginEventHub } from './events.js'
import { createRouteGuards, kGuards } from './guards.js'
import { createLifetime, loginExpiredOf } from './lifetime.js'
import { currentUser, loaderFailure, loadUser, rememberCookieVerifies, storeTokenOf, tokenOf, type LoginContext } from './loading.js'
import { LoginRecords } from './login-records.js'
import { counted, logNotAwaited } from './not-awaited.js'
import { publicOptions, resolveOptions } from './options.js'
import { normaliseHost } from './redirects.js'
import { clearRememberCookie, clearTossedRememberCookies, isStoreCookie, RememberCodec, setRememberCookie } from './remember.js'
import { createResponses } from './responses.js'
import { loadStoredUser } from './store-loading.js'
import { KEY_USER_ID, sessionOf } from './session.js'
import { kLoginState, stateOf } from './state.js'
import { kTestLogins, takeTestLogin, type PendingTestLogin } from './test-tickets.js'

export type * from '../types/index.js'
export { AnonymousUserMixin, UserMixin } from './mixins.js'
export { MemoryLoginStore } from './memory-login-store.js'
export { isSafeRedirectUrl } from './redirects.js'
export { requireFreshLogin, requireLogin } from './guards.js'
export { SESSION_KEYS } from './session.js'
export { EVENT_NAMES } from './events.js'
export * from './errors.js'
export {
  DEFAULT_DROP_ON_LOGIN, DEFAULT_EXEMPT_METHODS, DEFAULT_EXPIRED_MESSAGE, DEFAULT_LOGIN_MESSAGE, DEFAULT_MESSAGE_CATEGORY, DEFAULT_NEEDS_REFRESH_MESSAGE,
  DEFAULT_NEXT_FIELD, DEFAULT_REMEMBER_COOKIE_NAME, DEFAULT_REMEMBER_DURATION, DEFAULT_ROTATION_GRACE, MIN_SECRET_LENGTH
} from './options.js'

// A response for a user from a cookie must not be served to anybody else by a shared cache.
function varyByCookie (reply: FastifyReply): void {
  const vary = reply.getHeader('vary')
  if (vary === undefined) {
    reply.header('vary', 'Cookie')
    return
  }
  const current = Array.isArray(vary) ? vary.join(', ') : String(vary)
  if (/(?:^|,)\s*(?:cookie|\*)\s*(?:,|$)/i.test(current)) return
  reply.header('vary', current === '' ? 'Cookie' : `${current}, Cookie`)
}

function checkEnvironment (fastify: FastifyInstance): void {
  // Its decorators would collide with the first one's: Fastify would throw outside register's promise.
  if (fastify.hasDecorator('loginManager')) throw new FST_LOGIN_ALREADY_REGISTERED()
  if (!fastify.hasReplyDecorator('setCookie') || !fastify.hasRequestDecorator('cookies')) throw new FST_LOGIN_MISSING_COOKIE()
  if (!fastify.hasRequestDecorator('session')) throw new FST_LOGIN_MISSING_SESSION()
}

const plugin: FastifyPluginCallback<FastifyLoginOptions> = function fastifyLogin (fastify, options, done) {
  let context: LoginContext
  try {
    checkEnvironment(fastify)
    const config = resolveOptions(options)
    if (config.forceHostForRedirects !== undefined && normaliseHost(config.forceHostForRedirects) === null) {
      throw new FST_LOGIN_INVALID_OPTION('`forceHostForRedirects` must be a host name, with an optional port')
    }
    const events = new LoginEventHub()
    const codec = new RememberCodec(config.secrets)
    const records = config.loginStore === undefined ? null : new LoginRecords(config.loginStore, config, codec, events)
    context = { config, events, codec, lifetime: createLifetime(config, events), records }
  } catch (error) {
    done(error as Error)
    return
  }
  const { config, events, codec, records } = context
  const actions = createActions(context)
  // Chosen once: without a store, loading stays synchronous for synchronous loaders.
  const load = records === null ? loadUser : loadStoredUser

  const responses = createResponses(config, events)
  const testLogins = new Map<string, PendingTestLogin>()
  if (config.loginDisabled) fastify.log.warn('fastify-login: loginDisabled is set, so every login guard lets every request through; use it in tests only')

  const manager: LoginManager = {
    options: publicOptions(config),
    on<E extends LoginEventName>(event: E, listener: LoginEventListener<E>) { events.on(event, listener); return manager },
    once<E extends LoginEventName>(event: E, listener: LoginEventListener<E>) { events.on(event, listener, true); return manager },
    off<E extends LoginEventName>(event: E, listener: LoginEventListener<E>) { events.off(event, listener); return manager },
    unauthorized: responses.unauthorized,
    needsRefresh: responses.needsRefresh,
    loginUrl: responses.loginUrl,
    listLogins: actions.listUserLogins,
    revokeLogins: actions.revokeUserLogins
  }
  Object.defineProperty(manager, kTestLogins, { value: testLogins })

  fastify.decorate('loginManager', manager)
  // Typed for users as the async hooks they behave like when called by hand.
  fastify.decorate('requireLogin', responses.requireLogin as preHandlerAsyncHookHandler)
  fastify.decorate('requireFreshLogin', responses.requireFreshLogin as preHandlerAsyncHookHandler)

  fastify.decorateRequest(kLoginState, null)
  fastify.decorateRequest('user', {
    getter (this: FastifyRequest) { return currentUser(context, this) }
  })
  fastify.decorateRequest('isAuthenticated', actions.isAuthenticated)
  fastify.decorateRequest('loginFresh', { getter (this: FastifyRequest) { return actions.loginFresh.call(this) } })
  fastify.decorateRequest('loginRemembered', { getter (this: FastifyRequest) { return actions.loginRemembered.call(this) } })
  fastify.decorateRequest('loginExpired', { getter (this: FastifyRequest) { return loginExpiredOf(this) } })
  fastify.decorateRequest('loginUser', counted(context, 'loginUser', actions.loginUser))
  fastify.decorateRequest('logoutUser', counted(context, 'logoutUser', actions.logoutUser))
  fastify.decorateRequest('confirmLogin', counted(context, 'confirmLogin', actions.confirmLogin))
  fastify.decorateRequest('safeNextUrl', actions.safeNextUrl)
  fastify.decorateRequest('loginId', { getter (this: FastifyRequest) { return actions.loginId.call(this) } })
  fastify.decorateRequest('listLogins', actions.listLogins)
  fastify.decorateRequest('revokeLogin', actions.revokeLogin)
  fastify.decorateRequest('revokeOtherLogins', actions.revokeOtherLogins)

  const onRequest: onRequestHookHandler = function loadLoginUser (request, reply, next) {
    if (testLogins.size > 0) {
      const pending = takeTestLogin(testLogins, request)
      if (pending !== undefined) {
        // The reply is sent by testLogin; only a failure continues the chain.
        testLogin(request, reply, pending).catch(next)
        return
      }
    }
    let waiting: boolean
    try {
      waiting = load(context, request, next)
    } catch (error) {
      next(loaderFailure(error))
      return
    }
    // Else loadUser calls next once the loader has answered.
    if (!waiting) next()
  }

  async function testLogin (request: FastifyRequest, reply: FastifyReply, pending: PendingTestLogin): Promise<void> {
    await request.loginUser(pending.user, { fresh: pending.fresh, remember: pending.remember, force: true })
    await reply.code(204).send()
  }

  const onSend: onSendHookHandler = function writeRememberCookie (request, reply, payload, next) {
    const state = stateOf(request)
    if (state === null) {
      next(null, payload)
      return
    }
    if (state.pendingCalls !== 0) logNotAwaited(request, state)
    if (state.source === 'session' || state.source === 'remember') varyByCookie(reply)
    // A requestLoader reads headers no Vary can name in general: no shared cache.
    else if (state.source === 'request' && !reply.hasHeader('cache-control')) reply.header('cache-control', 'private')
    if (state.cookie === undefined && state.cookieAction === null && !state.severalCookies) {
      next(null, payload)
      return
    }
    if (state.severalCookies) clearTossedRememberCookies(config, request, reply)
    const action = state.cookieAction
    if (action?.kind === 'set') {
      setRememberCookie(config, request, reply, action.value, action.maxAge, action.expires)
    } else if (action?.kind === 'clear' || !rememberCookieVerifies(context, state, state.cookie)) {
      // Also a bad cookie that rode along with a session login.
      clearRememberCookie(config, request, reply)
    } else if (config.remember.refreshEachRequest && state.authenticated) {
      refreshRememberCookie(request, reply)
    }
    next(null, payload)
  }

  // Re-issue a valid cookie of the current user with a new expiry.
  function refreshRememberCookie (request: FastifyRequest, reply: FastifyReply): void {
    const state = stateOf(request)!
    if (isStoreCookie(state.cookie!)) {
      // The record's own expiry follows at its next activity write (within a minute).
      // Only the cookie of this request's login (only a remembered login has one).
      const record = state.record
      if (record === null || storeTokenOf(context, state)?.loginId !== record.id) return
      const expires = Math.floor(Date.now() / 1000) + Math.ceil(record.rememberSeconds)
      setRememberCookie(config, request, reply, state.cookie!, Math.ceil(record.rememberSeconds), expires)
      return
    }
    const token = tokenOf(context, state)
    if (token === null || token.userId !== sessionOf(request)?.get(KEY_USER_ID)) return
    const expires = Math.floor(Date.now() / 1000) + token.duration
    setRememberCookie(config, request, reply, codec.resign({ ...token, expires }, token.versionTag), token.duration, expires)
  }

  fastify.addHook('onRequest', onRequest)
  fastify.addHook('onSend', onSend)

  const routeGuards = createRouteGuards(config, responses)
  fastify.decorateRequest(kGuards, { getter: () => routeGuards.named })
  fastify.addHook('onRoute', routeGuards.onRoute)
  // Only routes already in the router now can have escaped the onRoute hook.
  if (fastify.printRoutes() !== '(empty tree)') fastify.addHook('onRequest', routeGuards.guardEarlyRoutes as onRequestHookHandler)

  done()
}

// avvio does not catch what a plugin throws: a decorator another plugin has
// already taken (`request.user`, say) would crash the process, out of reach
// of `await app.register(…)`. It becomes register's error instead.
const registerSafely: FastifyPluginCallback<FastifyLoginOptions> = function fastifyLogin (fastify, options, done) {
  try {
    plugin(fastify, options, done)
  } catch (error) {
    done(error as Error)
  }
}

/** The fastify-login plugin. */
export const fastifyLogin = fp(registerSafely, {
  fastify: '5.x',
  name: 'fastify-login'
})

export default fastifyLogin
