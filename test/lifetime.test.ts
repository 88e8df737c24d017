// Session lifetime (SPEC section 12): idleTimeout and absoluteTimeout with
// real, short durations, the answer of a guarded route just after expiry,
// the write budget of the activity time, and exactly today's behaviour
// without the options. Gaps stay well clear of the edges: idle expiry may
// come up to one activity interval (a tenth of idleTimeout here) early.
import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyInstance, Session } from 'fastify'
import { MemoryStore } from '@fastify/session'
import { SESSION_KEYS, type SessionExpiredEvent } from '../lib/index.js'
import { buildApp, CookieJar, sessionOf, type BuildOptions } from './helpers.js'

/** @fastify/session's memory store, counting its writes (`store.set`). */
class CountingStore extends MemoryStore {
  readonly data: Map<string, Session>
  writes = 0

  constructor () {
    const data = new Map<string, Session>()
    super(data)
    this.data = data
  }

  override set (sessionId: string, session: Session, callback: (error?: unknown) => void): void {
    this.writes++
    super.set(sessionId, session, callback)
  }
}

interface FlashReply {
  flash (): Record<string, string[]>
}

// GET /state (who am I, and why the login expired), POST /cart (other
// session data), GET /peek (the session's keys; `config.login: false`, so
// it neither counts as activity nor ends a login) and GET /flashes.
function addRoutes (app: FastifyInstance): void {
  app.get('/state', { config: { login: 'optional' } }, async (request) => ({
    authenticated: request.isAuthenticated(),
    fresh: request.loginFresh,
    remembered: request.loginRemembered,
    expired: request.loginExpired
  }))
  app.post('/cart', { config: { login: false } }, async (request) => {
    sessionOf(request).set('cart', ['apples'])
    return { ok: true }
  })
  app.get('/peek', { config: { login: false } }, async (request) => {
    const session = sessionOf(request)
    const seen: Record<string, unknown> = {}
    for (const key of [...SESSION_KEYS, 'cart']) if (session.get(key) !== undefined) seen[key] = session.get(key)
    return seen
  })
  if (app.hasReplyDecorator('flash')) {
    app.get('/flashes', { config: { login: 'optional' } }, async (request, reply) => (reply as unknown as FlashReply).flash())
  }
}

interface Setup {
  app: FastifyInstance
  jar: CookieJar
  store: CountingStore
  loaded: string[]
  expired: Array<Omit<SessionExpiredEvent, 'request'> & { url: string }>
}

/** An app on @fastify/session with `rolling: false` and a counting store, unless `options` say otherwise. */
async function setup (t: Test, options: BuildOptions = {}): Promise<Setup> {
  const store = new CountingStore()
  const session = options.sessionPlugin === 'secure-session' ? undefined : { store, rolling: false, ...options.session }
  const { app, loaded } = await buildApp({ ...options, session })
  t.teardown(() => app.close())
  addRoutes(app)
  const expired: Setup['expired'] = []
  app.loginManager.on('sessionExpired', ({ request, userId, reason }) => { expired.push({ url: request.url, userId, reason }) })
  return { app, jar: new CookieJar(app), store, loaded, expired }
}

async function logIn (jar: CookieJar, query = ''): Promise<void> {
  const response = await jar.inject({ method: 'POST', url: `/login/1${query}` })
  if (response.json().ok !== true) throw new Error('login failed')
}

async function state (jar: CookieJar): Promise<{ authenticated: boolean, fresh: boolean, remembered: boolean, expired: string | null }> {
  return (await jar.inject('/state')).json()
}

async function peek (jar: CookieJar): Promise<Record<string, unknown>> {
  return (await jar.inject('/peek')).json()
}

/** The login and activity times in a session's `_lifetime` (`<login>.<activity>`, milliseconds in base 36). */
async function timesOf (jar: CookieJar): Promise<{ loginAt: number, activeAt: number }> {
  const value = (await peek(jar))._lifetime
  if (typeof value !== 'string' || !/^[0-9a-z]+\.[0-9a-z]+$/.test(value)) throw new Error('no _lifetime in the session')
  const [loginAt, activeAt] = value.split('.').map((part) => parseInt(part, 36)) as [number, number]
  return { loginAt, activeAt }
}

