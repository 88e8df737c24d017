// The login lifecycle: request.loginUser, logoutUser, confirmLogin, the
// read-only login decorators, and what a login writes into the session.
import t, { type Test } from 'tap'
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify'
import { SESSION_KEYS, UserMixin, type LoginUser, type LoginUserOptions } from '../lib/index.js'
import { buildApp, CookieJar, User, type BuildOptions } from './helpers.js'

interface SessionView {
  get (key: string): unknown
  set (key: string, value: unknown): void
  readonly sessionId?: string
}

/** Class instances are users too; this only satisfies the compiler. */
function asUser (user: object): LoginUser {
  return user as LoginUser
}

function sessionOf (request: FastifyRequest): SessionView {
  return request.session as unknown as SessionView
}

/** Routes that look into and write the session without loading a user. */
function addSessionRoutes (app: FastifyInstance): void {
  app.get<{ Params: { key: string } }>('/session/:key', { config: { login: false } }, async (request) => {
    return { value: sessionOf(request).get(request.params.key) ?? null }
  })
  app.get('/session-data', { config: { login: false } }, async (request) => {
    const session = sessionOf(request)
    const data: Record<string, unknown> = {}
    for (const key of Object.keys(session)) {
      if (key === 'cookie' || key === 'sessionId' || key === 'encryptedSessionId') continue
      const value = session.get(key)
      if (value !== undefined && typeof value !== 'function') data[key] = value
    }
    return { id: session.sessionId ?? null, data }
  })
  app.post<{ Params: { item: string } }>('/cart/:item', { config: { login: false } }, async (request) => {
    sessionOf(request).set('cart', [request.params.item])
    return { ok: true }
  })
}

async function build (options: BuildOptions = {}): Promise<{ app: FastifyInstance, jar: CookieJar, loaded: string[], users: Map<string, User> }> {
  const built = await buildApp(options)
  addSessionRoutes(built.app)
  t.teardown(() => built.app.close())
  return { ...built, jar: new CookieJar(built.app) }
}

async function sessionValue (jar: CookieJar, key: string): Promise<unknown> {
  return (await jar.inject(`/session/${key}`)).json().value
}

async function sessionData (jar: CookieJar): Promise<{ id: string | null, data: Record<string, unknown> }> {
  return (await jar.inject('/session-data')).json()
}

function setCookieNames (response: LightMyRequestResponse): string[] {
  return (response.cookies as Array<{ name: string }>).map((cookie) => cookie.name)
}

function clearedCookie (response: LightMyRequestResponse, name: string): boolean {
  const cookie = (response.cookies as Array<{ name: string, value: string, expires?: Date, maxAge?: number }>).find((item) => item.name === name)
  if (cookie === undefined) return false
  return cookie.value === '' && (cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now()))
}

async function loginAs (jar: CookieJar, id: string, query = ''): Promise<LightMyRequestResponse> {
  return jar.inject({ method: 'POST', url: `/login/${id}${query === '' ? '' : '?' + query}` })
}

async function whoami (jar: CookieJar): Promise<{ user: string | null, authenticated: boolean, fresh: boolean, remembered: boolean }> {
  return (await jar.inject('/')).json()
}

/** A route that logs `user` in with `options`, answering the error code if it rejects. */
function addLoginWith (app: FastifyInstance, user: () => LoginUser, options: LoginUserOptions = {}): void {
  app.post('/login-with', { config: { login: 'optional' } }, async (request) => {
    try {
      return { ok: await request.loginUser(user(), options), user: request.isAuthenticated() }
    } catch (error) {
      return { code: (error as { code?: string }).code }
    }
  })
}

