// The unauthorized and needs-refresh responses, and the guards that send them.
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import type { LoginView } from '../types/index.js'
import type { LoginEventHub } from './events.js'
import { FST_LOGIN_NEEDS_REFRESH, FST_LOGIN_SESSION_EXPIRED, FST_LOGIN_UNAUTHORIZED } from './errors.js'
import type { LoginConfig } from './options.js'
import { buildLoginUrl, nextParam, normaliseHost, parse } from './redirects.js'
import { sessionOf } from './session.js'
import { isFresh } from './freshness.js'
import { stateOf } from './state.js'

interface Flashing {
  flash?: (category: string, message: string) => unknown
}

/** q-value given to `type` by an Accept header; types not listed get 0. */
function qualityOf (accept: string, type: string): number {
  let best = 0
  for (const range of accept.split(',')) {
    const [media, ...params] = range.split(';')
    if (media === undefined || media.trim().toLowerCase() !== type) continue
    let quality = 1
    for (const param of params) {
      const [name, value] = param.split('=')
      if (name?.trim().toLowerCase() === 'q' && value !== undefined) {
        const parsed = Number(value.trim())
        quality = Number.isFinite(parsed) ? Math.min(Math.max(parsed, 0), 1) : 0
      }
    }
    best = Math.max(best, quality)
  }
  return best
}

/** True when the client ranks JSON above HTML: it gets a 401, not a redirect. */
export function prefersJson (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  if (accept === undefined || accept === '') return false
  return qualityOf(accept, 'application/json') > qualityOf(accept, 'text/html')
}

// Where a request with no usable Host header is placed, to parse its path.
const NO_ORIGIN = 'http://fastify-login.invalid'

function routedTarget (target: string): string {
  const absolute = target.startsWith('/') ? null : parse(target)
  return absolute === null ? target : absolute.pathname + absolute.search
}

// The request's URL on its own origin. The target is set as a path, so one
// that begins with `//` cannot pose as a host; an absolute-form target
// (`GET http://host/path`) counts by its path, as Fastify routes it. Without
// a usable Host header only the path and query are left (a redirect, not a 500).
function currentUrl (request: FastifyRequest): string {
  const host = normaliseHost(request.host)
  const url = new URL(host === null ? NO_ORIGIN : `${request.protocol === 'https' ? 'https' : 'http'}://${host}`)
  const target = routedTarget(request.url)
  const queryStart = target.indexOf('?')
  url.pathname = queryStart === -1 ? target : target.slice(0, queryStart)
  url.search = queryStart === -1 ? '' : target.slice(queryStart)
  return host === null ? url.pathname + url.search : url.href
}

// A view function may answer nothing for some requests (Flask-Login's
// `if not login_view: abort(401)`), and what it answers is only known per
// request: anything but a path or URL is treated as no view, so a bad value
// (one built from a client's Host header, say) gives the 401, never a 500.
function isUsableView (view: unknown): view is string {
  return typeof view === 'string' && view !== '' && URL.canParse(view, NO_ORIGIN)
}

interface Flow {
  readonly event: 'userUnauthorized' | 'userNeedsRefresh'
  readonly handler: LoginConfig['unauthorizedHandler']
  readonly view: LoginView | undefined
  readonly message: string | false
  readonly category: string
  readonly Failure: new () => Error
}

export interface Responses {
  unauthorized (request: FastifyRequest, reply: FastifyReply): Promise<void>
  needsRefresh (request: FastifyRequest, reply: FastifyReply): Promise<void>
  loginUrl (loginView: string, nextUrl?: string, nextField?: string): string
  requireLogin: Guard
  requireFreshLogin: Guard
}

