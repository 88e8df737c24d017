// Corners the feature files do not reach: sessions that are missing or odd,
// callbacks that misbehave, and the less common URL forms.
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin, { type FastifyLoginOptions, type LoginUser } from '../lib/index.js'
import { loginAs } from '../lib/testing.js'
import { resolveOptions } from '../lib/options.js'
import { sessionOf } from '../lib/session.js'
import { buildApp, CookieJar, LOGIN_SECRET, SESSION_SECRET, User } from './helpers.js'

const ann = new User('1', 'Ann')

/** An app whose session cookie only covers /app, so /api has no usable session. */
async function pathScopedApp (login: Partial<FastifyLoginOptions> = {}) {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false, path: '/app' }, saveUninitialized: false })
  await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => ann, ...login } as FastifyLoginOptions)
  app.post('/api/login', async (request) => request.loginUser(ann as unknown as LoginUser))
  app.post('/api/confirm', async (request) => { await request.confirmLogin(); return 'confirmed' })
  app.post('/api/logout', async (request) => request.logoutUser())
  app.get('/api/fresh', { preHandler: app.requireFreshLogin }, async () => 'fresh')
  return app
}

t.test('loginUser outside the session cookie path rejects with FST_LOGIN_NO_SESSION', async (t) => {
  const app = await pathScopedApp()
  const response = await app.inject({ method: 'POST', url: '/api/login' })
  t.equal(response.statusCode, 500)
  t.equal(response.json().code, 'FST_LOGIN_NO_SESSION')
  t.equal(response.headers['set-cookie'], undefined)
})

t.test('confirmLogin outside the session cookie path rejects with FST_LOGIN_NO_SESSION', async (t) => {
  const app = await pathScopedApp()
  const response = await app.inject({ method: 'POST', url: '/api/confirm' })
  t.equal(response.json().code, 'FST_LOGIN_NO_SESSION')
})

t.test('logoutUser without a usable session still answers true', async (t) => {
  const app = await pathScopedApp()
  const response = await app.inject({ method: 'POST', url: '/api/logout' })
  t.equal(response.statusCode, 200)
  t.equal(response.body, 'true')
})

t.test('a requestLoader user without a session is never fresh', async (t) => {
  const app = await pathScopedApp({ requestLoader: (request) => (request.headers['x-key'] === 'k' ? ann as unknown as LoginUser : null) })
  const response = await app.inject({ url: '/api/fresh', headers: { 'x-key': 'k', accept: 'application/json' } })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'FST_LOGIN_NEEDS_REFRESH')
})

t.test('an anonymous request to a fresh-only route is unauthorized, not needs-refresh', async (t) => {
  const { app } = await buildApp()
  const response = await app.inject({ url: '/fresh', headers: { accept: 'application/json' } })
  t.equal(response.statusCode, 401)
  t.equal(response.json().code, 'FST_LOGIN_UNAUTHORIZED')
})

t.test('a session id that is not a string is dropped without calling the loader', async (t) => {
  const { app, loaded } = await buildApp({ routes: false })
  app.post('/corrupt', { config: { login: 'optional' } }, async (request) => {
    (request as unknown as { session: { set (key: string, value: unknown): void } }).session.set('_user_id', 42)
    return 'stored'
  })
  app.get('/who', async (request) => ({
    authenticated: request.isAuthenticated(),
    stored: (request as unknown as { session: { get (key: string): unknown } }).session.get('_user_id') ?? null
  }))
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/corrupt' })
  t.same((await jar.inject('/who')).json(), { authenticated: false, stored: null })
  t.same(loaded, [])
})

t.test('a sessionIdentifier that throws fails the request through the error handler', async (t) => {
  let fail = false
  const { app } = await buildApp({
    login: {
      sessionIdentifier: () => {
        if (fail) throw new Error('identifier unavailable')
        return 'client'
      }
    }
  })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  fail = true
  const response = await jar.inject('/')
  t.equal(response.statusCode, 500)
  t.equal(response.json().message, 'identifier unavailable')
})

t.test('loginUser rejects a user that is not an object', async (t) => {
  const { app } = await buildApp({ routes: false })
  app.post('/bad', async (request) => request.loginUser('1' as unknown as LoginUser))
  const response = await app.inject({ method: 'POST', url: '/bad' })
  t.equal(response.json().code, 'FST_LOGIN_INVALID_USER_ID')
  t.match(response.json().message, /not an object/)
})