t.test('loginUser', async (t) => {
  t.test('resolves true and the user is logged in on later requests', async (t) => {
    const { jar } = await build()
    t.same((await loginAs(jar, '1')).json(), { ok: true })
    t.same(await whoami(jar), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
  })

  t.test('sets request.user within the same request', async (t) => {
    const { app, jar, users } = await build()
    app.post('/login-and-read', { config: { login: 'optional' } }, async (request) => {
      await request.loginUser(asUser(users.get('2')!))
      return { name: (request.user as User).name, authenticated: request.isAuthenticated(), fresh: request.loginFresh }
    })
    t.same((await jar.inject({ method: 'POST', url: '/login-and-read' })).json(), { name: 'Bob', authenticated: true, fresh: true })
  })

  // Flask: test_login_inactive_user
  t.test('resolves false for an inactive user and logs nobody in', async (t) => {
    const { app, jar, users } = await build()
    app.post('/login-inactive', { config: { login: 'optional' } }, async (request) => {
      const ok = await request.loginUser(asUser(users.get('3')!))
      return { ok, authenticated: request.isAuthenticated() }
    })
    t.same((await jar.inject({ method: 'POST', url: '/login-inactive' })).json(), { ok: false, authenticated: false })
    t.equal(await sessionValue(jar, '_user_id'), null)
    t.equal((await whoami(jar)).authenticated, false)
  })

  // Flask: test_login_inactive_user_forced
  t.test('logs an inactive user in with force', async (t) => {
    const { jar } = await build()
    t.same((await loginAs(jar, '3', 'force=1')).json(), { ok: true })
    t.equal((await whoami(jar)).user, 'Cid')
  })

  // Flask: test_login_user_not_fresh
  t.test('fresh: false logs in without a fresh login', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1', 'fresh=0')
    const me = await whoami(jar)
    t.equal(me.authenticated, true)
    t.equal(me.fresh, false)
    t.equal(await sessionValue(jar, '_fresh'), false)
  })

  t.test('remember: true sets the remember cookie; without it none is set', async (t) => {
    const { jar } = await build()
    t.notOk(setCookieNames(await loginAs(jar, '1')).includes('remember_token'))
    const response = await loginAs(jar, '2', 'remember=1')
    t.ok(setCookieNames(response).includes('remember_token'))
    // Flask: test_remember_me — the cookie alone restores the login.
    jar.restartBrowser()
    t.same(await whoami(jar), { user: 'Bob', authenticated: true, fresh: false, remembered: true })
  })

  // Flask: test_set_cookie_with_invalid_custom_duration_raises_exception
  for (const duration of [0, -5, Number.NaN, Number.POSITIVE_INFINITY, '123', 3155760001, 1e13, 1e308]) {
    t.test(`duration ${String(duration)} rejects with FST_LOGIN_INVALID_DURATION before writing`, async (t) => {
      const { app, jar, users } = await build()
      addLoginWith(app, () => asUser(users.get('1')!), { remember: true, duration: duration as number })
      const response = await jar.inject({ method: 'POST', url: '/login-with' })
      t.same(response.json(), { code: 'FST_LOGIN_INVALID_DURATION' })
      t.equal(response.headers['set-cookie'], undefined, 'no cookie at all')
    })
  }

  t.test('a duration over 100 years is refused with a message that gives the limit', async (t) => {
    const { app, users } = await build()
    app.post('/login-long', { config: { login: 'optional' } }, async (request) => {
      await request.loginUser(asUser(users.get('1')!), { remember: true, duration: 1e13 })
      return 'unreachable'
    })
    const response = await app.inject({ method: 'POST', url: '/login-long' })
    t.equal(response.statusCode, 500)
    t.equal(response.json().code, 'FST_LOGIN_INVALID_DURATION')
    t.match(response.json().message, /10000000000000.*at most 3155760000 \(100 years\)/)
  })

  t.test('a cookie of the longest duration restores the login', async (t) => {
    const { jar } = await build()
    const response = await loginAs(jar, '1', `remember=1&duration=${100 * 365.25 * 24 * 3600}`)
    t.ok(setCookieNames(response).includes('remember_token'))
    jar.restartBrowser()
    t.same(await whoami(jar), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  })

  t.test('an invalid duration leaves an existing login untouched', async (t) => {
    const { app, jar, users } = await build()
    addLoginWith(app, () => asUser(users.get('2')!), { remember: true, duration: -1 })
    await loginAs(jar, '1')
    const before = await sessionData(jar)
    const response = await jar.inject({ method: 'POST', url: '/login-with' })
    t.same(response.json(), { code: 'FST_LOGIN_INVALID_DURATION' })
    t.notOk(setCookieNames(response).includes('remember_token'))
    t.same(await sessionData(jar), before, 'same session id and data')
    t.equal((await whoami(jar)).user, 'Ann')
  })

  const badUsers: Array<[string, () => LoginUser]> = [
    ['no id', () => ({ name: 'x' })],
    ['an empty id', () => ({ id: '' })],
    ['a null id', () => ({ id: null })],
    ['a boolean id', () => ({ id: true })],
    ['an object id', () => ({ id: { value: 1 } })],
    ['a NaN id', () => ({ id: NaN })],
    ['an infinite id', () => ({ id: Infinity })],
    ['getId() returning an empty string', () => ({ id: '1', getId: () => '' })],
    ['getId() throwing', () => ({ getId: () => { throw new Error('no id') } })],
    ['a UserMixin without id', () => new UserMixin() as unknown as LoginUser],
    ['a lone high surrogate in its id', () => ({ id: 'x\ud800' })],
    ['getId() returning a lone low surrogate', () => ({ getId: () => '\udc00x' })]
  ]
  for (const [label, user] of badUsers) {
    t.test(`a user with ${label} rejects with FST_LOGIN_INVALID_USER_ID before writing`, async (t) => {
      const { app, jar } = await build()
      addLoginWith(app, user)
      const response = await jar.inject({ method: 'POST', url: '/login-with' })
      t.same(response.json(), { code: 'FST_LOGIN_INVALID_USER_ID' })
      t.equal(response.headers['set-cookie'], undefined, 'no cookie at all')
    })
  }

  // UTF-8 has no lone surrogates: the remember cookie of "x\ud800" would name "x\ufffd", another user.
  for (const sessionPlugin of ['session', 'secure-session'] as const) {
    t.test(`an id that is not well-formed Unicode logs nobody in, now or from a cookie (${sessionPlugin})`, async (t) => {
      const { app, jar, loaded, users } = await build({ sessionPlugin })
      users.set('x\ufffd', new User('x\ufffd', 'Replacement'))
      addLoginWith(app, () => new User('x\ud800', 'Lone'), { remember: true })
      app.post('/login-raw', { config: { login: 'optional' } }, async (request) => request.loginUser(new User('secret\udfff', 'Lone')))
      const response = await jar.inject({ method: 'POST', url: '/login-with' })
      t.same(response.json(), { code: 'FST_LOGIN_INVALID_USER_ID' })
      t.equal(response.headers['set-cookie'], undefined, 'no session, no remember cookie')
      jar.restartBrowser()
      t.equal((await whoami(jar)).authenticated, false)
      t.same(loaded, [], 'no loader call, for either id')
      const raw = await jar.inject({ method: 'POST', url: '/login-raw' })
      t.equal(raw.statusCode, 500)
      t.match(raw.json().message, /its id is a string that is not well-formed Unicode \(it has a lone surrogate\)/, 'the error says why')
      t.notMatch(raw.body, /secret/, 'without the id')
    })
  }

  t.test('an invalid user id is rejected even with force and for an inactive user', async (t) => {
    const { app, jar } = await build()
    addLoginWith(app, () => ({ isActive: false }), { force: true })
    t.same((await jar.inject({ method: 'POST', url: '/login-with' })).json(), { code: 'FST_LOGIN_INVALID_USER_ID' })
  })

  t.test('a numeric id is stored as a string and handed to the loader as one', async (t) => {
    const seen: unknown[] = []
    const numbered = { id: 42, name: 'Num' }
    const { app, jar } = await build({
      login: {
        userLoader: (id) => {
          seen.push(id)
          return id === '42' ? numbered : null
        }
      }
    })
    addLoginWith(app, () => numbered)
    t.same((await jar.inject({ method: 'POST', url: '/login-with' })).json(), { ok: true, user: true })
    t.equal(await sessionValue(jar, '_user_id'), '42')
    t.equal((await jar.inject('/')).json().authenticated, true)
    t.same(seen, ['42'])
  })

  t.test('the number 0 is a valid id', async (t) => {
    const zero = { id: 0 }
    const { app, jar } = await build({ login: { userLoader: (id) => (id === '0' ? zero : null) } })
    addLoginWith(app, () => zero)
    t.same((await jar.inject({ method: 'POST', url: '/login-with' })).json(), { ok: true, user: true })
    t.equal(await sessionValue(jar, '_user_id'), '0')
  })

  t.test('works on a route that loads no user', async (t) => {
    const { app, jar, users } = await build()
    app.post('/login-static', { config: { login: false } }, async (request) => ({ ok: await request.loginUser(asUser(users.get('1')!)) }))
    t.same((await jar.inject({ method: 'POST', url: '/login-static' })).json(), { ok: true })
    t.equal((await whoami(jar)).user, 'Ann')
  })

  t.test('the default id prefers getId() over id', async (t) => {
    const { app, jar } = await build()
    addLoginWith(app, () => ({ id: 'plain', getId: () => 'from-getId' }))
    await jar.inject({ method: 'POST', url: '/login-with' })
    t.equal(await sessionValue(jar, '_user_id'), 'from-getId')
  })

  t.test('the getUserId option decides the stored id', async (t) => {
    const { app, jar } = await build({ login: { getUserId: (user) => (user as { email?: string }).email } })
    addLoginWith(app, () => ({ id: '1', email: 'ann@example.com' }))
    await jar.inject({ method: 'POST', url: '/login-with' })
    t.equal(await sessionValue(jar, '_user_id'), 'ann@example.com')
  })
})

t.test('logoutUser', async (t) => {
  // Flask: test_logout_logs_out_current_user, test_logout_persists
  t.test('resolves true and clears the login', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1')
    t.same((await jar.inject({ method: 'POST', url: '/logout' })).json(), { ok: true })
    t.same(await whoami(jar), { user: null, authenticated: false, fresh: false, remembered: false })
    t.equal(await sessionValue(jar, '_user_id'), null)
    t.equal(await sessionValue(jar, '_fresh'), null)
    t.equal(await sessionValue(jar, '_id'), null)
  })

  t.test('makes request.user anonymous within the same request', async (t) => {
    const { app, jar } = await build()
    app.post('/logout-and-read', { config: { login: 'optional' } }, async (request) => {
      await request.logoutUser()
      const user = request.user as { isAnonymous?: boolean }
      return { anonymous: user.isAnonymous, authenticated: request.isAuthenticated(), fresh: request.loginFresh }
    })
    await loginAs(jar, '1')
    t.same((await jar.inject({ method: 'POST', url: '/logout-and-read' })).json(), { anonymous: true, authenticated: false, fresh: false })
  })

  // Flask: test_logout_stays_logged_out_with_remember_me
  t.test('clears the remember cookie that was sent', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1', 'remember=1')
    const response = await jar.inject({ method: 'POST', url: '/logout' })
    t.ok(clearedCookie(response, 'remember_token'), 'remember cookie cleared')
    t.equal(jar.get('remember_token'), undefined)
    jar.restartBrowser()
    t.equal((await whoami(jar)).authenticated, false)
  })

  t.test('sets no remember cookie when none was sent', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1')
    const response = await jar.inject({ method: 'POST', url: '/logout' })
    t.notOk(setCookieNames(response).includes('remember_token'))
  })

  // Flask: test_logout_without_current_user
  t.test('works when nobody is logged in and writes nothing', async (t) => {
    const { jar } = await build()
    const response = await jar.inject({ method: 'POST', url: '/logout' })
    t.equal(response.statusCode, 200)
    t.same(response.json(), { ok: true })
    t.equal(response.headers['set-cookie'], undefined)
  })

  t.test('keeps other session data', async (t) => {
    const { jar } = await build()
    await jar.inject({ method: 'POST', url: '/cart/apple' })
    await loginAs(jar, '1')
    await jar.inject({ method: 'POST', url: '/logout' })
    t.same(await sessionValue(jar, 'cart'), ['apple'])
    t.equal(await sessionValue(jar, '_user_id'), null)
  })
})

