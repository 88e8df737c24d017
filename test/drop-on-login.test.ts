// `dropOnLogin` (SPEC section 16): every path that creates or refreshes a
// login (loginUser, a remember-cookie restore, confirmLogin) drops the listed
// session keys, by default @fastify/csrf-protection's secret `_csrf`, so a
// secret planted in a session before the login never survives it. Tested
// with the real @fastify/csrf-protection on both session plugins.
import t, { type Test } from 'tap'
import type { FastifyInstance } from 'fastify'
import fastifyCsrfProtection from '@fastify/csrf-protection'
import { MemoryLoginStore } from '../lib/index.js'
import { buildApp, CookieJar, sessionOf, type BuildOptions } from './helpers.js'

const PLUGINS = ['session', 'secure-session'] as const
type Plugin = typeof PLUGINS[number]

const SESSION_COOKIE: Record<Plugin, string> = { session: 'sessionId', 'secure-session': 'session' }

interface CsrfReply {
  generateCsrf (): string
}

// The test app plus @fastify/csrf-protection, a route that hands out a token
// and a state-changing route that checks it.
async function setup (sessionPlugin: Plugin, options: BuildOptions = {}) {
  const built = await buildApp({ sessionPlugin, ...options })
  const { app } = built
  await app.register(fastifyCsrfProtection, { sessionPlugin: sessionPlugin === 'session' ? '@fastify/session' : '@fastify/secure-session' })
  app.get('/csrf', { config: { login: 'optional' } }, async (_request, reply) => ({ token: (reply as unknown as CsrfReply).generateCsrf() }))
  app.post('/transfer', { preHandler: [app.requireLogin, app.csrfProtection] }, async (request) => ({ done: true, user: (request.user as { name: string }).name }))
  app.get('/session/:key', { config: { login: 'optional' } }, async (request) => {
    const { key } = request.params as { key: string }
    return { value: sessionOf(request).get(key) ?? null }
  })
  app.post('/session/:key', { config: { login: 'optional' } }, async (request) => {
    const { key } = request.params as { key: string }
    sessionOf(request).set(key, 'planted')
    return { ok: true }
  })
  return built
}

async function tokenOf (jar: CookieJar): Promise<string> {
  return (await jar.inject('/csrf')).json().token as string
}

// A cross-site POST that carries the attacker's token and the victim's cookies.
function transfer (jar: CookieJar, token: string) {
  return jar.inject({ method: 'POST', url: '/transfer', headers: { 'x-csrf-token': token } })
}

// The attacker's anonymous session, holding their own CSRF secret, and the token for it.
async function attackerSession (app: FastifyInstance, sessionPlugin: Plugin): Promise<{ cookie: string, token: string }> {
  const attacker = new CookieJar(app)
  const token = await tokenOf(attacker)
  const cookie = attacker.get(SESSION_COOKIE[sessionPlugin])
  if (cookie === undefined) throw new Error('the attacker got no session cookie')
  return { cookie, token }
}

