// The example application: every fastify-login feature, used the way a
// careful team would. `buildApp(options)` returns the Fastify instance
// (server.ts starts it; the tests call it with a temporary data folder).
import { mkdirSync } from 'node:fs'
import Fastify, {
  type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions, type RouteGenericInterface
} from 'fastify'
import fastifyCookie from '@fastify/cookie'
// Before @fastify/flash, whose types bring @fastify/secure-session's: the
// first `request.session` type TypeScript meets is the one it keeps.
import fastifySession, { type SessionStore } from '@fastify/session'
import fastifyFlash from '@fastify/flash'
import fastifyCsrfProtection from '@fastify/csrf-protection'
import fastifyFormbody from '@fastify/formbody'
import fastifyLogin, { FST_LOGIN_STORE_FAILED, FST_LOGIN_UNAUTHORIZED, type LoginStore } from 'fastify-login'
import { loadSecrets } from './config.js'
import { openDatabase, type AppDatabase, type User } from './db.js'
import { SqliteLoginStore } from './login-store.js'
import { hashPassword, passwordMatches } from './passwords.js'
import { openRedisStores, SESSION_STORE_UNAVAILABLE } from './redis-store.js'
import { SqliteSessionStore } from './session-store.js'
import * as views from './views.js'

const MIN_PASSWORD_LENGTH = 8
const MAX_PASSWORD_LENGTH = 200

export interface AppOptions {
  /** Folder of the SQLite file and the generated secrets. */
  dataDir: string
  /** Default: generated and kept in `dataDir`. */
  sessionSecret?: string
  /** Default: generated and kept in `dataDir`. */
  loginSecret?: string
  /** Keep sessions in this Redis (several instances). Default: in the SQLite file. */
  redisUrl?: string
  /** fastify-login's `sessionProtection`. Default 'basic'. */
  sessionProtection?: 'basic' | 'strong'
  /** fastify-login's `idleTimeout`, in seconds. Default none (server.ts passes IDLE_TIMEOUT). */
  idleTimeout?: number
  /** fastify-login's `absoluteTimeout`, in seconds. Default none (server.ts passes ABSOLUTE_TIMEOUT). */
  absoluteTimeout?: number
  /** Behind a reverse proxy. Default false. */
  trustProxy?: boolean
  /** Fastify's logger option. Default false. */
  logger?: FastifyServerOptions['logger']
}

// What this app keeps in the session next to fastify-login's keys: the
// messages of @fastify/flash and the secret of @fastify/csrf-protection
// (neither plugin types them for @fastify/session).
declare module 'fastify' {
  interface Session {
    flash?: Record<string, string[]>
    _csrf?: string
  }
}

/** A form field as a string: '' when it is missing or was sent twice. */
function field (request: FastifyRequest, name: string): string {
  const value = isRecord(request.body) ? request.body[name] : undefined
  return typeof value === 'string' ? value : ''
}

/** Any object can be read by key; the reader checks what it gets. */
function isRecord (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null
}

/**
 * The `code` and HTTP status of what a request failed with: Fastify's errors
 * and its plugins' carry both; anything else is a 500.
 */
function codeAndStatusOf (error: unknown): { code: string, status: number } {
  const code = isRecord(error) && typeof error.code === 'string' ? error.code : ''
  const statusCode = isRecord(error) && typeof error.statusCode === 'number' ? error.statusCode : 500
  return { code, status: statusCode >= 400 ? statusCode : 500 }
}

/** Inactive users cannot log in, and their existing sessions and API keys stop working. */
const activeOnly = (user: User | null): User | null => user?.isActive ? user : null

/** The JSON API is under /api/: API keys open it (never the pages), and its clients never get the login page. */
const isApiRequest = (request: FastifyRequest): boolean => request.url.startsWith('/api/')

/** Where sessions and logins are kept. */
interface Stores {
  /** For @fastify/session. */
  readonly sessionStore: SessionStore
  /** For fastify-login: every login is a record, listed on /devices. */
  readonly loginStore: LoginStore
  close (): Promise<void>
}

/** Sessions and logins in the SQLite file, next to the users. */
function openSqliteStores (db: AppDatabase): Stores {
  const sessionStore = new SqliteSessionStore(db.db)
  return { sessionStore, loginStore: new SqliteLoginStore(db.db), close: async () => { sessionStore.close() } }
}

