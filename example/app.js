// The example application: every fastify-login feature, used the way a
// careful team would. `buildApp(options)` returns the Fastify instance
// (server.js starts it; the tests call it with a temporary data folder).
import { mkdirSync } from 'node:fs'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifyCsrfProtection from '@fastify/csrf-protection'
import fastifyFlash from '@fastify/flash'
import fastifyFormbody from '@fastify/formbody'
import fastifySession from '@fastify/session'
import fastifyLogin from 'fastify-login'
import { loadSecrets } from './config.js'
import { openDatabase } from './db.js'
import { hashPassword, passwordMatches } from './passwords.js'
import { openRedisSessionStore, SESSION_STORE_UNAVAILABLE } from './redis-store.js'
import { SqliteSessionStore } from './session-store.js'
import * as views from './views.js'

const MIN_PASSWORD_LENGTH = 8
const MAX_PASSWORD_LENGTH = 200

/**
 * @typedef {import('fastify').FastifyRequest} Request
 * @typedef {import('fastify').FastifyReply} Reply
 * @typedef {import('./db.js').User} User
 *
 * @typedef {object} AppOptions
 * @property {string} dataDir folder of the SQLite file and the generated secrets
 * @property {string} [sessionSecret] default: generated and kept in dataDir
 * @property {string} [loginSecret] default: generated and kept in dataDir
 * @property {string} [redisUrl] keep sessions in this Redis (several instances); default: in the SQLite file
 * @property {'basic' | 'strong'} [sessionProtection] default 'basic'
 * @property {boolean} [trustProxy] behind a reverse proxy (default false)
 * @property {boolean | object} [logger] Fastify's logger option (default false)
 */

/** A form field as a string: '' when it is missing or was sent twice. */
function field (/** @type {Request} */ request, /** @type {string} */ name) {
  const value = /** @type {Record<string, unknown> | undefined} */ (request.body)?.[name]
  return typeof value === 'string' ? value : ''
}

/** Inactive users cannot log in, and their existing sessions and API keys stop working. */
const activeOnly = (/** @type {User | null} */ user) => user?.isActive ? user : null