t.test('options', async (t) => {
  t.test('are validated at register with FST_LOGIN_INVALID_OPTION', async (t) => {
    const invalid: Array<[string, unknown]> = [
      ['idleTimeout', 0], ['idleTimeout', -1], ['idleTimeout', Number.NaN], ['idleTimeout', Infinity], ['idleTimeout', '60'],
      ['absoluteTimeout', 0], ['absoluteTimeout', -0.5], ['absoluteTimeout', Infinity], ['absoluteTimeout', null],
      ['expiredMessage', 42], ['expiredMessage', true], ['expiredMessageCategory', ''], ['expiredMessageCategory', 1]
    ]
    for (const [name, value] of invalid) {
      await t.rejects(buildApp({ login: { [name]: value } }), { code: 'FST_LOGIN_INVALID_OPTION', message: new RegExp(`\`${name}\``) }, `${name}: ${String(value)}`)
    }
  })

  t.test('accept fractions of a second and show in loginManager.options', async (t) => {
    const { app } = await buildApp({ login: { idleTimeout: 0.25, absoluteTimeout: 1.5, expiredMessage: false, loginMessageCategory: 'info' } })
    const { options } = app.loginManager
    t.equal(options.idleTimeout, 0.25)
    t.equal(options.absoluteTimeout, 1.5)
    t.equal(options.expiredMessage, false)
    t.equal(options.expiredMessageCategory, 'info', 'the category defaults to loginMessageCategory')
  })

  t.test('are off by default', async (t) => {
    const { app } = await buildApp()
    const { options } = app.loginManager
    t.equal(options.idleTimeout, undefined)
    t.equal(options.absoluteTimeout, undefined)
    t.equal(options.expiredMessage, 'Your session has expired. Please log in again.')
    t.equal(options.expiredMessageCategory, 'message')
  })
})

t.test('idleTimeout', async (t) => {
  t.test('keeps a login with requests closer together than the timeout, and ends it after a longer gap', async (t) => {
    const { jar, expired } = await setup(t, { login: { idleTimeout: 1 } })
    await logIn(jar)
    // 1.5 s in all, longer than the timeout, in gaps of 0.15 s.
    for (let step = 0; step < 10; step++) {
      await sleep(150)
      t.equal((await state(jar)).authenticated, true, `still logged in after ${(step + 1) * 150} ms`)
    }
    await sleep(1600)
    t.same(await state(jar), { authenticated: false, fresh: false, remembered: false, expired: 'idle' })
    t.same(expired, [{ url: '/state', userId: '1', reason: 'idle' }])
    t.same(await state(jar), { authenticated: false, fresh: false, remembered: false, expired: null }, 'the next request is simply anonymous')
    t.equal(expired.length, 1, 'fires once')
  })

  t.test('removes only the login keys, calls no loader, and leaves other session data', async (t) => {
    const { jar, loaded } = await setup(t, { login: { idleTimeout: 0.2 } })
    await logIn(jar)
    await jar.inject({ method: 'POST', url: '/cart' })
    t.ok('_lifetime' in await peek(jar))
    await sleep(500)
    const before = loaded.length
    t.equal((await state(jar)).expired, 'idle')
    t.equal(loaded.length, before, 'no userLoader call for the expired login')
    t.same(await peek(jar), { cart: ['apples'] })
  })

  t.test('a route with config.login false neither counts as activity nor ends the login', async (t) => {
    const { jar, expired } = await setup(t, { login: { idleTimeout: 0.3 } })
    await logIn(jar)
    for (let step = 0; step < 4; step++) {
      await sleep(150)
      await peek(jar)
    }
    t.equal(expired.length, 0, 'nothing expires on such a route')
    t.equal((await state(jar)).expired, 'idle', 'the next request sees the idle login')
  })
})

