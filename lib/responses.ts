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

// Work per request is bounded whatever the client sends (SPEC section 16):
// browsers list about ten media ranges with one or two parameters each.
/** Media ranges of an Accept header that are read; later ones are ignored. */
export const MAX_ACCEPT_RANGES = 32
/** A range with more parameters than this is ignored, as if it were not listed. */
export const MAX_RANGE_PARAMETERS = 8

/** The q-value of a range whose parameters follow `range[semicolon]` (-1: none). */
function qualityOf (range: string, semicolon: number): number {
  if (semicolon === -1) return 1
  // The limit stops the split early: a range of 16 KB of ';' costs nine pieces.
  const parameters = range.slice(semicolon + 1).split(';', MAX_RANGE_PARAMETERS + 1)
  if (parameters.length > MAX_RANGE_PARAMETERS) return 0
  let quality = 1
  for (const parameter of parameters) {
    const equals = parameter.indexOf('=')
    if (equals === -1 || parameter.slice(0, equals).trim().toLowerCase() !== 'q') continue
    const parsed = Number(parameter.slice(equals + 1).trim())
    quality = Number.isFinite(parsed) ? Math.min(Math.max(parsed, 0), 1) : 0
  }
  return quality
}

/** True when the client ranks JSON above HTML (a type not listed counts as 0): it gets a 401, not a redirect. */
export function prefersJson (request: FastifyRequest): boolean {
  const accept = request.headers.accept
  if (accept === undefined || accept === '') return false
  let json = 0
  let html = 0
  let start = 0
  for (let ranges = 0; ranges < MAX_ACCEPT_RANGES && start <= accept.length; ranges++) {
    let end = accept.indexOf(',', start)
    if (end === -1) end = accept.length
    const range = accept.slice(start, end)
    const semicolon = range.indexOf(';')
    const media = (semicolon === -1 ? range : range.slice(0, semicolon)).trim().toLowerCase()
    if (media === 'application/json') json = Math.max(json, qualityOf(range, semicolon))
    else if (media === 'text/html') html = Math.max(html, qualityOf(range, semicolon))
    start = end + 1
  }
  return json > html
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
      // A handler that only sets a status would leave the request waiting: the default error answers.
      if (!await sentBy(flow.handler, request, reply)) throw new flow.Failure()
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
  // They settle once the response is out: Fastify then skips the handler. A
  // client that leaves before (the reply still in onSend hooks) ends the wait
  // with the reply unsent; going on would run the handler anonymously.
  async function deny (flow: Flow, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    await respond(flow, request, reply)
    if (!reply.sent) await reply
    if (!reply.sent) throw new flow.Failure()
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

/**
 * Calls a custom handler; true when it sent the reply (or hijacked it).
 * `reply.sent` alone cannot tell: a reply whose onSend hooks are still running
 * is not sent yet, and sending the error then would send twice. So `send` is
 * watched while the handler runs; a handler that returns `reply` promises to
 * send it, as a route handler may, and is waited for.
 */
async function sentBy (handler: NonNullable<LoginConfig['unauthorizedHandler']>, request: FastifyRequest, reply: FastifyReply): Promise<boolean> {
  let sending = false
  const own = Object.getOwnPropertyDescriptor(reply, 'send')
  const send = reply.send
  reply.send = function watchedSend (this: FastifyReply, payload?: unknown): FastifyReply {
    sending = true
    return send.call(this, payload)
  }
  try {
    await handler(request, reply)
  } finally {
    if (own === undefined) delete (reply as { send?: unknown }).send
    else Object.defineProperty(reply, 'send', own)
  }
  return sending || reply.sent
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
