// @fastify/secure-session: login, remember and logout through the one session
// adapter (which calls only get/set/regenerate), the limit of a stateless
// session (a copied cookie outlives logout) and how `sessionVersion` closes
// it; and `freshMaxAge` (Flask: test_confirm_login, login_fresh).
import t from 'tap'
import Fastify, { type FastifyInstance, type FastifyRequest, type LightMyRequestResponse } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifySecureSession from '@fastify/secure-session'
import fastifyLogin from '../lib/index.js'
import { buildApp, CookieJar, LOGIN_SECRET, SECURE_SESSION_KEY, SESSION_SECRET, type BuildOptions, type User } from './helpers.js'

type Plugin = 'session' | 'secure-session'

const SESSION_COOKIE = 'session'
const ANONYMOUS = { user: null, authenticated: false, fresh: false, remembered: false }

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

async function setup (options: BuildOptions = {}) {
  const built = await buildApp({ ...options, sessionPlugin: options.sessionPlugin ?? 'secure-session' })
  return { ...built, jar: new CookieJar(built.app) }
}

function replay (app: FastifyInstance, url: string, cookieValue: string): Promise<LightMyRequestResponse> {
  return app.inject({ url, headers: { cookie: `${SESSION_COOKIE}=${encodeURIComponent(cookieValue)}` } })
}

t.test('login, remember restore and logout work with secure-session', async (t) => {
  const { jar } = await setup()
  t.same((await jar.inject({ method: 'POST', url: '/login/1?remember=1' })).json(), { ok: true })
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: true })
  jar.delete(SESSION_COOKIE)
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true }, 'restored from the remember cookie')
  t.ok(jar.get(SESSION_COOKIE), 'the restore wrote the login into a new session cookie')
  await jar.inject({ method: 'POST', url: '/logout' })
  t.notOk(jar.get('remember_token'), 'logout cleared the remember cookie')
  t.same((await jar.inject('/')).json(), ANONYMOUS)
  t.equal((await jar.inject('/protected')).statusCode, 401)
})

// The documented limit: a stateless session has no server-side record to destroy.
t.test('limit: a stateless session cookie copied before logout still authenticates after it', async (t) => {
  const { app, jar } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1' })
  const copied = jar.get(SESSION_COOKIE)!
  await jar.inject({ method: 'POST', url: '/logout' })
  t.same((await jar.inject('/')).json(), ANONYMOUS, 'the browser that logged out is anonymous')
  t.equal((await replay(app, '/', copied)).json().user, 'Ann', 'the copy is still a login until it expires')
  t.equal((await replay(app, '/protected', copied)).statusCode, 200)
})

t.test('sessionVersion revokes a copied stateless session', async (t) => {
  const { app, jar, users } = await setup({ login: { sessionVersion: (user) => (user as User).version } })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const copied = jar.get(SESSION_COOKIE)!
  const copiedRemember = jar.get('remember_token')!
  await jar.inject({ method: 'POST', url: '/logout' })
  // "Log out everywhere": the application bumps the user's version.
  users.get('1')!.version = '2'
  t.same((await replay(app, '/', copied)).json(), ANONYMOUS, 'the copied session is refused')
  t.equal((await replay(app, '/protected', copied)).statusCode, 401)
  const remembered = await app.inject({ url: '/', headers: { cookie: `remember_token=${encodeURIComponent(copiedRemember)}` } })
  t.same(remembered.json(), ANONYMOUS, 'so is a copied remember cookie')
})

t.test('sessionVersion leaves a copy working until the version changes', async (t) => {
  const { app, jar } = await setup({ login: { sessionVersion: (user) => (user as User).version } })
  await jar.inject({ method: 'POST', url: '/login/1' })
  const copied = jar.get(SESSION_COOKIE)!
  t.equal((await replay(app, '/', copied)).json().user, 'Ann')
})

// Wraps request.session so calls to its methods are recorded; `recording`
// is on while fastify-login runs (its onRequest hook and the route) and off
// while the session plugin itself reads and writes the session.
async function recordingApp (plugin: Plugin) {
  const ann = { id: '1', name: 'Ann' }
  const calls = new Set<string>()
  const app = Fastify()
  let recording = false
  // Registered first, so it runs before the session plugin's own onSend.
  app.addHook('onSend', async () => { recording = false })
  await app.register(fastifyCookie)
  if (plugin === 'secure-session') {
    await app.register(fastifySecureSession, { key: SECURE_SESSION_KEY, cookie: { path: '/', httpOnly: true } })
  } else {
    await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  }
  const recorded = (session: object): object => new Proxy(session, {
    get (target, property) {
      const value: unknown = Reflect.get(target, property, target)
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => {
        if (recording) calls.add(String(property))
        return (value as (...rest: unknown[]) => unknown).apply(target, args)
      }
    }
  })
  app.addHook('onRequest', async (request: FastifyRequest) => {
    // regenerate() puts a new session on the request: that one is recorded too.
    let session = recorded((request as unknown as { session: object }).session)
    Object.defineProperty(request, 'session', {
      configurable: true,
      enumerable: true,
      get: () => session,
      set: (value: object) => { session = recorded(value) }
    })
    recording = true
  })
  await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: (id: string) => (id === ann.id ? ann : null) })
  app.post('/login', async (request) => ({ ok: await request.loginUser(ann, { remember: true }) }))
  app.post('/confirm', async (request) => {
    await request.confirmLogin()
    return { fresh: request.loginFresh }
  })
  app.post('/logout', async (request) => ({ ok: await request.logoutUser() }))
  app.get('/', async (request) => ({ authenticated: request.isAuthenticated(), fresh: request.loginFresh }))
  return { app, calls, jar: new CookieJar(app) }
}

