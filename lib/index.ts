// fastify-login: user session management for Fastify (Flask-Login's feature
// set). This file only wires the modules into Fastify.
import type {
  FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest, HookHandlerDoneFunction, onRequestHookHandler, onSendHookHandler,
  preHandlerAsyncHookHandler, preHandlerHookHandler
} from 'fastify'
import fp from 'fastify-plugin'
import type { FastifyLoginOptions, LoginEventListener, LoginEventName, LoginManager } from '../types/index.js'
import { createActions } from './actions.js'
import { FST_LOGIN_INVALID_OPTION, FST_LOGIN_INVALID_USER_ID, FST_LOGIN_MISSING_COOKIE, FST_LOGIN_MISSING_SESSION, FST_LOGIN_NO_STORE } from './errors.js'
import { LoginEventHub } from './events.js'
import { currentUser, loaderFailure, loadUser, rememberCookieVerifies, storeTokenOf, tokenOf, type LoginContext } from './loading.js'
import { LoginRecords } from './login-records.js'
import { loadStoredUser } from './store-loading.js'
import { publicOptions, resolveOptions } from './options.js'
import { normaliseHost } from './redirects.js'
import { clearRememberCookie, isStoreCookie, RememberCodec, setRememberCookie } from './remember.js'
import { createResponses, pass, type Guard } from './responses.js'
import { KEY_USER_ID, sessionOf } from './session.js'
import { kLoginState, stateOf } from './state.js'
import { kTestLogins, TICKET_HEADER, type PendingTestLogin } from './test-tickets.js'

export type * from '../types/index.js'
export { AnonymousUserMixin, UserMixin } from './mixins.js'
export { MemoryLoginStore, type MemoryLoginStoreOptions } from './memory-login-store.js'
export { isSafeRedirectUrl } from './redirects.js'
export { SESSION_KEYS } from './session.js'
export { EVENT_NAMES } from './events.js'
export * from './errors.js'
export {
  DEFAULT_EXEMPT_METHODS, DEFAULT_LOGIN_MESSAGE, DEFAULT_MESSAGE_CATEGORY, DEFAULT_NEEDS_REFRESH_MESSAGE,
  DEFAULT_NEXT_FIELD, DEFAULT_REMEMBER_COOKIE_NAME, DEFAULT_REMEMBER_DURATION, DEFAULT_ROTATION_GRACE, MIN_SECRET_LENGTH
} from './options.js'