/** @param {AppOptions} options */
export async function buildApp (options) {
  mkdirSync(options.dataDir, { recursive: true })
  const secrets = loadSecrets(options.dataDir, options)
  const db = await openDatabase(options.dataDir)

  const app = Fastify({ logger: options.logger ?? false, trustProxy: options.trustProxy ?? false })
  // Sessions: in Redis when several instances share them (see redis-store.js),
  // else in the SQLite file. Users stay in SQLite either way.
  const sessionStore = options.redisUrl
    ? await openRedisSessionStore(options.redisUrl, app.log)
    : new SqliteSessionStore(db.db)
  app.addHook('onClose', async () => {
    await sessionStore.close()
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
    store: sessionStore,
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
      if (!request.url.startsWith('/api/') || !header?.startsWith('Bearer ')) return null
      return activeOnly(db.findUserByApiKey(header.slice('Bearer '.length)))
    },
    loginView: '/login', // where requireLogin sends anonymous visitors (with ?next=)
    refreshView: '/reauthenticate', // where requireFreshLogin sends logins that are not fresh
    freshMaxAge: 15 * 60, // a typed password stays "fresh" for 15 minutes
    // 'basic', the default: a session presented by another client (other
    // address or User-Agent) stays logged in but is no longer fresh.
    // (SESSION_PROTECTION=strong: that session is logged out instead.)
    sessionProtection: options.sessionProtection ?? 'basic',
    // Changes when the password changes: every session and remember-me
    // cookie made before then stops working.
    sessionVersion: (user) => String(/** @type {User} */ (user).sessionVersion),
    remember: { duration: 30 * 24 * 60 * 60 } // "remember me" lasts 30 days
  })

  // Lifecycle events: keep "last login" up to date, and log what matters.
  // (User ids and cookie values stay out of the logs.)
  app.loginManager.on('userLoggedIn', ({ user }) => db.recordLogin(/** @type {User} */ (user).id))
  app.loginManager.on('sessionProtected', ({ request }) => {
    request.log.warn('session used by a different client: the login is no longer fresh')
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
   * @param {Request} request
   * @param {Reply} reply
   * @returns {views.Flash[]}
   */
  function takeFlashes (request, reply) {
    if (typeof request.session?.get !== 'function') return []
    const pending = request.session.get('flash')
    if (pending === undefined || Object.keys(pending).length === 0) return []
    const messages = /** @type {Record<string, string[]>} */ (reply.flash())
    return Object.entries(messages).flatMap(([category, texts]) => texts.map((text) => ({ category, text })))
  }

  /**
   * Sends `content` in the page layout.
   * @param {Request} request
   * @param {Reply} reply
   * @param {string} title
   * @param {ReturnType<typeof views.html>} content
   * @param {number} [status]
   */
  function sendPage (request, reply, title, content, status = 200) {
    const user = request.isAuthenticated() ? /** @type {User} */ (request.user) : null
    // The layout's logout button is a form, and forms carry a CSRF token.
    const csrfToken = user === null ? '' : reply.generateCsrf()
    const page = views.layout({ user, csrfToken, flashes: takeFlashes(request, reply) }, title, content)
    return reply.code(status).type('text/html; charset=utf-8').send(page)
  }

  // Error pages (set before the routes: a route keeps the handlers set when it is added).
  app.setNotFoundHandler(async (request, reply) => {
    return sendPage(request, reply, 'Not found', views.errorPage('There is no page at this address.'), 404)
  })

  app.setErrorHandler(async (error, request, reply) => {
    if (error.code === SESSION_STORE_UNAVAILABLE) return sendStoreUnavailable(request, reply)
    const status = (error.statusCode ?? 500) >= 400 ? (error.statusCode ?? 500) : 500
    if (status >= 500) request.log.error(error)
    const message = error.code?.startsWith('FST_CSRF_')
      ? 'This form has expired. Go back, reload the page and try again.'
      : status >= 500 ? 'Something went wrong.' : error.message
    if (!(request.headers.accept ?? '').includes('text/html')) return reply.code(status).send({ error: message })
    return sendPage(request, reply, 'Error', views.errorPage(message), status)
  })

  /**
   * Redis is down (redis-store.js logs that once): a 503 that uses nothing
   * of the session, so it shows no user, no flash message and no form.
   * @param {Request} request
   * @param {Reply} reply
   */
  function sendStoreUnavailable (request, reply) {
    const message = 'Logins are unavailable for a moment. Try again in a few seconds.'
    // Nothing to save: without this, @fastify/session would try to write the
    // session to Redis again when this reply is sent (and fail).
    request.session = null
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

  app.get('/', async (request, reply) => {
    const user = request.isAuthenticated() ? /** @type {User} */ (request.user) : null
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
    /** @param {string} message */
    const fail = (message) => {
      request.flash('error', message)
      const form = { csrfToken: reply.generateCsrf(), next: request.safeNextUrl('/'), username }
      return sendPage(request, reply, 'Log in', views.loginPage(form), 401)
    }
    // passwordMatches does the same work for unknown usernames (see passwords.js).
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

  app.get('/profile', { preHandler: app.requireLogin }, async (request, reply) => {
    const state = { user: /** @type {User} */ (request.user), fresh: request.loginFresh, remembered: request.loginRemembered }
    return sendPage(request, reply, 'Profile', views.profilePage(state))
  })

  /**
   * @param {Request} request
   * @param {Reply} reply
   * @param {string} [newApiKey] shown once, right after it was created
   */
  function sendSettings (request, reply, newApiKey) {
    const user = /** @type {User} */ (request.user)
    const state = { user, csrfToken: reply.generateCsrf(), apiKeys: db.apiKeysOf(user.id), newApiKey }
    return sendPage(request, reply, 'Settings', views.settingsPage(state))
  }

  // Settings need a fresh login: after "remember me" restored the login,
  // requireFreshLogin sends the user to /reauthenticate first.
  app.get('/settings', { preHandler: app.requireFreshLogin }, async (request, reply) => sendSettings(request, reply))

  app.post('/settings', { preHandler: [app.requireFreshLogin, app.csrfProtection] }, async (request, reply) => {
    const user = /** @type {User} */ (request.user)
    switch (field(request, 'action')) {
      case 'change-password':
        await changePassword(request, user)
        return reply.redirect('/settings', 303)
      case 'create-api-key':
        return sendSettings(request, reply, db.createApiKey(user.id))
      case 'revoke-api-key':
        db.deleteApiKey(user.id, Number(field(request, 'keyId')))
        request.flash('success', 'The API key was revoked.')
        return reply.redirect('/settings', 303)
      default:
        return sendPage(request, reply, 'Settings', views.errorPage('Unknown action.'), 400)
    }
  })

  /**
   * @param {Request} request
   * @param {User} user
   */
  async function changePassword (request, user) {
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
    // ...so log in again with the updated user to keep this session (and its
    // remember-me cookie, if it had one) under the new version.
    const updated = /** @type {User} */ (db.findUserById(user.id))
    await request.loginUser(updated, { remember: request.loginRemembered })
    request.flash('success', 'Your password was changed. Every other session was logged out.')
  }

  // The refreshView: type the password again, then confirmLogin makes the login fresh.
  app.get('/reauthenticate', { preHandler: app.requireLogin }, async (request, reply) => {
    const state = { user: /** @type {User} */ (request.user), csrfToken: reply.generateCsrf(), next: request.safeNextUrl('/') }
    return sendPage(request, reply, 'Confirm your password', views.reauthenticatePage(state))
  })

  app.post('/reauthenticate', { preHandler: [app.requireLogin, app.csrfProtection] }, async (request, reply) => {
    const user = /** @type {User} */ (request.user)
    const { passwordHash } = db.findLogin(user.username)
    if (!await passwordMatches(passwordHash, field(request, 'password'))) {
      request.flash('error', 'Wrong password.')
      const state = { user, csrfToken: reply.generateCsrf(), next: request.safeNextUrl('/') }
      return sendPage(request, reply, 'Confirm your password', views.reauthenticatePage(state), 401)
    }
    await request.confirmLogin()
    return reply.redirect(request.safeNextUrl('/'), 303)
  })

  // The JSON API. Its clients get a 401 with a JSON body, never the login page.
  await app.register(async function api (api) {
    api.addHook('preHandler', async (request, reply) => {
      reply.header('cache-control', 'private, no-store')
      if (request.isAuthenticated()) return
      await reply.code(401).header('www-authenticate', 'Bearer').send({
        error: 'Unauthorized', message: 'Send an API key: Authorization: Bearer <key>'
      })
      return reply
    })
    api.get('/me', async (request) => {
      const user = /** @type {User} */ (request.user)
      return { id: user.id, username: user.username, displayName: user.displayName }
    })
  }, { prefix: '/api' })

  return app
}