t.test('absoluteTimeout', async (t) => {
  t.test('ends a login a fixed time after loginUser, however active', async (t) => {
    const { jar, expired } = await setup(t, { login: { absoluteTimeout: 1.5 } })
    await logIn(jar)
    for (let step = 0; step < 3; step++) {
      await sleep(100)
      t.equal((await state(jar)).authenticated, true, `still logged in after ${(step + 1) * 100} ms`)
    }
    await sleep(1600)
    t.equal((await state(jar)).expired, 'absolute')
    t.same(expired, [{ url: '/state', userId: '1', reason: 'absolute' }])
  })

  t.test('writes nothing per request', async (t) => {
    const { jar, store } = await setup(t, { login: { absoluteTimeout: 60 } })
    await logIn(jar)
    const writes = store.writes
    for (let step = 0; step < 10; step++) await state(jar)
    t.equal(store.writes, writes)
  })
})

t.test('with both timeouts the reason is the one that ended the login first', async (t) => {
  t.test('idle', async (t) => {
    const { jar } = await setup(t, { login: { idleTimeout: 0.2, absoluteTimeout: 0.8 } })
    await logIn(jar)
    await sleep(1200)
    t.equal((await state(jar)).expired, 'idle', 'idle ended it at 0.2 s, before the absolute limit at 0.8 s')
  })

  t.test('absolute', async (t) => {
    const { jar } = await setup(t, { login: { idleTimeout: 30, absoluteTimeout: 0.4 } })
    await logIn(jar)
    await sleep(800)
    t.equal((await state(jar)).expired, 'absolute')
  })
})

t.test('a valid remember cookie restores a new login that is not fresh', async (t) => {
  t.test('after idle expiry', async (t) => {
    const { app, jar, expired } = await setup(t, { login: { idleTimeout: 1 } })
    const restored: string[] = []
    app.loginManager.on('userLoadedFromCookie', ({ request }) => { restored.push(request.url) })
    await logIn(jar, '?remember=1')
    await sleep(1500)
    t.same(await state(jar), { authenticated: true, fresh: false, remembered: true, expired: 'idle' })
    t.same(expired.map((event) => event.reason), ['idle'])
    t.same(restored, ['/state'])
    t.same(await state(jar), { authenticated: true, fresh: false, remembered: true, expired: null }, 'the new login holds')
    t.same(restored, ['/state'], 'from the session, not the cookie again')
  })

  t.test('after absolute expiry, the restore starting a new absolute period', async (t) => {
    const { jar, expired } = await setup(t, { login: { absoluteTimeout: 1 } })
    await logIn(jar, '?remember=1')
    const firstLoginAt = (await timesOf(jar)).loginAt
    await sleep(1300)
    const before = Date.now()
    t.equal((await state(jar)).expired, 'absolute')
    const { loginAt } = await timesOf(jar)
    t.ok(loginAt >= before && loginAt > firstLoginAt, 'the restore\'s login time is now')
    await sleep(150)
    t.same(await state(jar), { authenticated: true, fresh: false, remembered: true, expired: null })
    t.equal(expired.length, 1)
  })
})