function asArray<T> (value: T | T[] | undefined): T[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

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

const kGuardedAtRegistration = Symbol('fastify-login.guardedAtRegistration')

const ROUTE_MODES = new Set<unknown>(['required', 'fresh', 'optional', false, undefined])

function checkEnvironment (fastify: FastifyInstance): void {
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
    context = { config, events, codec, records }
  } catch (error) {
    done(error as Error)
    return
  }
  const { config, events, codec, records } = context
  const actions = createActions(context)
  // Chosen once: without a store, loading stays synchronous for synchronous loaders.
  const load = records === null ? loadUser : loadStoredUser

  function requireRecords (): LoginRecords {
    if (records === null) throw new FST_LOGIN_NO_STORE()
    return records
  }

  function storeUserId (userId: unknown): string {
    const id = typeof userId === 'number' && Number.isFinite(userId) ? String(userId) : userId
    if (typeof id !== 'string' || id === '') throw new FST_LOGIN_INVALID_USER_ID('the user id must be a non-empty string or a finite number')
    return id
  }
  const responses = createResponses(config, events)
  const testLogins = new Map<string, PendingTestLogin>()

  const manager: LoginManager = {
    options: publicOptions(config),
    on<E extends LoginEventName>(event: E, listener: LoginEventListener<E>) { events.on(event, listener); return manager },
    once<E extends LoginEventName>(event: E, listener: LoginEventListener<E>) { events.on(event, listener, true); return manager },
    off<E extends LoginEventName>(event: E, listener: LoginEventListener<E>) { events.off(event, listener); return manager },
    unauthorized: responses.unauthorized,
    needsRefresh: responses.needsRefresh,
    loginUrl: responses.loginUrl,
    async listLogins (userId) { return requireRecords().list(storeUserId(userId), null) },
    async revokeLogins (userId) { return requireRecords().revokeAll(undefined, storeUserId(userId), null) }
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
  fastify.decorateRequest('loginUser', actions.loginUser)
  fastify.decorateRequest('logoutUser', actions.logoutUser)
  fastify.decorateRequest('confirmLogin', actions.confirmLogin)
  fastify.decorateRequest('safeNextUrl', actions.safeNextUrl)
  fastify.decorateRequest('loginId', { getter (this: FastifyRequest) { return actions.loginId.call(this) } })
  fastify.decorateRequest('listLogins', actions.listLogins)
  fastify.decorateRequest('revokeLogin', actions.revokeLogin)
  fastify.decorateRequest('revokeOtherLogins', actions.revokeOtherLogins)

  const onRequest: onRequestHookHandler = function loadLoginUser (request, reply, next) {
    if (testLogins.size > 0 && typeof request.headers[TICKET_HEADER] === 'string') {
      const pending = testLogins.get(request.headers[TICKET_HEADER])
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
    if (state.source === 'session' || state.source === 'remember') varyByCookie(reply)
    if (state.cookie === undefined && state.cookieAction === null) {
      next(null, payload)
      return
    }
    const action = state.cookieAction
    if (action?.kind === 'set') {
      setRememberCookie(config, request, reply, action.value, action.maxAge, action.expires)
    } else if (action?.kind === 'clear' || !rememberCookieVerifies(context, state, state.cookie!)) {
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
      const record = state.record
      if (record === null || !record.remembered || storeTokenOf(context, state)?.loginId !== record.id) return
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

  function invalidMode (method: unknown, url: unknown): Error {
    return new FST_LOGIN_INVALID_OPTION(`route ${String(method)} ${String(url)}: \`config.login\` must be 'required', 'fresh', 'optional' or false`)
  }

  function guardFor (mode: unknown): Guard | undefined {
    if (mode === 'fresh') return responses.requireFreshLogin
    if (mode === 'required') return responses.requireLogin
    return mode === undefined && config.loginRequiredByDefault ? requireLoginByDefault : undefined
  }

  fastify.addHook('onRoute', (route) => {
    const mode: unknown = route.config?.login
    if (!ROUTE_MODES.has(mode)) throw invalidMode(route.method, route.url)
    // Marked, so the request-time check below leaves this route alone.
    const marked = { ...route.config, [kGuardedAtRegistration]: true }
    route.config = marked
    const guard = guardFor(mode)
    if (guard === undefined) return
    route.preHandler = [guard, ...asArray(route.preHandler)]
  })

  // Routes added before this plugin loaded (`app.register(...)` without
  // `await`, then `app.get(...)`) never reach the onRoute hook: their
  // `config.login`, or `loginRequiredByDefault`, is applied here, per request.
  // Fastify cannot tell such a route from one declared before the register
  // call, so both are guarded: failing closed, not open. The guard runs even
  // for a fresh login, as on any guarded route: it marks the reply private.
  const guardEarlyRoutes: Guard = function guardEarlyRoutes (request, reply, next) {
    if (request.is404) return pass(next)
    const routeConfig = request.routeOptions.config as unknown as Record<PropertyKey, unknown> | undefined
    if (routeConfig === undefined || routeConfig[kGuardedAtRegistration] === true) return pass(next)
    const mode = routeConfig.login
    if (!ROUTE_MODES.has(mode)) throw invalidMode(request.method, request.routeOptions.url)
    const guard = guardFor(mode)
    if (guard === undefined) return pass(next)
    // As on a route: Fastify goes on when the promise settles, unless the reply was sent.
    return guard.call(this, request, reply, next)
  }
  // Only routes already in the router now can have escaped the onRoute hook.
  if (fastify.printRoutes() !== '(empty tree)') fastify.addHook('preHandler', guardEarlyRoutes as preHandlerHookHandler)

  // A later onRoute hook (an encapsulated plugin's) may still opt the route out.
  function requireLoginByDefault (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, next?: HookHandlerDoneFunction): Promise<unknown> | undefined {
    const mode: unknown = request.routeOptions.config?.login
    if (mode === 'optional' || mode === false) return pass(next)
    return responses.requireLogin.call(this, request, reply, next)
  }

  done()
}

/** The fastify-login plugin. */
export const fastifyLogin = fp(plugin, {
  fastify: '5.x',
  name: 'fastify-login'
})

export default fastifyLogin