for (const sessionPlugin of PLUGINS) {
  const cookieName = SESSION_COOKIE[sessionPlugin]

  for (const withStore of [false, true]) {
    t.test(`a planted CSRF secret does not survive a remember-cookie restore (${sessionPlugin}${withStore ? ', login store' : ''})`, async (t) => {
      await restoreIntoPlantedSession(t, sessionPlugin, withStore ? { login: { loginStore: new MemoryLoginStore() } } : {})
    })
  }

  async function restoreIntoPlantedSession (t: Test, sessionPlugin: Plugin, options: BuildOptions): Promise<void> {
    const { app } = await setup(sessionPlugin, options)
    const victim = new CookieJar(app)
    await victim.inject({ method: 'POST', url: '/login/1?remember=1' })
    victim.restartBrowser()
    t.ok(victim.get('remember_token'), 'the victim keeps only the remember cookie')

    // Cookie tossing (or a plain-HTTP response) puts the attacker's session in the victim's browser.
    const planted = await attackerSession(app, sessionPlugin)
    victim.set(cookieName, planted.cookie)
    t.match((await victim.inject('/')).json(), { user: 'Ann', remembered: true }, 'the remember cookie restores the login into it')

    const forged = await transfer(victim, planted.token)
    t.equal(forged.statusCode, 403, "the attacker's token is refused")
    t.equal(forged.json().code, 'FST_CSRF_MISSING_SECRET', 'the planted secret is gone')
    const own = await transfer(victim, await tokenOf(victim))
    t.same(own.json(), { done: true, user: 'Ann' }, "the victim's own new token works")
  }

  t.test(`a planted CSRF secret does not survive loginUser (${sessionPlugin})`, async (t) => {
    const { app } = await setup(sessionPlugin)
    const victim = new CookieJar(app)
    const planted = await attackerSession(app, sessionPlugin)
    victim.set(cookieName, planted.cookie)
    t.same((await victim.inject({ method: 'POST', url: '/login/1' })).json(), { ok: true })
    t.equal((await transfer(victim, planted.token)).statusCode, 403, "the attacker's token is refused")
    t.equal((await transfer(victim, await tokenOf(victim))).statusCode, 200)
  })

  t.test(`a CSRF token from before confirmLogin is refused after it (${sessionPlugin})`, async (t) => {
    const { app } = await setup(sessionPlugin)
    const jar = new CookieJar(app)
    await jar.inject({ method: 'POST', url: '/login/1?fresh=0' })
    const before = await tokenOf(jar)
    t.equal((await transfer(jar, before)).statusCode, 200, 'the token works before')
    t.same((await jar.inject({ method: 'POST', url: '/confirm' })).json(), { fresh: true })
    t.equal((await transfer(jar, before)).statusCode, 403, 'and not after confirmLogin')
    t.match((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true }, 'the login is kept, fresh')
    t.equal((await transfer(jar, await tokenOf(jar))).statusCode, 200)
  })

  t.test(`regenerateSession: false still drops the keys on every path (${sessionPlugin})`, async (t) => {
    const { app } = await setup(sessionPlugin, { login: { regenerateSession: false } })

    const restored = new CookieJar(app)
    await restored.inject({ method: 'POST', url: '/login/1?remember=1' })
    restored.restartBrowser()
    const planted = await attackerSession(app, sessionPlugin)
    restored.set(cookieName, planted.cookie)
    t.match((await restored.inject('/')).json(), { user: 'Ann', remembered: true })
    t.equal((await transfer(restored, planted.token)).statusCode, 403, 'restore')

    const loggedIn = new CookieJar(app)
    loggedIn.set(cookieName, (await attackerSession(app, sessionPlugin)).cookie)
    const token = await tokenOf(loggedIn)
    await loggedIn.inject({ method: 'POST', url: '/login/1' })
    t.equal((await transfer(loggedIn, token)).statusCode, 403, 'loginUser')

    const confirmed = new CookieJar(app)
    await confirmed.inject({ method: 'POST', url: '/login/1?fresh=0' })
    const stale = await tokenOf(confirmed)
    await confirmed.inject({ method: 'POST', url: '/confirm' })
    t.equal((await transfer(confirmed, stale)).statusCode, 403, 'confirmLogin')
  })

  for (const regenerateSession of [true, false]) {
    t.test(`a remember-cookie restore leaves no key of an earlier login behind (${sessionPlugin}, regenerateSession ${String(regenerateSession)})`, async (t) => {
      const { app } = await setup(sessionPlugin, { login: { regenerateSession, dropOnLogin: [] } })
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      jar.restartBrowser()
      const remember = jar.get('remember_token')!
      jar.delete('remember_token')
      // A session without a login, holding what an earlier login (or the application) left in it.
      const leftovers = ['_remember_seconds', '_fresh_at', '_session_version', '_remember', '_fresh']
      for (const key of leftovers) await jar.inject({ method: 'POST', url: `/session/${key}` })
      await jar.inject({ method: 'POST', url: '/session/cart' })
      t.same((await jar.inject('/session/_fresh_at')).json(), { value: 'planted' }, 'planted')
      jar.set('remember_token', remember)
      t.match((await jar.inject('/')).json(), { user: 'Ann', fresh: false, remembered: true })
      for (const key of leftovers.filter((key) => key !== '_fresh')) {
        t.same((await jar.inject(`/session/${key}`)).json(), { value: null }, `${key} is gone`)
      }
      t.same((await jar.inject('/session/_fresh')).json(), { value: false }, '_fresh is the restore\'s own')
      t.same((await jar.inject('/session/cart')).json(), { value: 'planted' }, 'other data stays')
    })
  }

  t.test(`dropOnLogin names other keys, and [] keeps everything (${sessionPlugin})`, async (t) => {
    const custom = await setup(sessionPlugin, { login: { dropOnLogin: ['_csrf', 'pending_invite'] } })
    const jar = new CookieJar(custom.app)
    await jar.inject({ method: 'POST', url: '/session/pending_invite' })
    await jar.inject({ method: 'POST', url: '/session/cart' })
    await jar.inject({ method: 'POST', url: '/login/1' })
    t.same((await jar.inject('/session/pending_invite')).json(), { value: null }, 'a listed key is dropped')
    t.same((await jar.inject('/session/cart')).json(), { value: 'planted' }, 'other keys stay')

    const keeping = await setup(sessionPlugin, { login: { dropOnLogin: [] } })
    const planted = await attackerSession(keeping.app, sessionPlugin)
    const victim = new CookieJar(keeping.app)
    victim.set(cookieName, planted.cookie)
    await victim.inject({ method: 'POST', url: '/login/1' })
    t.equal((await transfer(victim, planted.token)).statusCode, 200, 'with [] the secret is kept: the risk the default removes')
  })
}

