// The app of every benchmark scenario, shared by bench/server.js (over HTTP)
// and bench/inject.js (in-process). Each loads only the plugins it measures,
// with the same users, secrets and session options.
import { createHash } from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import {
  BUDGET_TIMEOUTS, BoundedMap, SECURE_SESSION_OPTIONS, SESSION_OPTIONS, LOGIN_SECRET, TIMEOUTS, checkCredentials, findUser, publicUser
} from './common.js'

/** Requests answered successfully by a handler (the only thing a round counts). */
let completed = 0

/** How many requests the handlers of this process have answered successfully. */
export function completedRequests () {
  return completed
}

/** Sessions written to @fastify/session's store (`store.set`) by this process. */
let sessionWrites = 0

export function sessionWritesCounted () {
  return sessionWrites
}

const unauthorized = { error: 'Unauthorized' }

async function registerSession (app, kind) {
  if (kind === 'secure-session') {
    const { default: fastifySecureSession } = await import('@fastify/secure-session')
    await app.register(fastifySecureSession, SECURE_SESSION_OPTIONS)
  } else {
    const { default: fastifySession, MemoryStore } = await import('@fastify/session')
    // Counts its writes; a GET that writes nothing never calls it.
    class CountingStore extends MemoryStore {
      set (sessionId, session, callback) {
        sessionWrites++
        super.set(sessionId, session, callback)
      }
    }
    await app.register(fastifySession, { ...SESSION_OPTIONS, store: new CountingStore(new BoundedMap()) })
  }
}

/** Fastify and a JSON route: the floor of this stack. */
async function buildBare () {
  const app = Fastify()
  app.get('/', async () => {
    completed++
    return { hello: 'world' }
  })
  return app
}

/** What users write by hand: the user id in @fastify/session, looked up per request. */
async function buildHand () {
  const app = Fastify()
  await app.register(fastifyCookie)
  await registerSession(app, 'session')
  app.post('/login', async (request, reply) => {
    const user = checkCredentials(request.body)
    if (user === null) return reply.code(401).send(unauthorized)
    // Rotate the id against session fixation, as the other two do.
    await request.session.regenerate()
    request.session.set('userId', user.id)
    completed++
    return { ok: true }
  })
  app.get('/me', async (request, reply) => {
    const id = request.session.get('userId')
    const user = typeof id === 'string' ? await findUser(id) : null
    if (user === null) return reply.code(401).send(unauthorized)
    completed++
    return publicUser(user)
  })
  return app
}

/**
 * Flask-Login's client identifier, SHA-512 of the address and the User-Agent,
 * memoised as fastify-login memoises it; `encoding` 'hex' is Flask-Login's
 * 128 characters, 'base64url' 86. Written out here: a baseline must not call lib/.
 */
function memoisedIdentifier (encoding) {
  const identifiers = new Map()
  return (request) => {
    const source = `${request.ip}|${request.headers['user-agent'] ?? ''}`
    let identifier = identifiers.get(source)
    if (identifier === undefined) {
      identifier = createHash('sha512').update(source, 'utf8').digest(encoding)
      identifiers.set(source, identifier)
    }
    return identifier
  }
}

/**
 * A diagnostic, not a target's baseline: the `hand` app doing by hand the
 * per-request work the SPEC gives fastify-login on the same data. It keeps
 * Flask-Login's keys in the session (`_user_id`, `_fresh` and the 128-hex
 * `_id`), compares the client identifier (memoised SHA-512, as fastify-login
 * does), and sends the two cache headers. `login` / `hand-flask` is what the
 * plugin itself costs; `hand-flask` / `hand` is what that session content and
 * those headers cost the session layer, whoever writes the code.
 */
async function buildHandFlask (kind, { cacheHeaders = true } = {}) {
  const app = Fastify()
  await app.register(fastifyCookie)
  await registerSession(app, kind)
  const identifierOf = memoisedIdentifier('hex')
  app.post('/login', async (request, reply) => {
    const user = checkCredentials(request.body)
    if (user === null) return reply.code(401).send(unauthorized)
    // @fastify/secure-session has no id to rotate.
    if (kind === 'session') await request.session.regenerate()
    request.session.set('_user_id', user.id)
    request.session.set('_fresh', true)
    request.session.set('_id', identifierOf(request))
    if (cacheHeaders) reply.header('vary', 'Cookie')
    completed++
    return { ok: true }
  })
  app.get('/me', async (request, reply) => {
    if (cacheHeaders) reply.header('cache-control', 'private, no-store')
    const id = request.session.get('_user_id')
    if (typeof id !== 'string') return reply.code(401).send(unauthorized)
    if (request.session.get('_id') !== identifierOf(request) && request.session.get('_fresh') !== false) request.session.set('_fresh', false)
    const user = await findUser(id)
    if (user === null) return reply.code(401).send(unauthorized)
    if (cacheHeaders) reply.header('vary', 'Cookie')
    completed++
    return publicUser(user)
  })
  return app
}

