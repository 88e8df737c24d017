// The route guards: what `config.login` and `loginRequiredByDefault` put in
// front of a route, and the named `requireLogin` / `requireFreshLogin`
// exports, which find the guards of the fastify-login registered for the
// request's route, or fail closed.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction, preHandlerAsyncHookHandler, RouteOptions } from 'fastify'
import { FST_LOGIN_INVALID_OPTION, FST_LOGIN_NOT_REGISTERED } from './errors.js'
import type { LoginConfig } from './options.js'
import { pass, type Guard, type Responses } from './responses.js'

/** The guards a request finds through `kGuards`. */
export interface Guards {
  readonly requireLogin: Guard
  readonly requireFreshLogin: Guard
}

/**
 * The request decoration (a getter on the Request prototype, so inherited by
 * encapsulated scopes made before the plugin loaded) through which a request
 * finds the guards of its fastify-login. `Symbol.for`: a named guard of the
 * CommonJS build finds a plugin registered by the ES module build, and back.
 */
export const kGuards = Symbol.for('fastify-login.guards')

interface WithGuards {
  [kGuards]?: Guards
}

function notRegistered (done: HookHandlerDoneFunction | undefined): Promise<never> | undefined {
  const error = new FST_LOGIN_NOT_REGISTERED()
  if (done === undefined) return Promise.reject(error)
  done(error)
  return undefined
}

function namedGuard (name: keyof Guards): Guard {
  return function (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction) {
    const guards = (request as unknown as WithGuards)[kGuards]
    if (guards === undefined) return notRegistered(done)
    return guards[name].call(this, request, reply, done)
  }
}

// Typed for users as the async hooks they behave like when called by hand.
/**
 * `preHandler` guard: unauthenticated requests get `loginManager.unauthorized`.
 * Works on any route, even one declared before the plugin has loaded; where no
 * fastify-login is registered for the route it answers 500 `FST_LOGIN_NOT_REGISTERED`.
 */
export const requireLogin = namedGuard('requireLogin') as preHandlerAsyncHookHandler
/**
 * `preHandler` guard: like `requireLogin`, and stale logins get
 * `loginManager.needsRefresh`. Fails closed like `requireLogin`.
 */
export const requireFreshLogin = namedGuard('requireFreshLogin') as preHandlerAsyncHookHandler

const ROUTE_MODES = new Set<unknown>(['required', 'fresh', 'optional', false, undefined])

// On the route config of every route the onRoute hook has seen.
const kGuardedAtRegistration = Symbol('fastify-login.guardedAtRegistration')

type RouteHooks = RouteOptions['onRequest']

function asArray<T> (value: T | T[] | undefined): T[] {
  if (value === undefined) return []
  return Array.isArray(value) ? value : [value]
}

export interface RouteGuards {
  /** What a request finds through `kGuards`. */
  readonly named: Guards
  /** The onRoute hook: guards each route by its final `config.login`. */
  onRoute (route: RouteOptions): void
  /** An `onRequest` hook for the routes added before the plugin loaded. */
  readonly guardEarlyRoutes: Guard
}

export function createRouteGuards (config: LoginConfig, responses: Responses): RouteGuards {
  const named: Guards = Object.freeze({ requireLogin: responses.requireLogin, requireFreshLogin: responses.requireFreshLogin })

  function guardFor (mode: unknown, method: unknown, url: unknown): Guard | undefined {
    if (!ROUTE_MODES.has(mode)) {
      throw new FST_LOGIN_INVALID_OPTION(`route ${String(method)} ${String(url)}: \`config.login\` must be 'required', 'fresh', 'optional' or false`)
    }
    if (mode === 'fresh') return responses.requireFreshLogin
    if (mode === 'required' || (mode === undefined && config.loginRequiredByDefault)) return responses.requireLogin
    return undefined
  }

  function stronger (guard: Guard | undefined, other: Guard | undefined): Guard | undefined {
    return guard === responses.requireFreshLogin || other === responses.requireFreshLogin ? responses.requireFreshLogin : guard ?? other
  }

  // Fastify makes the HEAD twin of a GET route (exposeHeadRoute) right after
  // it, from the options as declared, and runs the onRoute hooks again. A hook
  // that guards by method would leave the twin, which runs the same handler,
  // open: the twin gets at least the guard of the GET route before it.
  let lastGet: { readonly url: string, readonly guard: Guard | undefined } | null = null

  // The guard is the route's first `onRequest` hook: it runs right after the
  // user is loaded, before the route's own hooks, so they and the handler
  // only ever see the user the route's type promises, and an anonymous
  // request's body is never read.
  //
  // Fastify reads a route's `onRequest` only after every onRoute hook has
  // run (registered before or after this one), right before it copies
  // `config` into the route, and again at ready. Reading it through this
  // accessor makes the guard follow the final `config.login`, whichever hook
  // set it, at no cost per request; what a later hook assigns is kept behind
  // the guard. An invalid value throws there: registration or ready() fails.
  function onRoute (route: RouteOptions): void {
    let hooks = route.onRequest
    const twinGuard = route.method === 'HEAD' && lastGet?.url === route.url ? lastGet.guard : undefined
    Object.defineProperty(route, 'onRequest', {
      configurable: true,
      enumerable: true,
      get: () => finalHooks(route, hooks, twinGuard),
      set (value: RouteHooks) { hooks = value }
    })
  }

  function finalHooks (route: RouteOptions, hooks: RouteHooks, twinGuard: Guard | undefined): RouteHooks {
    const routeConfig = route.config as Record<PropertyKey, unknown> | undefined
    const guard = stronger(guardFor(routeConfig?.login, route.method, route.url), twinGuard)
    if ([route.method].flat().includes('GET')) lastGet = { url: route.url, guard }
    // Marked, so the request-time check below leaves this route alone.
    if (routeConfig?.[kGuardedAtRegistration] !== true) {
      route.config = { ...route.config, [kGuardedAtRegistration]: true } as RouteOptions['config']
    }
    if (guard === undefined) return hooks
    const list = asArray(hooks)
    // A hook that read the list and assigned it back already has the guard first.
    return list[0] === guard ? list : [guard, ...list] as RouteHooks
  }

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
    const guard = guardFor(routeConfig.login, request.method, request.routeOptions.url)
    if (guard === undefined) return pass(next)
    // As on a route: Fastify goes on when the promise settles, unless the reply was sent.
    return guard.call(this, request, reply, next)
  }

  return { named, onRoute, guardEarlyRoutes }
}