t.test('loginUser rejects a numeric id that is not finite, and says so', async (t) => {
  const { app } = await buildApp({ routes: false })
  app.post('/bad', async (request) => request.loginUser({ id: Number.NaN }))
  const response = await app.inject({ method: 'POST', url: '/bad' })
  t.equal(response.json().code, 'FST_LOGIN_INVALID_USER_ID')
  t.match(response.json().message, /its id is the number NaN/)
})

t.test('loginUser rejects a user whose getUserId throws', async (t) => {
  const { app } = await buildApp({
    routes: false,
    login: { getUserId: () => { throw new Error('no id here') } }
  })
  app.post('/bad', async (request) => request.loginUser(ann as unknown as LoginUser))
  const response = await app.inject({ method: 'POST', url: '/bad' })
  t.equal(response.json().code, 'FST_LOGIN_INVALID_USER_ID')
  t.match(response.json().message, /reading its id threw/)
})

t.test('a sessionVersion that returns a non-string rejects loginUser with FST_LOGIN_INVALID_OPTION', async (t) => {
  const { app } = await buildApp({ login: { sessionVersion: () => 7 as unknown as string } })
  const response = await app.inject({ method: 'POST', url: '/login/1' })
  t.equal(response.json().code, 'FST_LOGIN_INVALID_OPTION')
  t.equal(response.headers['set-cookie'], undefined)
})

t.test('the default identifier works for a client without a User-Agent', async (t) => {
  const { app } = await buildApp({ login: { sessionProtection: 'strong' } })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1', headers: { 'user-agent': '' } })
  t.equal((await jar.inject({ url: '/', headers: { 'user-agent': '' } })).json().authenticated, true)
  t.equal((await jar.inject({ url: '/', headers: { 'user-agent': 'other' } })).json().authenticated, false)
})

t.test('options must be an object', async (t) => {
  t.throws(() => resolveOptions(null as unknown as FastifyLoginOptions), { code: 'FST_LOGIN_INVALID_OPTION' })
})

t.test('a loginView that is not a URL fails register', async (t) => {
  await t.rejects(buildApp({ login: { loginView: 'http://[bad' } }), { code: 'FST_LOGIN_INVALID_OPTION', message: /loginView/ })
})

t.test('a scheme-relative login view stays scheme-relative', async (t) => {
  const { app } = await buildApp()
  t.equal(app.loginManager.loginUrl('//auth.example/login', 'https://app.example/x?y=1'), '//auth.example/login?next=https%3A%2F%2Fapp.example%2Fx%3Fy%3D1')
})

t.test('loginAs ignores cookies the app deletes on the same response', async (t) => {
  const { app } = await buildApp({ routes: false })
  app.addHook('onSend', async (_request, reply) => {
    reply.header('set-cookie', ['stale=; Path=/', 'old=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT', 'gone=1; Max-Age=0'])
  })
  const cookie = await loginAs(app, ann as unknown as LoginUser)
  t.match(cookie, /^sessionId=/)
  t.notMatch(cookie, /stale|old|gone/)
})

t.test('an error destroying the emptied session at logout fails the logout', async (t) => {
  const data = new Map<string, unknown>()
  let destroys = 0
  const store = {
    get (id: string, callback: (error: unknown, session?: unknown) => void) { callback(null, data.get(id)) },
    set (id: string, session: unknown, callback: (error?: unknown) => void) { data.set(id, session); callback() },
    destroy (id: string, callback: (error?: unknown) => void) {
      destroys++
      // The old id goes; removing the fresh empty one fails.
      if (destroys === 3) { callback(new Error('store down')); return }
      data.delete(id)
      callback()
    }
  }
  const { app } = await buildApp({ session: { store } })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  const response = await jar.inject({ method: 'POST', url: '/logout' })
  t.equal(response.statusCode, 500)
  t.equal(destroys, 3)
})

t.test('an anonymous browser on a fresh-only route goes to the login view, not the refresh view', async (t) => {
  const { app } = await buildApp({ login: { loginView: '/login', refreshView: '/reauthenticate' } })
  const response = await app.inject('/fresh')
  t.equal(response.statusCode, 302)
  t.equal(response.headers.location, '/login?next=%2Ffresh')
})