export async function buildApp (options: AppOptions): Promise<FastifyInstance> {
  mkdirSync(options.dataDir, { recursive: true })
  const secrets = loadSecrets(options.dataDir, options)
  const db = await openDatabase(options.dataDir)

  const app = Fastify({ logger: options.logger ?? false, trustProxy: options.trustProxy ?? false })
  // Sessions and logins: in Redis when several instances share them (see
  // redis-store.ts), else in the SQLite file. Users stay in SQLite either
  // way. Both survive a restart: restarting the app logs nobody out.
  const stores = options.redisUrl ? await openRedisStores(options.redisUrl, app.log) : openSqliteStores(db)
  app.addHook('onClose', async () => {
    await stores.close()
    db.close()
  })

  // Register order matters: cookies, sessions, flash, then fastify-login.
  await app.register(fastifyCookie)
  // Routes that never load a user (`config.login: false`) do not need the
  // session either: with its cookie hidden, @fastify/session reads nothing
  // from the store. They cost less, and keep working while Redis is down.
  app.addHook('onRequest', async (request) => {
    if (request.routeOptions.config?.login === false) delete request.cookies.session
  })
  await app.register(fastifySession, {
    secret: secrets.sessionSecret,
    store: stores.sessionStore,
    cookieName: 'session',
    // No maxAge: the session cookie goes away when the browser closes.
    // Staying logged in longer is what "remember me" is for.
    cookie: { secure: 'auto', httpOnly: true, sameSite: 'lax', path: '/' },
    // Anonymous visitors get no session (and no row in the store) until
    // something is stored in it.
    saveUninitialized: false
  })
  await app.register(fastifyFlash)
  await app.register(fastifyFormbody)
  await app.register(fastifyCsrfProtection, { sessionPlugin: '@fastify/session' })

  await app.register(fastifyLogin, {
    secret: secrets.loginSecret, // signs the remember-me cookie
    // The session stores the user's id; this turns it back into a user.
    userLoader: (id) => activeOnly(db.findUserById(id)),
    // API keys: `Authorization: Bearer <key>`, accepted on /api/ routes only
    // (pages need a password login). Runs before the body is parsed.
    requestLoader: (request) => {
      const header = request.headers.authorization
      if (!isApiRequest(request) || !header?.startsWith('Bearer ')) return null
      return activeOnly(db.findUserByApiKey(header.slice('Bearer '.length)))
    },
    // Where `config.login` sends anonymous visitors of a page (with ?next=).
    // API requests get no page: their 401 is answered by the API's error handler.
    loginView: (request) => isApiRequest(request) ? undefined : '/login',
    refreshView: '/reauthenticate', // where `config.login: 'fresh'` sends logins that are not fresh
    freshMaxAge: 15 * 60, // a typed password stays "fresh" for 15 minutes
    // 'basic', the default: a session presented by another client (other
    // address or User-Agent) stays logged in but is no longer fresh.
    // (SESSION_PROTECTION=strong: that session is logged out instead.)
    sessionProtection: options.sessionProtection ?? 'basic',
    // Changes when the password changes: every session and remember-me
    // cookie made before then stops working.
    sessionVersion: (user) => String(user.sessionVersion),
    remember: { duration: 30 * 24 * 60 * 60 }, // "remember me" lasts 30 days
    // Every login is a record in the store: /devices lists them and signs
    // them out, a logout ends every copy of the cookies, and a remember-me
    // cookie changes each time it is used (a stolen copy is caught).
    loginStore: stores.loginStore,
    // Session lifetime (IDLE_TIMEOUT, ABSOLUTE_TIMEOUT): a session login ends
    // after that long without a request, or that long after the login. The
    // guards then send the browser to the loginView with expiredMessage
    // ("Your session has expired. Please log in again."); a remember-me
    // cookie logs it back in, not fresh.
    idleTimeout: options.idleTimeout,
    absoluteTimeout: options.absoluteTimeout
  })

  const { expiredMessage, expiredMessageCategory } = app.loginManager.options

  // Lifecycle events: keep "last login" up to date, and log what matters.
  // (User ids and cookie values stay out of the logs.)
  app.loginManager.on('userLoggedIn', ({ user }) => db.recordLogin(user.id))
  app.loginManager.on('sessionProtected', ({ request }) => {
    request.log.warn('session used by a different client: the login is no longer fresh')
  })
  // A remember-me cookie came back after it had been replaced: somebody else
  // has a copy. fastify-login has signed that login out everywhere.
  app.loginManager.on('rememberTheft', ({ request }) => {
    request.log.warn('a replaced remember-me cookie was used again (a stolen copy?): that login was signed out everywhere')
  })

  // Browser hardening unrelated to logins: no scripts at all, forms post only to this site.
  app.addHook('onRequest', async (_request, reply) => {
    reply.headers({
      'content-security-policy': "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'same-origin'
    })
  })

  /**
   * The flashed messages, removed from the session. Reads without writing
   * when there are none, so that pages seen by anonymous visitors create no session.
   */
  function takeFlashes (request: FastifyRequest, reply: FastifyReply): views.Flash[] {
    // An error page may have no session (it failed to load).
    if (typeof request.session?.get !== 'function') return []
    const pending = request.session.get('flash')
    if (pending === undefined || Object.keys(pending).length === 0) return []
    reply.flash() // removes them from the session
    return Object.entries(pending).flatMap(([category, texts]) => texts.map((text) => ({ category, text })))
  }

  /**
   * The expiredMessage, on a page for everybody that a visitor whose login
   * has just expired opens (guarded pages flash it before their redirect).
   */
  function expiryNotice (request: FastifyRequest, user: User | null): views.Flash[] {
    if (request.loginExpired === null || user !== null || expiredMessage === false) return []
    return [{ category: expiredMessageCategory, text: expiredMessage }]
  }

  /** Sends `content` in the page layout. */
  function sendPage (request: FastifyRequest, reply: FastifyReply, title: string, content: views.SafeHtml, status = 200): FastifyReply {
    const user = request.isAuthenticated() ? request.user : null
    // The layout's logout button is a form, and forms carry a CSRF token.
    const csrfToken = user === null ? '' : reply.generateCsrf()
    const flashes = [...expiryNotice(request, user), ...takeFlashes(request, reply)]
    const page = views.layout({ user, csrfToken, flashes }, title, content)
    return reply.code(status).type('text/html; charset=utf-8').send(page)
  }

  // Error pages (set before the routes: a route keeps the handlers set when it is added).
  app.setNotFoundHandler(async (request, reply) => {
    return sendPage(request, reply, 'Not found', views.errorPage('There is no page at this address.'), 404)
  })

  app.setErrorHandler(async (error, request, reply) => {
    const { code, status } = codeAndStatusOf(error)
    if (code === SESSION_STORE_UNAVAILABLE) return sendStoreUnavailable(request, reply)
    if (error instanceof FST_LOGIN_STORE_FAILED) {
      // The login store failed (its `cause` says how): fastify-login let
      // nobody through and logged nobody out. (A Redis outage is also logged
      // once by redis-store.ts.)
      request.log.error(error)
      return sendStoreUnavailable(request, reply)
    }
    if (status >= 500) request.log.error(error)
    const message = code.startsWith('FST_CSRF_')
      ? 'This form has expired. Go back, reload the page and try again.'
      : status >= 500 || !(error instanceof Error) ? 'Something went wrong.' : error.message
    if (!(request.headers.accept ?? '').includes('text/html')) return reply.code(status).send({ error: message })
    return sendPage(request, reply, 'Error', views.errorPage(message), status)
  })

  /**
   * Redis (or the login store) is down: a 503 that uses nothing of the
   * session, so it shows no user, no flash message and no form.
   */
  function sendStoreUnavailable (request: FastifyRequest, reply: FastifyReply): FastifyReply {
    const message = 'Logins are unavailable for a moment. Try again in a few seconds.'
    // Nothing to save: without this, @fastify/session would try to write the
    // session to Redis again when this reply is sent (and fail). A null
    // session is its "no session" value, which its types leave out.
    Reflect.set(request, 'session', null)
    reply.code(503).header('retry-after', '5').header('cache-control', 'no-store')
    if (!(request.headers.accept ?? '').includes('text/html')) return reply.send({ error: message })
    const page = views.layout({ user: null, csrfToken: '', flashes: [] }, 'Error', views.errorPage(message))
    return reply.type('text/html; charset=utf-8').send(page)
  }

  // Public files and health checks never load a user (`config.login: false`).
  app.get('/style.css', { config: { login: false } }, async (_request, reply) => {
    return reply.type('text/css; charset=utf-8').header('cache-control', 'public, max-age=3600').send(views.STYLESHEET)
  })
  app.get('/health', { config: { login: false } }, async () => ({ ok: true }))

  // A page for everybody that greets the user when there is one.
  app.get('/', async (request, reply) => {
    const user = request.isAuthenticated() ? request.user : null
    return sendPage(request, reply, 'Home', views.homePage(user))
  })

  app.get('/login', async (request, reply) => {
    // safeNextUrl gives `?next=` only when it stays on this site, else '/'.
    const form = { csrfToken: reply.generateCsrf(), next: request.safeNextUrl('/') }
    return sendPage(request, reply, 'Log in', views.loginPage(form))
  })

  app.post('/login', { preHandler: app.csrfProtection }, async (request, reply) => {
    const username = field(request, 'username')
    const { user, passwordHash } = db.findLogin(username)
    const fail = (message: string): FastifyReply => {
      request.flash('error', message)
      const form = { csrfToken: reply.generateCsrf(), next: request.safeNextUrl('/'), username }
      return sendPage(request, reply, 'Log in', views.loginPage(form), 401)
    }
    // passwordMatches does the same work for unknown usernames (see passwords.ts).
    if (!await passwordMatches(passwordHash, field(request, 'password')) || user === null) {
      return fail('Wrong username or password.')
    }
    // loginUser returns false for a user whose isActive is false. It also drops
    // the CSRF secret (`dropOnLogin`): a token handed out before the login
    // (maybe to someone who planted this browser's session cookie) stops working.
    if (!await request.loginUser(user, { remember: field(request, 'remember') === 'yes' })) {
      return fail('This account is disabled. Ask an administrator to enable it.')
    }
    request.flash('success', `Welcome, ${user.displayName}!`)
    // The `next` hidden field comes back in the body; safeNextUrl checks it again.
    return reply.redirect(request.safeNextUrl('/'), 303)
  })

  app.post('/logout', { preHandler: app.csrfProtection }, async (request, reply) => {
    await request.logoutUser() // new session id, remember-me cookie cleared
    request.flash('message', 'You have been logged out.')
    return reply.redirect('/', 303)
  })

  // Only for logged-in users: `config.login: 'required'` sends anybody else to
  // the loginView, and makes `request.user` a `User` in the handler.
  app.get('/profile', { config: { login: 'required' } }, async (request, reply) => {
    const state = { user: request.user, fresh: request.loginFresh, remembered: request.loginRemembered }
    return sendPage(request, reply, 'Profile', views.profilePage(state))
  })

  /** `newApiKey`: shown once, right after it was created. */
  function sendSettings (request: FastifyRequest, reply: FastifyReply, user: User, newApiKey?: string): FastifyReply {
    const state = { user, csrfToken: reply.generateCsrf(), apiKeys: db.apiKeysOf(user.id), newApiKey }
    return sendPage(request, reply, 'Settings', views.settingsPage(state))
  }

  // Settings need a fresh login: after "remember me" restored the login,
  // `config.login: 'fresh'` sends the user to the refreshView first.
  app.get('/settings', { config: { login: 'fresh' } }, async (request, reply) => sendSettings(request, reply, request.user))

  // app.csrfProtection is typed for any route, and TypeScript infers a route's
  // config from all of its options: next to it, the route's config goes in its
  // type arguments too, else `request.user` widens to the user or the anonymous
  // user. (The compiler checks that `config` says the same.)
  app.post<RouteGenericInterface, { login: 'fresh' }>('/settings', { config: { login: 'fresh' }, preHandler: app.csrfProtection }, async (request, reply) => {
    const user = request.user
    switch (field(request, 'action')) {
      case 'change-password':
        await changePassword(request, user)
        return reply.redirect('/settings', 303)
      case 'create-api-key':
        return sendSettings(request, reply, user, db.createApiKey(user.id))
      case 'revoke-api-key':
        db.deleteApiKey(user.id, Number(field(request, 'keyId')))
        request.flash('success', 'The API key was revoked.')
        return reply.redirect('/settings', 303)
      default:
        return sendPage(request, reply, 'Settings', views.errorPage('Unknown action.'), 400)
    }
  })

  async function changePassword (request: FastifyRequest, user: User): Promise<void> {
    const newPassword = field(request, 'newPassword')
    const { passwordHash } = db.findLogin(user.username)
    if (!await passwordMatches(passwordHash, field(request, 'currentPassword'))) {
      request.flash('error', 'Your current password is not correct.')
      return
    }
    if (newPassword.length < MIN_PASSWORD_LENGTH || newPassword.length > MAX_PASSWORD_LENGTH) {
      request.flash('error', `The new password needs ${MIN_PASSWORD_LENGTH} to ${MAX_PASSWORD_LENGTH} characters.`)
      return
    }
    // Bumps the user's session version: every session and remember-me cookie
    // of this user is logged out, this one included...
    db.changePassword(user.id, await hashPassword(newPassword))
    // (The other logins would end at their next request; revoked now, they
    // leave the devices page at once.)
    await request.revokeOtherLogins()
    // ...so log in again with the updated user to keep this session (and its
    // remember-me cookie, if it had one) under the new version.
    // (The user is gone only if the account was deleted meanwhile: then it stays logged out.)
    const updated = db.findUserById(user.id)
    if (updated === null) return
    await request.loginUser(updated, { remember: request.loginRemembered })
    request.flash('success', 'Your password was changed. Every other session was logged out.')
  }

  // Your devices: every login of this user (a record in the login store),
  // with where and when, this one marked. Seeing them needs a login...
  app.get('/devices', { config: { login: 'required' } }, async (request, reply) => {
    const state = { logins: await request.listLogins(), csrfToken: reply.generateCsrf(), fresh: request.loginFresh }
    return sendPage(request, reply, 'Your devices', views.devicesPage(state))
  })

  // ...signing them out needs a fresh one: a copied remember-me cookie gives
  // a login that is not fresh, and it must not sign the owner out of every
  // device (or remove itself from the list) without the password. The
  // refreshView asks for it, then comes back to GET /devices.
  // (The type arguments: see POST /settings.)
  app.post<RouteGenericInterface, { login: 'fresh' }>('/devices', { config: { login: 'fresh' }, preHandler: app.csrfProtection }, async (request, reply) => {
    switch (field(request, 'action')) {
      case 'sign-out': {
        const loginId = field(request, 'loginId')
        const current = loginId === request.loginId
        // false for an id that is not one of this user's logins (any more).
        if (!await request.revokeLogin(loginId)) {
          request.flash('error', 'That device was not found: it may have signed out already.')
        } else if (current) {
          // Revoking this login logs this browser out, as POST /logout does.
          request.flash('message', 'You have been logged out.')
          return reply.redirect('/', 303)
        } else {
          request.flash('success', 'The device was signed out.')
        }
        return reply.redirect('/devices', 303)
      }
      case 'sign-out-others': {
        const count = await request.revokeOtherLogins()
        request.flash('success', count === 0 ? 'No other device was signed in.' : `Signed out ${count} other device${count === 1 ? '' : 's'}.`)
        return reply.redirect('/devices', 303)
      }
      default:
        return sendPage(request, reply, 'Your devices', views.errorPage('Unknown action.'), 400)
    }
  })

  // The refreshView: type the password again, then confirmLogin makes the login fresh.
  app.get('/reauthenticate', { config: { login: 'required' } }, async (request, reply) => {
    const state = { user: request.user, csrfToken: reply.generateCsrf(), next: request.safeNextUrl('/') }
    return sendPage(request, reply, 'Confirm your password', views.reauthenticatePage(state))
  })

  // (The type arguments: see POST /settings.)
  app.post<RouteGenericInterface, { login: 'required' }>('/reauthenticate', { config: { login: 'required' }, preHandler: app.csrfProtection }, async (request, reply) => {
    const user = request.user
    const { passwordHash } = db.findLogin(user.username)
    if (!await passwordMatches(passwordHash, field(request, 'password'))) {
      request.flash('error', 'Wrong password.')
      const state = { user, csrfToken: reply.generateCsrf(), next: request.safeNextUrl('/') }
      return sendPage(request, reply, 'Confirm your password', views.reauthenticatePage(state), 401)
    }
    await request.confirmLogin()
    return reply.redirect(request.safeNextUrl('/'), 303)
  })

  // The JSON API, guarded like the pages. Its clients get a 401 with a JSON
  // body, never the login page (the loginView gives API requests none).
  await app.register(async function api (api) {
    api.addHook('onRequest', async (_request, reply) => {
      reply.header('cache-control', 'private, no-store')
    })
    // The guard's FST_LOGIN_UNAUTHORIZED in this API's words; any other error
    // goes on to the app's error handler.
    api.setErrorHandler(async (error, _request, reply) => {
      if (!(error instanceof FST_LOGIN_UNAUTHORIZED)) throw error
      return reply.code(401).header('www-authenticate', 'Bearer').send({
        error: 'Unauthorized', message: 'Send an API key: Authorization: Bearer <key>'
      })
    })
    api.get('/me', { config: { login: 'required' } }, async (request) => {
      const { id, username, displayName } = request.user
      return { id, username, displayName }
    })
  }, { prefix: '/api' })

  return app
}