t.test('confirmLogin', async (t) => {
  // Flask: test_confirm_login
  t.test('makes a login restored from the remember cookie fresh again', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1', 'remember=1')
    jar.restartBrowser()
    t.equal((await whoami(jar)).fresh, false)
    t.same((await jar.inject({ method: 'POST', url: '/confirm' })).json(), { fresh: true })
    t.equal((await whoami(jar)).fresh, true)
    t.equal(await sessionValue(jar, '_fresh'), true)
  })

  t.test('makes a login made with fresh: false fresh', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1', 'fresh=0')
    await jar.inject({ method: 'POST', url: '/confirm' })
    t.equal((await whoami(jar)).fresh, true)
  })
})

t.test('isAuthenticated', async (t) => {
  t.test('is false for the anonymous user', async (t) => {
    const { jar } = await build()
    t.equal((await whoami(jar)).authenticated, false)
  })

  t.test('is false for a loaded user whose isAuthenticated is false', async (t) => {
    class Suspended extends User {
      override get isAuthenticated (): boolean { return false }
    }
    const users = new Map<string, User>([['9', new Suspended('9', 'Sus')]])
    const { app, jar, loaded } = await build({ users })
    app.get('/name', async (request) => ({ name: (request.user as { name?: string }).name ?? null, authenticated: request.isAuthenticated() }))
    t.same((await loginAs(jar, '9')).json(), { ok: true })
    t.same((await jar.inject('/name')).json(), { name: 'Sus', authenticated: false })
    t.same(loaded, ['9'], 'the user was loaded')
  })
})