t.test('a guarded route just after expiry', async (t) => {
  const BROWSER = 'text/html,application/xhtml+xml,*/*;q=0.8'

  async function expiredJar (t: Test, options: BuildOptions): Promise<Setup> {
    const built = await setup(t, { ...options, login: { idleTimeout: 0.2, ...options.login } })
    await logIn(built.jar)
    await sleep(500)
    return built
  }

  t.test('redirects to the login view with the expired message flashed', async (t) => {
    const { app, jar } = await expiredJar(t, { flash: true, login: { loginView: '/login' } })
    const unauthorized: string[] = []
    app.loginManager.on('userUnauthorized', ({ request }) => { unauthorized.push(request.url) })
    const response = await jar.inject({ url: '/protected', headers: { accept: BROWSER } })
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/login?next=%2Fprotected')
    t.same((await jar.inject('/flashes')).json(), { message: ['Your session has expired. Please log in again.'] })
    t.same(unauthorized, ['/protected'], 'userUnauthorized fires as for any unauthorized answer')
    await jar.inject('/protected')
    t.same((await jar.inject('/flashes')).json(), { message: ['Please log in to access this page.'] }, 'afterwards the login message, as for anybody')
  })

  t.test('flashes expiredMessage in expiredMessageCategory, localized', async (t) => {
    const { jar } = await expiredJar(t, {
      flash: true,
      login: { loginView: '/login', expiredMessage: 'Timed out', expiredMessageCategory: 'warning', localize: (message) => `${message}!` }
    })
    t.equal((await jar.inject('/fresh')).statusCode, 302, 'requireFreshLogin answers the same')
    t.same((await jar.inject('/flashes')).json(), { warning: ['Timed out!'] })
  })

  t.test('expiredMessage false flashes the login message instead', async (t) => {
    const { jar } = await expiredJar(t, { flash: true, login: { loginView: '/login', expiredMessage: false, loginMessageCategory: 'info' } })
    t.equal((await jar.inject('/protected')).statusCode, 302)
    t.same((await jar.inject('/flashes')).json(), { info: ['Please log in to access this page.'] })
  })

  t.test('answers 401 FST_LOGIN_SESSION_EXPIRED to a JSON client', async (t) => {
    const { jar } = await expiredJar(t, { flash: true, login: { loginView: '/login' } })
    const response = await jar.inject({ url: '/protected', headers: { accept: 'application/json' } })
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_SESSION_EXPIRED')
    t.same((await jar.inject('/flashes')).json(), {}, 'nothing flashed with a 401')
  })

  t.test('answers 401 FST_LOGIN_SESSION_EXPIRED without a login view, then FST_LOGIN_UNAUTHORIZED', async (t) => {
    const { jar } = await expiredJar(t, {})
    const response = await jar.inject('/protected')
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_SESSION_EXPIRED')
    t.equal((await jar.inject('/protected')).json().code, 'FST_LOGIN_UNAUTHORIZED')
  })

  t.test('config.login routes and loginManager.unauthorized called by hand answer the same', async (t) => {
    const { app, jar } = await setup(t, { login: { idleTimeout: 0.2 } })
    app.get('/required', { config: { login: 'required' } }, async () => 'required')
    app.get('/by-hand', { config: { login: 'optional' } }, async (request, reply) => {
      if (!request.isAuthenticated()) await app.loginManager.unauthorized(request, reply)
      return reply
    })
    for (const url of ['/required', '/by-hand']) {
      await logIn(jar)
      await sleep(500)
      t.equal((await jar.inject(url)).json().code, 'FST_LOGIN_SESSION_EXPIRED', url)
    }
  })

  t.test('unauthorizedHandler still decides, and knows from request.loginExpired', async (t) => {
    const { jar } = await expiredJar(t, {
      login: {
        unauthorizedHandler: (request, reply) => reply.code(440).send({ expired: request.loginExpired })
      }
    })
    const response = await jar.inject('/protected')
    t.equal(response.statusCode, 440)
    t.same(response.json(), { expired: 'idle' })
    t.same((await jar.inject('/protected')).json(), { expired: null })
  })

  t.test('lets a login restored by the remember cookie through', async (t) => {
    const { jar } = await setup(t, { login: { idleTimeout: 0.2 } })
    await logIn(jar, '?remember=1')
    await sleep(500)
    t.same((await jar.inject('/protected')).json(), { user: 'Ann' })
  })
})