for (const plugin of ['session', 'secure-session'] as const) {
  t.test(`the session adapter calls only get, set and regenerate on ${plugin}`, async (t) => {
    const { jar, calls } = await recordingApp(plugin)
    const cookieName = plugin === 'session' ? 'sessionId' : SESSION_COOKIE
    t.same((await jar.inject({ method: 'POST', url: '/login' })).json(), { ok: true })
    t.same((await jar.inject('/')).json(), { authenticated: true, fresh: true })
    jar.delete(cookieName)
    t.same((await jar.inject('/')).json(), { authenticated: true, fresh: false }, 'restored from the remember cookie')
    t.same((await jar.inject({ method: 'POST', url: '/confirm' })).json(), { fresh: true })
    t.same((await jar.inject({ method: 'POST', url: '/logout' })).json(), { ok: true })
    t.same((await jar.inject('/')).json(), { authenticated: false, fresh: false })
    const used = [...calls].sort()
    t.same(used.filter((name) => !['get', 'set', 'regenerate'].includes(name)), [], `methods called: ${used.join(', ')}`)
    t.ok(calls.has('get') && calls.has('set'), 'get and set were used')
    if (plugin === 'session') t.ok(calls.has('regenerate'), 'regenerate rotates the stored session')
  })
}

t.test('freshMaxAge', async (t) => {
  for (const plugin of ['secure-session', 'session'] as const) {
    t.test(`a login stops being fresh after freshMaxAge seconds (${plugin})`, async (t) => {
      const { jar } = await setup({ sessionPlugin: plugin, login: { freshMaxAge: 1 } })
      await jar.inject({ method: 'POST', url: '/login/1' })
      t.equal((await jar.inject('/')).json().fresh, true, 'fresh right after login')
      t.equal((await jar.inject('/fresh')).statusCode, 200)
      await sleep(1100)
      t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false }, 'still logged in, not fresh')
      const refused = await jar.inject('/fresh')
      t.equal(refused.statusCode, 401)
      t.equal(refused.json().code, 'FST_LOGIN_NEEDS_REFRESH', 'requireFreshLogin asks for a refresh')
      t.equal((await jar.inject('/protected')).statusCode, 200, 'requireLogin still lets the user in')
    })
  }

  t.test('confirmLogin makes a login that timed out fresh again', async (t) => {
    const { jar } = await setup({ login: { freshMaxAge: 1 } })
    await jar.inject({ method: 'POST', url: '/login/1' })
    await sleep(1100)
    t.equal((await jar.inject('/fresh')).statusCode, 401)
    t.same((await jar.inject({ method: 'POST', url: '/confirm' })).json(), { fresh: true })
    t.equal((await jar.inject('/')).json().fresh, true)
    t.equal((await jar.inject('/fresh')).statusCode, 200)
  })

  t.test('a fresh login again restarts the clock', async (t) => {
    const { jar } = await setup({ login: { freshMaxAge: 1 } })
    await jar.inject({ method: 'POST', url: '/login/1' })
    await sleep(1100)
    t.equal((await jar.inject('/')).json().fresh, false)
    await jar.inject({ method: 'POST', url: '/login/1' })
    t.equal((await jar.inject('/')).json().fresh, true)
  })

  t.test('a login made with fresh: false is not fresh within freshMaxAge', async (t) => {
    const { jar } = await setup({ login: { freshMaxAge: 60 } })
    await jar.inject({ method: 'POST', url: '/login/1?fresh=0' })
    t.equal((await jar.inject('/')).json().fresh, false)
    t.equal((await jar.inject('/fresh')).statusCode, 401)
  })

  t.test('a login restored from the remember cookie is not fresh within freshMaxAge', async (t) => {
    const { jar } = await setup({ login: { freshMaxAge: 60 } })
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    jar.delete(SESSION_COOKIE)
    t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  })

  for (const freshMaxAge of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '60']) {
    t.test(`freshMaxAge ${String(freshMaxAge)} fails register`, async (t) => {
      await t.rejects(setup({ login: { freshMaxAge: freshMaxAge as number } }), { code: 'FST_LOGIN_INVALID_OPTION', message: /freshMaxAge/ })
    })
  }
  t.end()
})