t.test('loginFresh and loginRemembered', async (t) => {
  // Flask: test_login_user
  t.test('a plain login is fresh and not remembered', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1')
    const me = await whoami(jar)
    t.equal(me.fresh, true)
    t.equal(me.remembered, false)
  })

  // Flask: test_remembered_login_arg_to_test_client
  t.test('a login with remember is remembered on the next request', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1', 'remember=1')
    const me = await whoami(jar)
    t.equal(me.remembered, true)
    t.equal(me.fresh, true)
  })

  t.test('loginRemembered is false once logoutUser clears the cookie', async (t) => {
    const { app, jar } = await build()
    app.post('/logout-remembered', { config: { login: 'optional' } }, async (request) => {
      const before = request.loginRemembered
      await request.logoutUser()
      return { before, after: request.loginRemembered }
    })
    await loginAs(jar, '1', 'remember=1')
    t.same((await jar.inject({ method: 'POST', url: '/logout-remembered' })).json(), { before: true, after: false })
  })

  t.test('loginRemembered is false for a tampered remember cookie', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1', 'remember=1')
    jar.set('remember_token', jar.get('remember_token')!.slice(0, -2) + 'xx')
    t.equal((await whoami(jar)).remembered, false)
  })
})

t.test('session keys', async (t) => {
  t.test('SESSION_KEYS lists the Flask-Login names', async (t) => {
    for (const key of ['_user_id', '_fresh', '_id', '_remember', '_remember_seconds', 'next']) {
      t.ok(SESSION_KEYS.includes(key), key)
    }
    t.ok(Object.isFrozen(SESSION_KEYS))
  })

  t.test('a login stores _user_id, _fresh and _id', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1')
    t.equal(await sessionValue(jar, '_user_id'), '1')
    t.equal(await sessionValue(jar, '_fresh'), true)
    const identifier = await sessionValue(jar, '_id')
    t.type(identifier, 'string')
    t.match(identifier, /^[0-9a-f]{128}$/, 'a SHA-512 hex digest')
  })

  // Flask-Login stores the identifier at every login, protection or not.
  t.test('_id is stored even without session protection', async (t) => {
    const { jar } = await build({ login: { sessionProtection: false } })
    await loginAs(jar, '1')
    t.equal(await sessionValue(jar, '_user_id'), '1')
    t.type(await sessionValue(jar, '_id'), 'string')
  })

  t.test('every key a login and logout write is one of SESSION_KEYS', async (t) => {
    const { jar } = await build({ login: { sessionVersion: (user) => String((user as { version?: unknown }).version), freshMaxAge: 60 } })
    await loginAs(jar, '1', 'remember=1')
    const afterLogin = Object.keys((await sessionData(jar)).data)
    t.ok(afterLogin.length >= 3)
    for (const key of afterLogin) t.ok(SESSION_KEYS.includes(key), `${key} is listed`)
  })

  t.test('nothing else in the session is touched', async (t) => {
    const { app, jar } = await build()
    app.post('/fill', { config: { login: false } }, async (request) => {
      const session = sessionOf(request)
      session.set('cart', ['pear'])
      session.set('theme', 'dark')
      session.set('count', 3)
      return { ok: true }
    })
    await jar.inject({ method: 'POST', url: '/fill' })
    const others = (data: Record<string, unknown>): Record<string, unknown> =>
      Object.fromEntries(Object.entries(data).filter(([key]) => !SESSION_KEYS.includes(key)))
    const before = others((await sessionData(jar)).data)
    t.same(before, { cart: ['pear'], theme: 'dark', count: 3 })
    await loginAs(jar, '1', 'remember=1')
    t.same(others((await sessionData(jar)).data), before, 'after login')
    await jar.inject({ method: 'POST', url: '/confirm' })
    t.same(others((await sessionData(jar)).data), before, 'after confirmLogin')
    await jar.inject({ method: 'POST', url: '/logout' })
    t.same(others((await sessionData(jar)).data), before, 'after logout')
  })
})