t.test('the activity time is written at most once per interval', async (t) => {
  t.test('30 requests inside one interval cause at most one store.set (rolling: false)', async (t) => {
    // min(60 s, idleTimeout / 10) = 60 s: the requests below all fall inside it.
    const { jar, store } = await setup(t, { login: { idleTimeout: 3600, absoluteTimeout: 28800 } })
    await logIn(jar)
    const writes = store.writes
    for (let step = 0; step < 30; step++) t.equal((await state(jar)).authenticated, true)
    t.ok(store.writes - writes <= 1, `${store.writes - writes} store writes`)
  })

  t.test('the first request after an interval writes it, once', async (t) => {
    // Interval: 0.5 s / 10 = 50 ms.
    const { jar, store } = await setup(t, { login: { idleTimeout: 0.5 } })
    await logIn(jar)
    const { activeAt: loggedInAt, loginAt } = await timesOf(jar)
    await sleep(100)
    const writes = store.writes
    const before = Date.now()
    await state(jar)
    t.equal(store.writes - writes, 1, 'one store write')
    const times = await timesOf(jar)
    t.ok(times.activeAt >= before && times.activeAt > loggedInAt, 'the new activity time is now')
    t.equal(times.loginAt, loginAt, 'the login time stays')
  })

  t.test('on @fastify/secure-session, the cookie is re-sent only when the activity time is written', async (t) => {
    const { jar } = await setup(t, { sessionPlugin: 'secure-session', login: { idleTimeout: 3600, absoluteTimeout: 28800 } })
    await logIn(jar)
    let resent = 0
    for (let step = 0; step < 30; step++) {
      const response = await jar.inject('/state')
      if (response.cookies.some((cookie) => cookie.name === 'session')) resent++
    }
    t.ok(resent <= 1, `the session cookie was re-sent ${resent} times`)
  })
})

t.test('without the options, exactly today\'s behaviour', async (t) => {
  t.test('the session holds Flask-Login\'s keys only, and requests write nothing', async (t) => {
    const { jar, store, expired } = await setup(t)
    await logIn(jar)
    t.same(Object.keys(await peek(jar)).sort(), ['_fresh', '_id', '_user_id'])
    const writes = store.writes
    for (let step = 0; step < 30; step++) t.equal((await state(jar)).expired, null)
    t.equal(store.writes, writes, 'no store write')
    t.equal(expired.length, 0)
  })

  t.test('either timeout adds one key, _lifetime, with the login time twice', async (t) => {
    for (const login of [{ idleTimeout: 60 }, { absoluteTimeout: 60 }]) {
      const { jar } = await setup(t, { login })
      const before = Date.now()
      await logIn(jar)
      t.same(Object.keys(await peek(jar)).sort(), ['_fresh', '_id', '_lifetime', '_user_id'])
      const { loginAt, activeAt } = await timesOf(jar)
      t.ok(loginAt >= before && loginAt <= Date.now(), 'the login time is now')
      t.equal(activeAt, loginAt)
    }
  })

  t.test('a malformed _lifetime counts as no login time: the login is over', async (t) => {
    for (const value of ['', 'mxe3gdmf', 'mxe3gdmf.', '.mxe3gdmf', 'MXE3GDMF.MXE3GDMF', 'mxe3gdmf.mxe3gdmf.1', '1e5.1e5', 'zzzzzzzzzzzz.1', 1765000000000, ['mxe3gdmf', 'mxe3gdmf']]) {
      const { app, jar, expired } = await setup(t, { login: { idleTimeout: 60, absoluteTimeout: 60 } })
      app.post('/tamper', { config: { login: false } }, async (request) => {
        sessionOf(request).set('_lifetime', value)
        return {}
      })
      await logIn(jar)
      await jar.inject({ method: 'POST', url: '/tamper' })
      t.equal((await state(jar)).expired, 'absolute', `${JSON.stringify(value)}: over`)
      t.equal(expired.length, 1)
    }
  })

  t.test('the new keys are in SESSION_KEYS and leave with a logout', async (t) => {
    t.ok(SESSION_KEYS.includes('_lifetime'))
    const { jar } = await setup(t, { login: { idleTimeout: 60, absoluteTimeout: 60 } })
    await logIn(jar)
    await jar.inject({ method: 'POST', url: '/cart' })
    await jar.inject({ method: 'POST', url: '/logout' })
    t.same(await peek(jar), { cart: ['apples'] })
  })
})

t.test('a login from before a timeout was turned on has no timestamp and counts as expired', async (t) => {
  for (const [option, reason] of [['idleTimeout', 'idle'], ['absoluteTimeout', 'absolute']] as const) {
    t.test(option, async (t) => {
      const before = await setup(t)
      await logIn(before.jar)
      const after = await setup(t, { session: { store: before.store }, login: { [option]: 3600 } })
      const response = await after.app.inject({ url: '/state', headers: { cookie: before.jar.header() } })
      t.equal(response.json().expired, reason)
      t.same(after.expired, [{ url: '/state', userId: '1', reason }])
    })
  }
})