t.test('config.login works on routes added before the plugin has loaded', async (t) => {
  const app = Fastify()
  app.register(fastifyCookie)
  app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => ann as unknown as LoginUser, loginView: '/login' })
  app.get('/required', { config: { login: 'required' } }, async () => 'required')
  app.get('/fresh', { config: { login: 'fresh' } }, async () => 'fresh')
  app.get('/open', async () => 'open')
  app.get('/invalid', { config: { login: 'sometimes' as unknown as false } }, async () => 'invalid')
  app.post('/login', async (request) => request.loginUser(ann as unknown as LoginUser, { fresh: false }))
  const jar = new CookieJar(app)
  t.equal((await jar.inject('/required')).statusCode, 302)
  t.equal((await jar.inject('/open')).statusCode, 200)
  t.equal((await jar.inject('/invalid')).json().code, 'FST_LOGIN_INVALID_OPTION')
  t.equal((await jar.inject('/nowhere')).statusCode, 404)
  await jar.inject({ method: 'POST', url: '/login' })
  t.equal((await jar.inject('/required')).body, 'required')
  t.equal((await jar.inject({ url: '/fresh', headers: { accept: 'application/json' } })).json().code, 'FST_LOGIN_NEEDS_REFRESH')
})

t.test('loginRequiredByDefault guards routes declared after an un-awaited register', async (t) => {
  const app = Fastify()
  app.register(fastifyCookie)
  app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => ann as unknown as LoginUser, loginRequiredByDefault: true })
  app.get('/private', async () => 'private')
  app.get('/public', { config: { login: 'optional' } }, async () => 'public')
  app.get('/static', { config: { login: false } }, async () => 'static')
  app.post('/login', { config: { login: 'optional' } }, async (request) => request.loginUser(ann as unknown as LoginUser))
  const jar = new CookieJar(app)
  t.equal((await jar.inject('/private')).statusCode, 401)
  t.equal((await jar.inject('/public')).statusCode, 200)
  t.equal((await jar.inject('/static')).statusCode, 200)
  t.equal((await jar.inject('/nowhere')).statusCode, 404)
  await jar.inject({ method: 'POST', url: '/login' })
  const privatePage = await jar.inject('/private')
  t.equal(privatePage.body, 'private')
  t.equal(privatePage.headers['cache-control'], 'private, no-store', 'a fresh login still gets a private reply')
})

t.test('routes of a plugin registered before fastify-login work, and loginRequiredByDefault guards them', async (t) => {
  for (const loginRequiredByDefault of [false, true]) {
    t.test(`loginRequiredByDefault ${loginRequiredByDefault}`, async (t) => {
      const app = Fastify()
      await app.register(fastifyCookie)
      await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
      await app.register(async (early) => {
        early.get('/early-page', async () => 'early page')
        early.get('/early-open', { config: { login: false } }, async () => 'early open')
      })
      await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => ann as unknown as LoginUser, loginRequiredByDefault })
      app.post('/login', { config: { login: 'optional' } }, async (request) => request.loginUser(ann as unknown as LoginUser))
      const jar = new CookieJar(app)
      const anonymous = await jar.inject('/early-page')
      t.equal(anonymous.statusCode, loginRequiredByDefault ? 401 : 200, 'no 500 on a route of an earlier plugin')
      t.equal((await jar.inject('/early-open')).body, 'early open')
      await jar.inject({ method: 'POST', url: '/login' })
      const loggedIn = await jar.inject('/early-page')
      t.equal(loggedIn.body, 'early page')
      if (loginRequiredByDefault) t.equal(loggedIn.headers['cache-control'], 'private, no-store')
    })
  }
})

t.test('an onRoute hook in a plugin\'s scope opts its routes out of loginRequiredByDefault', async (t) => {
  // What the README shows for plugins whose route options the app does not write (static files).
  const publicScope = async (scope: FastifyInstance) => {
    scope.addHook('onRoute', (route) => { route.config = { ...route.config, login: false } })
    scope.get('/assets/app.css', async () => 'body {}')
  }
  for (const order of ['before', 'after'] as const) {
    t.test(`registered ${order} fastify-login`, async (t) => {
      const app = Fastify()
      await app.register(fastifyCookie)
      await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
      if (order === 'before') await app.register(publicScope)
      await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => ann as unknown as LoginUser, loginRequiredByDefault: true })
      if (order === 'after') await app.register(publicScope)
      app.get('/private', async () => 'private')
      t.equal((await app.inject('/assets/app.css')).body, 'body {}')
      t.equal((await app.inject('/private')).statusCode, 401, 'control: the default still guards')
    })
  }
})