t.test('regenerateSession', async (t) => {
  t.test('the session id changes on login', async (t) => {
    const { jar } = await build()
    await jar.inject({ method: 'POST', url: '/cart/apple' })
    const before = (await sessionData(jar)).id
    t.type(before, 'string')
    await loginAs(jar, '1')
    const after = await sessionData(jar)
    t.not(after.id, before)
    t.same(after.data.cart, ['apple'], 'other data is kept')
  })

  t.test('the session id changes on logout', async (t) => {
    const { jar } = await build()
    await jar.inject({ method: 'POST', url: '/cart/apple' })
    await loginAs(jar, '1')
    const before = (await sessionData(jar)).id
    await jar.inject({ method: 'POST', url: '/logout' })
    const after = await sessionData(jar)
    t.not(after.id, before)
    t.same(after.data.cart, ['apple'], 'other data is kept')
  })

  t.test('the session cookie from before logout no longer authenticates', async (t) => {
    const { app, jar } = await build()
    await loginAs(jar, '1')
    const stolen = jar.header('/')
    await jar.inject({ method: 'POST', url: '/logout' })
    const response = await app.inject({ url: '/', headers: { cookie: stolen } })
    t.equal(response.json().authenticated, false)
  })

  t.test('the session cookie from before a new login no longer authenticates', async (t) => {
    const { app, jar } = await build()
    await loginAs(jar, '1')
    const previous = jar.header('/')
    await loginAs(jar, '2')
    t.equal((await whoami(jar)).user, 'Bob')
    const response = await app.inject({ url: '/', headers: { cookie: previous } })
    t.equal(response.json().authenticated, false)
  })

  t.test('a session id planted before login does not become the login', async (t) => {
    const { app, jar } = await build()
    await jar.inject({ method: 'POST', url: '/cart/apple' })
    const planted = jar.header('/')
    await loginAs(jar, '1')
    t.equal((await whoami(jar)).authenticated, true)
    const response = await app.inject({ url: '/', headers: { cookie: planted } })
    t.equal(response.json().authenticated, false)
  })

  t.test('regenerateSession: false keeps the session id', async (t) => {
    const { jar } = await build({ login: { regenerateSession: false } })
    await jar.inject({ method: 'POST', url: '/cart/apple' })
    const before = (await sessionData(jar)).id
    await loginAs(jar, '1')
    t.equal((await sessionData(jar)).id, before, 'on login')
    await jar.inject({ method: 'POST', url: '/logout' })
    t.equal((await sessionData(jar)).id, before, 'on logout')
  })
})