export function createResponses (config: LoginConfig, events: LoginEventHub): Responses {
  const unauthorizedFlow: Flow = {
    event: 'userUnauthorized',
    handler: config.unauthorizedHandler,
    view: config.loginView,
    message: config.loginMessage,
    category: config.loginMessageCategory,
    Failure: FST_LOGIN_UNAUTHORIZED
  }
  // The unauthorized response to a request whose login has just expired.
  const expiredFlow: Flow = config.expiredMessage === false || config.expiredMessage === ''
    ? { ...unauthorizedFlow, Failure: FST_LOGIN_SESSION_EXPIRED }
    : { ...unauthorizedFlow, message: config.expiredMessage, category: config.expiredMessageCategory, Failure: FST_LOGIN_SESSION_EXPIRED }
  const refreshFlow: Flow = {
    event: 'userNeedsRefresh',
    handler: config.needsRefreshHandler,
    view: config.refreshView,
    message: config.needsRefreshMessage,
    category: config.needsRefreshMessageCategory,
    Failure: FST_LOGIN_NEEDS_REFRESH
  }

  function loginUrl (loginView: string, nextUrl?: string, nextField: string = config.nextField): string {
    return buildLoginUrl(loginView, nextUrl, nextField, config.forceHostForRedirects)
  }

  async function respond (flow: Flow, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (events.wanted(flow.event)) events.emit(flow.event, { request })
    if (flow.handler !== undefined) {
      await flow.handler(request, reply)
      return
    }
    const view: unknown = typeof flow.view === 'function' ? flow.view(request) : flow.view
    if (!isUsableView(view) || prefersJson(request)) throw new flow.Failure()
    const flash = (request as Flashing).flash
    if (flow.message !== false && flow.message !== '' && typeof flash === 'function') {
      const text = config.localize === undefined ? flow.message : config.localize(flow.message, request)
      flash.call(request, flow.category, text)
    }
    const current = currentUrl(request)
    const session = config.useSessionForNext ? sessionOf(request) : null
    if (session !== null) {
      session.set(config.nextField, nextParam(view, current))
      await reply.redirect(loginUrl(view), 302)
      return
    }
    await reply.redirect(loginUrl(view, current), 302)
  }

  function unauthorizedFlowOf (request: FastifyRequest): Flow {
    return stateOf(request)?.expired == null ? unauthorizedFlow : expiredFlow
  }

  const unauthorized = (request: FastifyRequest, reply: FastifyReply): Promise<void> => respond(unauthorizedFlowOf(request), request, reply)
  const needsRefresh = (request: FastifyRequest, reply: FastifyReply): Promise<void> => respond(refreshFlow, request, reply)

  // What a guard protects is private to one user: keep it out of shared
  // caches unless the route says otherwise (its own header is set later).
  function markPrivate (reply: FastifyReply): void {
    if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'private, no-store')
  }

  // The guards answer with the flow's response when the login does not do.
  async function deny (flow: Flow, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    await respond(flow, request, reply)
    return reply
  }

  function requireLogin (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction): Promise<unknown> | undefined {
    if (config.exemptMethodSet.has(request.method)) return pass(done)
    markPrivate(reply)
    // `loginDisabled` (for tests): every request goes through as a logged-in one would.
    if (config.loginDisabled) return pass(done)
    if (stateOf(request)?.authenticated !== true) return deny(unauthorizedFlowOf(request), request, reply)
    return pass(done)
  }

  function requireFreshLogin (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction): Promise<unknown> | undefined {
    if (config.exemptMethodSet.has(request.method)) return pass(done)
    markPrivate(reply)
    // `loginDisabled` (for tests): every request goes through as a logged-in one would.
    if (config.loginDisabled) return pass(done)
    if (stateOf(request)?.authenticated !== true) return deny(unauthorizedFlowOf(request), request, reply)
    if (!isFresh(config, request)) return deny(refreshFlow, request, reply)
    return pass(done)
  }

  return {
    unauthorized,
    needsRefresh,
    loginUrl,
    requireLogin,
    requireFreshLogin
  }
}

/** A guard as it is implemented (see `pass`); published as `preHandlerAsyncHookHandler`. */
export type Guard = (this: FastifyInstance, request: FastifyRequest, reply: FastifyReply, done?: HookHandlerDoneFunction) => Promise<unknown> | undefined

const PASSED: Promise<undefined> = Promise.resolve(undefined)

/**
 * Lets the request through a guard. Fastify passes `done` to a hook that
 * takes three arguments: calling it at once spares a promise and a microtask
 * on every guarded request. Called by hand with two arguments, a guard still
 * returns a promise, as its type says.
 */
export function pass (done: HookHandlerDoneFunction | undefined): Promise<undefined> | undefined {
  if (done === undefined) return PASSED
  done()
  return undefined
}