/** @fastify/passport over either session plugin. */
async function buildPassport (kind) {
  const { default: fastifyPassport } = await import('@fastify/passport')
  const app = Fastify()
  await app.register(fastifyCookie)
  await registerSession(app, kind)
  fastifyPassport.registerUserSerializer(async (user) => user.id)
  fastifyPassport.registerUserDeserializer(async (id) => findUser(id))
  await app.register(fastifyPassport.initialize())
  await app.register(fastifyPassport.secureSession())
  app.post('/login', async (request, reply) => {
    const user = checkCredentials(request.body)
    if (user === null) return reply.code(401).send(unauthorized)
    await request.logIn(user)
    completed++
    return { ok: true }
  })
  const requireAuthenticated = async (request, reply) => {
    if (!request.isAuthenticated()) {
      reply.code(401).send(unauthorized)
      return reply
    }
  }
  app.get('/me', { preHandler: requireAuthenticated }, async (request) => {
    completed++
    return publicUser(request.user)
  })
  return app
}

/** fastify-login over either session plugin, with its defaults unless `options` says otherwise. */
async function buildLogin (kind, options = {}) {
  const { default: fastifyLogin } = await import('fastify-login')
  const app = Fastify()
  await app.register(fastifyCookie)
  await registerSession(app, kind)
  await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: findUser, ...options })
  app.post('/login', async (request, reply) => {
    const user = checkCredentials(request.body)
    if (user === null) return reply.code(401).send(unauthorized)
    await request.loginUser(user, { remember: request.body.remember === true })
    completed++
    return { ok: true }
  })
  app.get('/me', { preHandler: app.requireLogin }, async (request) => {
    completed++
    return publicUser(request.user)
  })
  return app
}

/** `login` or `login-secure` with a MemoryLoginStore. */
async function buildLoginWithStore (kind) {
  const { MemoryLoginStore } = await import('fastify-login')
  return buildLogin(kind, { loginStore: new MemoryLoginStore() })
}

/** `login` with its logins in the Redis of BENCH_REDIS_URL. */
async function buildLoginRedis () {
  const { createClient } = await import('redis')
  const { RedisLoginStore } = await import('fastify-login/redis')
  const client = createClient({ url: process.env.BENCH_REDIS_URL, disableOfflineQueue: true })
  await client.connect()
  const app = await buildLogin('session', { loginStore: new RedisLoginStore({ client, prefix: 'bench:' }) })
  // An anonymous page on the same app: it must cost Redis nothing.
  app.get('/public', async () => {
    completed++
    return { hello: 'world' }
  })
  app.addHook('onClose', () => client.close())
  return app
}

/** An anonymous page on the session stack, with or without fastify-login. */
async function buildAnon (withLogin) {
  const app = Fastify()
  await app.register(fastifyCookie)
  await registerSession(app, 'session')
  if (withLogin) {
    const { default: fastifyLogin } = await import('fastify-login')
    await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: findUser })
  }
  app.get('/public', async () => {
    completed++
    return { hello: 'world' }
  })
  return app
}

/** Scenario id → the app it runs (several scenarios measure different routes of one kind of app). */
export const BUILDERS = Object.freeze({
  bare: buildBare,
  hand: buildHand,
  passport: () => buildPassport('session'),
  login: () => buildLogin('session'),
  'hand-flask': () => buildHandFlask('session'),
  'passport-secure': () => buildPassport('secure-session'),
  'login-secure': () => buildLogin('secure-session'),
  'hand-flask-secure': () => buildHandFlask('secure-session'),
  'anon-with': () => buildAnon(true),
  'anon-without': () => buildAnon(false),
  'signin-login': () => buildLogin('session'),
  'signin-passport': () => buildPassport('session'),
  'signin-hand': buildHand,
  'signin-hand-flask': () => buildHandFlask('session'),
  restore: () => buildLogin('session'),
  // Issue 13: the same app as `login` / `login-secure` with both timeouts on.
  'login-timeouts': () => buildLogin('session', TIMEOUTS),
  'login-secure-timeouts': () => buildLogin('secure-session', TIMEOUTS),
  // Issue 12: the same app as `login` / `login-secure` with a MemoryLoginStore.
  'login-store': () => buildLoginWithStore('session'),
  'login-secure-store': () => buildLoginWithStore('secure-session'),
  // Issue 12: `login` with RedisLoginStore on BENCH_REDIS_URL (bench/redis-commands.js).
  'login-redis': buildLoginRedis,
  // Issue 13's write budget (harness.js `runWriteBudget`), not a timed scenario.
  'login-write-budget': () => buildLogin('session', BUDGET_TIMEOUTS),
  // Diagnostics, not in the default run: what session protection's hash costs.
  'login-noprotect': () => buildLogin('session', { sessionProtection: false }),
  'login-secure-noprotect': () => buildLogin('secure-session', { sessionProtection: false }),
  // Diagnostics: what the 128-character hex `_id` costs against the same
  // SHA-512 in base64url (86 characters), and what the cache headers cost.
  'login-b64': () => buildLogin('session', { sessionIdentifier: memoisedIdentifier('base64url') }),
  'login-secure-b64': () => buildLogin('secure-session', { sessionIdentifier: memoisedIdentifier('base64url') }),
  'hand-flask-noheaders': () => buildHandFlask('session', { cacheHeaders: false }),
  'hand-flask-secure-noheaders': () => buildHandFlask('secure-session', { cacheHeaders: false })
})

/** Builds the app of `scenario` (not listening). One app per process: @fastify/passport is a singleton. */
export async function buildApp (scenario) {
  const build = BUILDERS[scenario]
  if (build === undefined) throw new Error(`unknown scenario ${scenario}; known: ${Object.keys(BUILDERS).join(', ')}`)
  return build()
}