t.test('freshMaxAge', async (t) => {
  function shiftClock (t: Test, milliseconds: number): void {
    const realNow = Date.now
    Date.now = () => realNow() + milliseconds
    t.teardown(() => { Date.now = realNow })
  }

  t.test('a login stops being fresh after freshMaxAge seconds, and stays logged in', async (t) => {
    const { jar } = await build({ login: { freshMaxAge: 1 } })
    await loginAs(jar, '1')
    t.equal((await whoami(jar)).fresh, true)
    shiftClock(t, 1500)
    const me = await whoami(jar)
    t.equal(me.authenticated, true)
    t.equal(me.fresh, false)
    t.equal((await jar.inject('/fresh')).statusCode, 401, 'requireFreshLogin refuses it')
  })

  t.test('confirmLogin restarts the freshMaxAge clock', async (t) => {
    const { jar } = await build({ login: { freshMaxAge: 1 } })
    await loginAs(jar, '1')
    shiftClock(t, 1500)
    t.equal((await whoami(jar)).fresh, false)
    await jar.inject({ method: 'POST', url: '/confirm' })
    t.equal((await whoami(jar)).fresh, true)
  })

  t.test('without freshMaxAge a login stays fresh', async (t) => {
    const { jar } = await build()
    await loginAs(jar, '1')
    shiftClock(t, 10 * 24 * 3600 * 1000)
    t.equal((await whoami(jar)).fresh, true)
  })
})

t.test('with @fastify/secure-session', async (t) => {
  t.test('log in, keep other data, log out', async (t) => {
    const { jar } = await build({ sessionPlugin: 'secure-session' })
    await jar.inject({ method: 'POST', url: '/cart/apple' })
    t.same((await loginAs(jar, '1')).json(), { ok: true })
    t.same(await whoami(jar), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
    t.equal(await sessionValue(jar, '_user_id'), '1')
    t.equal(await sessionValue(jar, '_fresh'), true)
    t.same((await jar.inject({ method: 'POST', url: '/logout' })).json(), { ok: true })
    t.equal((await whoami(jar)).authenticated, false)
    t.equal(await sessionValue(jar, '_user_id'), null)
    t.same(await sessionValue(jar, 'cart'), ['apple'])
  })

  t.test('an invalid user id writes nothing', async (t) => {
    const { app, jar } = await build({ sessionPlugin: 'secure-session' })
    addLoginWith(app, () => ({ id: '' }))
    const response = await jar.inject({ method: 'POST', url: '/login-with' })
    t.same(response.json(), { code: 'FST_LOGIN_INVALID_USER_ID' })
    t.equal(response.headers['set-cookie'], undefined)
  })
})