t.test('confirmLogin gives a stored session a new id, keeping its data', async (t) => {
  const { app } = await setup('session')
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/session/cart' })
  await jar.inject({ method: 'POST', url: '/login/1?fresh=0' })
  const before = jar.get('sessionId')
  await jar.inject({ method: 'POST', url: '/confirm' })
  const after = jar.get('sessionId')
  t.ok(after)
  t.not(after, before, 'a new session id')
  t.same((await jar.inject('/session/cart')).json(), { value: 'planted' }, 'the rest of the session is kept')
  t.match((await jar.inject('/')).json(), { user: 'Ann', fresh: true })
  const old = await app.inject({ url: '/', headers: { cookie: `sessionId=${encodeURIComponent(before!)}` } })
  t.equal(old.json().authenticated, false, 'the old id no longer authenticates')
})

t.test('confirmLogin with regenerateSession: false keeps the session id', async (t) => {
  const { app } = await setup('session', { login: { regenerateSession: false } })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?fresh=0' })
  const before = jar.get('sessionId')
  await jar.inject({ method: 'POST', url: '/confirm' })
  t.equal(jar.get('sessionId'), before)
  t.match((await jar.inject('/')).json(), { user: 'Ann', fresh: true })
})

t.test('dropOnLogin is validated at register time', async (t) => {
  const cases: Array<[string, unknown, RegExp]> = [
    ['a string', '_csrf', /`dropOnLogin` must be an array of session key names/],
    ['null', null, /dropOnLogin/],
    ['an array with an empty string', ['_csrf', ''], /dropOnLogin/],
    ['an array with a number', ['_csrf', 1], /dropOnLogin/],
    ["fastify-login's own key _user_id", ['_user_id'], /`dropOnLogin` cannot name fastify-login's own session keys/],
    ["fastify-login's own key next", ['next'], /fastify-login's own/],
    ["@fastify/session's cookie", ['cookie'], /`dropOnLogin` cannot name `cookie`/]
  ]
  for (const [label, dropOnLogin, advice] of cases) {
    const error = await buildApp({ login: { dropOnLogin: dropOnLogin as string[] } }).then(() => null, (error: unknown) => error as Error & { code?: string })
    t.equal(error?.code, 'FST_LOGIN_INVALID_OPTION', `${label}: code`)
    t.match(error?.message, advice, `${label}: message`)
  }
})

t.test('dropOnLogin is shown, frozen, in loginManager.options', async (t) => {
  const defaults = await buildApp({ routes: false })
  t.strictSame([...defaults.app.loginManager.options.dropOnLogin], ['_csrf'])
  const given = ['_csrf', 'invite']
  const custom = await buildApp({ routes: false, login: { dropOnLogin: given } })
  t.strictSame([...custom.app.loginManager.options.dropOnLogin], ['_csrf', 'invite'])
  t.ok(Object.isFrozen(custom.app.loginManager.options.dropOnLogin))
  t.not(custom.app.loginManager.options.dropOnLogin, given, 'a copy, not the caller\'s array')
})