t.test('@fastify/secure-session', async (t) => {
  t.test('idle and absolute expiry, with the login keys removed from the cookie', async (t) => {
    for (const [login, reason] of [[{ idleTimeout: 0.6 }, 'idle'], [{ absoluteTimeout: 0.6 }, 'absolute']] as const) {
      const { jar } = await setup(t, { sessionPlugin: 'secure-session', login })
      await logIn(jar)
      await jar.inject({ method: 'POST', url: '/cart' })
      t.equal((await state(jar)).authenticated, true)
      await sleep(1000)
      t.equal((await state(jar)).expired, reason)
      t.same(await peek(jar), { cart: ['apples'] }, `${reason}: the re-sent cookie holds no login`)
    }
  })

  t.test('an old copy of the cookie cannot outlive the idle timeout of its own activity time', async (t) => {
    // Interval 0.1 s: the copy taken at login is replayed after later activity kept the login alive.
    const { jar } = await setup(t, { sessionPlugin: 'secure-session', login: { idleTimeout: 1 } })
    await logIn(jar)
    const copy = jar.clone()
    for (let step = 0; step < 13; step++) {
      await sleep(100)
      t.equal((await state(jar)).authenticated, true)
    }
    t.equal((await state(copy)).expired, 'idle', 'the copy carries the activity time of the login')
    t.equal((await state(jar)).authenticated, true, 'the current cookie is still logged in')
  })
})

t.test('together with the other options', async (t) => {
  t.test('freshMaxAge: the login stays, not fresh, until idle', async (t) => {
    const { jar } = await setup(t, { login: { freshMaxAge: 0.6, idleTimeout: 3 } })
    await logIn(jar)
    t.equal((await state(jar)).fresh, true)
    await sleep(1000)
    t.same(await state(jar), { authenticated: true, fresh: false, remembered: false, expired: null })
  })

  t.test('strong session protection: an expired login is expired, not protected', async (t) => {
    const { app, jar, expired } = await setup(t, { login: { sessionProtection: 'strong', idleTimeout: 0.2 } })
    let protectedEvents = 0
    app.loginManager.on('sessionProtected', () => { protectedEvents++ })
    await logIn(jar, '?remember=1')
    await sleep(500)
    const response = await jar.inject({ url: '/state', headers: { 'user-agent': 'another browser' } })
    t.same(response.json(), { authenticated: true, fresh: false, remembered: true, expired: 'idle' }, 'the remember cookie restores for the new client')
    t.equal(expired.length, 1)
    t.equal(protectedEvents, 0, 'expiry comes before protection')
  })

  t.test('basic session protection marks a live login not fresh, as before', async (t) => {
    const { app, jar } = await setup(t, { login: { idleTimeout: 5, absoluteTimeout: 5 } })
    let protectedEvents = 0
    app.loginManager.on('sessionProtected', () => { protectedEvents++ })
    await logIn(jar)
    const response = await jar.inject({ url: '/state', headers: { 'user-agent': 'another browser' } })
    t.same(response.json(), { authenticated: true, fresh: false, remembered: false, expired: null })
    t.equal(protectedEvents, 1)
  })

  for (const regenerateSession of [true, false]) {
    t.test(`regenerateSession ${regenerateSession}: expiry keeps the session, a restore ${regenerateSession ? 'rotates' : 'keeps'} its id`, async (t) => {
      const { jar, store } = await setup(t, { login: { regenerateSession, idleTimeout: 0.2 } })
      await logIn(jar, '?remember=1')
      const sessionCookie = jar.get('sessionId')
      await jar.inject({ method: 'POST', url: '/cart' })
      await sleep(500)
      t.equal((await state(jar)).expired, 'idle')
      t.equal(jar.get('sessionId') !== sessionCookie, regenerateSession)
      t.equal(store.data.size, 1, 'one session in the store')
      t.same(Object.keys(await peek(jar)).sort(), ['_fresh', '_id', '_lifetime', '_user_id', 'cart'])
    })
  }
})