t.test('loginRequiredByDefault also guards routes registered before the plugin, unless they opt out', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  app.get('/unmarked', async () => 'unmarked')
  app.get('/health', { config: { login: false } }, async () => 'ok')
  app.get('/early', { config: { login: 'required' } }, async () => 'early')
  await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => ann as unknown as LoginUser, loginRequiredByDefault: true })
  app.get('/private', async () => 'private')
  app.get('/public', { config: { login: 'optional' } }, async () => 'public')
  t.equal((await app.inject('/unmarked')).statusCode, 401, 'fails closed')
  t.equal((await app.inject('/health')).statusCode, 200)
  t.equal((await app.inject('/early')).statusCode, 401)
  t.equal((await app.inject('/private')).statusCode, 401)
  t.equal((await app.inject('/public')).statusCode, 200)
})

t.test('a persistent session stays persistent through the id rotation at login', async (t) => {
  const { app } = await buildApp({ routes: false, login: { sessionProtection: 'strong' } })
  app.post('/login', async (request) => {
    (request as unknown as { session: { cookie: { maxAge: number } } }).session.cookie.maxAge = 86_400_000
    return request.loginUser(ann as unknown as LoginUser)
  })
  app.get('/who', async (request) => ({ authenticated: request.isAuthenticated(), fresh: request.loginFresh }))
  const jar = new CookieJar(app)
  const login = await jar.inject({ method: 'POST', url: '/login' })
  t.match(String(login.headers['set-cookie']), /Expires=/)
  // Strong protection treats a persistent session like basic: not fresh, still logged in.
  t.same((await jar.inject({ url: '/who', headers: { 'user-agent': 'another browser' } })).json(), { authenticated: true, fresh: false })
})

t.test('remember cookie attributes that a Set-Cookie header cannot carry fail register', async (t) => {
  for (const remember of [{ cookieName: 'bad name' }, { path: 'x;y' }, { path: 'relative' }, { domain: 'ex ample.com' }]) {
    await t.rejects(buildApp({ login: { remember } }), { code: 'FST_LOGIN_INVALID_OPTION' }, JSON.stringify(remember))
  }
})

t.test('an empty login message flashes nothing', async (t) => {
  const { app } = await buildApp({ flash: true, login: { loginView: '/login', loginMessage: '' } })
  app.get('/flashes', { config: { login: 'optional' } }, async (_request, reply) => reply.flash())
  const jar = new CookieJar(app)
  t.equal((await jar.inject('/protected')).statusCode, 302)
  t.same((await jar.inject('/flashes')).json(), {})
})

t.test('an inactive user without an id is refused, not an error', async (t) => {
  const { app } = await buildApp({ routes: false })
  app.post('/inactive', async (request) => request.loginUser({ isActive: false } as unknown as LoginUser))
  t.equal((await app.inject({ method: 'POST', url: '/inactive' })).body, 'false')
})

t.test('a session is used only when it has get and set, whatever was seen before', async (t) => {
  // sessionOf remembers the prototypes of session classes; plain objects must never pass on that account.
  const requestWith = (session: unknown) => ({ session }) as unknown as FastifyRequest
  class FakeSession {
    get (): unknown { return undefined }
    set (): void {}
  }
  const real = new FakeSession()
  t.equal(sessionOf(requestWith(real)), real)
  const second = new FakeSession()
  t.equal(sessionOf(requestWith(second)), second, 'a second one of the class')
  const proxied = new Proxy(new FakeSession(), {})
  t.equal(sessionOf(requestWith(proxied)), proxied, 'a Proxy over a session, as @fastify/secure-session hands out')
  const own = { get () { return undefined }, set () {} }
  t.equal(sessionOf(requestWith(own)), own, 'an object with its own methods')
  t.equal(sessionOf(requestWith({})), null, 'a plain object afterwards is still refused')
  t.equal(sessionOf(requestWith({ get () { return undefined } })), null, 'get without set')
  t.equal(sessionOf(requestWith(Object.create(null))), null, 'no prototype')
  t.equal(sessionOf(requestWith(null)), null)
  t.equal(sessionOf(requestWith('session')), null)
})
