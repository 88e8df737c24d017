// How a request's user is loaded, in Flask-Login's order: the session's user
// id, else the remember cookie, else the request loader, else anonymous.
import t from 'tap'
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify'
import { SESSION_KEYS, type LoginUser, type UserLoader } from '../lib/index.js'
import { buildApp, CookieJar, makeUsers, type BuildOptions, type User } from './helpers.js'

interface SessionView {
  get (key: string): unknown
  set (key: string, value: unknown): void
}

function sessionOf (request: FastifyRequest): SessionView {
  return request.session as unknown as SessionView
}

interface Built {
  app: FastifyInstance
  jar: CookieJar
  loaded: string[]
  users: Map<string, User>
}

async function build (options: BuildOptions = {}): Promise<Built> {
  const built = await buildApp(options)
  built.app.get<{ Params: { key: string } }>('/session/:key', { config: { login: false } }, async (request) => {
    return { value: sessionOf(request).get(request.params.key) ?? null }
  })
  built.app.post('/cart', { config: { login: false } }, async (request) => {
    sessionOf(request).set('cart', ['apple'])
    return { ok: true }
  })
  t.teardown(() => built.app.close())
  return { ...built, jar: new CookieJar(built.app) }
}

async function sessionValue (jar: CookieJar, key: string): Promise<unknown> {
  return (await jar.inject(`/session/${key}`)).json().value
}

async function whoami (jar: CookieJar, headers: Record<string, string> = {}): Promise<{ user: string | null, authenticated: boolean, fresh: boolean, remembered: boolean }> {
  return (await jar.inject({ url: '/', headers })).json()
}

function setCookieNames (response: LightMyRequestResponse): string[] {
  return (response.cookies as Array<{ name: string }>).map((cookie) => cookie.name)
}

/** A requestLoader that reads an `x-api-key` header naming a user id, counting its calls. */
function apiKeyLoader (users: Map<string, User>, calls: string[]): (request: FastifyRequest) => LoginUser | null {
  return (request) => {
    const key = request.headers['x-api-key']
    calls.push(typeof key === 'string' ? key : '')
    const user = typeof key === 'string' ? users.get(key) : undefined
    return user === undefined ? null : user as object as LoginUser
  }
}

t.test('the session user id is loaded through userLoader', async (t) => {
  const { jar, loaded } = await build()
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.same(loaded, [], 'logging in does not call the loader')
  t.equal((await whoami(jar)).user, 'Ann')
  t.same(loaded, ['1'])
})

t.test('the remember cookie is used when the session holds no login', async (t) => {
  const { app, jar, loaded } = await build()
  const restored: string[] = []
  app.loginManager.on('userLoadedFromCookie', ({ user }) => { restored.push((user as { name?: string }).name ?? '') })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  t.same(await whoami(jar), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  t.same(loaded, ['1'])
  t.same(restored, ['Ann'], 'userLoadedFromCookie')
})

t.test('a login restored from the cookie is written to the session, marked not fresh', async (t) => {
  const { jar, loaded } = await build()
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  await whoami(jar)
  t.equal(await sessionValue(jar, '_user_id'), '1')
  t.equal(await sessionValue(jar, '_fresh'), false)
  // Without the cookie the session alone now carries the login.
  jar.delete('remember_token')
  t.same(await whoami(jar), { user: 'Ann', authenticated: true, fresh: false, remembered: false })
  t.same(loaded, ['1', '1'])
})

// Flask: test_login_user_with_request
t.test('requestLoader is used when there is no session login and no remember cookie', async (t) => {
  const users = makeUsers()
  const calls: string[] = []
  const { app, jar, loaded } = await build({ users, login: { requestLoader: apiKeyLoader(users, calls) } })
  const fromRequest: string[] = []
  app.loginManager.on('userLoadedFromRequest', ({ user }) => { fromRequest.push((user as { name?: string }).name ?? '') })
  t.equal((await whoami(jar, { 'x-api-key': '2' })).user, 'Bob')
  t.same(calls, ['2'])
  t.same(fromRequest, ['Bob'], 'userLoadedFromRequest')
  t.same(loaded, [], 'userLoader is not called')
})

// Flask: test_login_user_with_request_does_not_modify_session
t.test('a user from requestLoader does not touch the session', async (t) => {
  const users = makeUsers()
  const { jar } = await build({ users, login: { requestLoader: apiKeyLoader(users, []) } })
  const response = await jar.inject({ url: '/', headers: { 'x-api-key': '2' } })
  t.equal(response.json().user, 'Bob')
  t.equal(response.headers['set-cookie'], undefined, 'no session cookie')
  t.equal((await whoami(jar)).authenticated, false, 'the next request without the key is anonymous')
})

t.test('a user from requestLoader is authenticated but not fresh', async (t) => {
  const users = makeUsers()
  const { jar } = await build({ users, login: { requestLoader: apiKeyLoader(users, []) } })
  t.same(await whoami(jar, { 'x-api-key': '2' }), { user: 'Bob', authenticated: true, fresh: false, remembered: false })
  t.equal((await jar.inject({ url: '/protected', headers: { 'x-api-key': '2' } })).statusCode, 200)
  t.equal((await jar.inject({ url: '/fresh', headers: { 'x-api-key': '2' } })).statusCode, 401)
})

// Flask: test_login_invalid_user_with_request
t.test('requestLoader returning null leaves the request anonymous', async (t) => {
  const users = makeUsers()
  const { jar } = await build({ users, login: { requestLoader: apiKeyLoader(users, []) } })
  t.equal((await whoami(jar, { 'x-api-key': '9000' })).authenticated, false)
})

// Flask: LoginViaRequestTestCase.test_login_via_request_uses_cookie_when_already_logged_in
t.test('with only a requestLoader, a request after loginUser still reaches requestLoader', async (t) => {
  const users = makeUsers()
  const calls: unknown[] = []
  const { jar } = await build({
    users,
    login: {
      userLoader: undefined,
      requestLoader: (request) => {
        const id = request.headers['x-api-key'] ?? sessionOf(request).get('_user_id')
        calls.push(id)
        const user = typeof id === 'string' ? users.get(id) : undefined
        return user === undefined ? null : user as object as LoginUser
      }
    }
  })
  await jar.inject({ method: 'POST', url: '/login/1' })
  calls.length = 0
  t.equal((await whoami(jar)).user, 'Ann', 'the requestLoader reads the session login')
  t.same(calls, ['1'])
})

t.test('with only a requestLoader, a session holding a login does not block an API key', async (t) => {
  const users = makeUsers()
  const calls: string[] = []
  const { jar } = await build({ users, login: { userLoader: undefined, requestLoader: apiKeyLoader(users, calls) } })
  await jar.inject({ method: 'POST', url: '/login/1' })
  calls.length = 0
  t.equal((await whoami(jar, { 'x-api-key': '2' })).user, 'Bob')
  t.same(calls, ['2'])
})

t.test('the session login wins over requestLoader', async (t) => {
  const users = makeUsers()
  const calls: string[] = []
  const { jar } = await build({ users, login: { requestLoader: apiKeyLoader(users, calls) } })
  await jar.inject({ method: 'POST', url: '/login/1' })
  calls.length = 0
  t.equal((await whoami(jar, { 'x-api-key': '2' })).user, 'Ann')
  t.same(calls, [], 'requestLoader is not called')
})

t.test('the remember cookie wins over requestLoader', async (t) => {
  const users = makeUsers()
  const calls: string[] = []
  const { jar } = await build({ users, login: { requestLoader: apiKeyLoader(users, calls) } })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  calls.length = 0
  t.equal((await whoami(jar, { 'x-api-key': '2' })).user, 'Ann')
  t.same(calls, [], 'requestLoader is not called')
})

t.test('a bad remember cookie is treated as absent: requestLoader still runs', async (t) => {
  const users = makeUsers()
  const calls: string[] = []
  const { jar, loaded } = await build({ users, login: { requestLoader: apiKeyLoader(users, calls) } })
  jar.set('remember_token', 'not-a-token')
  t.equal((await whoami(jar, { 'x-api-key': '2' })).user, 'Bob')
  t.same(calls, ['2'])
  t.same(loaded, [])
})

t.test('with no credentials the user is anonymous', async (t) => {
  const { app, jar } = await build()
  app.get('/anon', async (request) => {
    const user = request.user as { isAnonymous?: boolean, isAuthenticated?: boolean, getId?: () => unknown }
    return { anonymous: user.isAnonymous, authenticated: user.isAuthenticated, id: user.getId === undefined ? 'none' : user.getId() }
  })
  t.same((await jar.inject('/anon')).json(), { anonymous: true, authenticated: false, id: null })
})

// Flask: test_incorrect_id_logs_out
t.test('a loader returning null for the stored id makes the request anonymous', async (t) => {
  const { jar, users } = await build()
  await jar.inject({ method: 'POST', url: '/login/1' })
  users.delete('1')
  t.equal((await whoami(jar)).authenticated, false)
})

t.test('a loader returning undefined for the stored id makes the request anonymous', async (t) => {
  const users = makeUsers()
  const { jar } = await build({ users, login: { userLoader: (id) => id === '1' ? undefined : users.get(id) as object as LoginUser } })
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.equal((await whoami(jar)).authenticated, false)
})

t.test('the stale id leaves the session, other data stays', async (t) => {
  const { jar, users, loaded } = await build()
  await jar.inject({ method: 'POST', url: '/cart' })
  await jar.inject({ method: 'POST', url: '/login/1' })
  users.delete('1')
  await whoami(jar)
  t.equal(await sessionValue(jar, '_user_id'), null)
  t.same(await sessionValue(jar, 'cart'), ['apple'])
  loaded.length = 0
  await whoami(jar)
  t.same(loaded, [], 'the stale id is not loaded again')
})

t.test('no login, no remember cookie and no requestLoader: no loader call and no cookie', async (t) => {
  const { app, loaded } = await build()
  const accessed: unknown[] = []
  app.loginManager.on('userAccessed', (payload) => { accessed.push(payload) })
  const response = await app.inject('/')
  t.equal(response.json().authenticated, false)
  t.equal(response.headers['set-cookie'], undefined)
  t.same(loaded, [])
  t.equal(accessed.length, 0)
})

// Flask: test_not_fresh_not_modified
t.test('loading a logged-in user from the session writes nothing', async (t) => {
  for (const fresh of ['1', '0']) {
    const { jar } = await build({ sessionPlugin: 'secure-session' })
    await jar.inject({ method: 'POST', url: `/login/1?fresh=${fresh}` })
    const response = await jar.inject('/')
    t.equal(response.json().user, 'Ann')
    t.equal(response.headers['set-cookie'], undefined, `fresh=${fresh}: no Set-Cookie`)
  }
})

t.test('a session without a login calls no loader', async (t) => {
  const { jar, loaded } = await build()
  await jar.inject({ method: 'POST', url: '/cart' })
  t.equal((await whoami(jar)).authenticated, false)
  t.same(loaded, [])
})

t.test('at most one userLoader call per request', async (t) => {
  t.test('with both a session login and a remember cookie', async (t) => {
    const { jar, loaded } = await build()
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    t.equal((await whoami(jar)).user, 'Ann')
    t.same(loaded, ['1'])
  })

  t.test('when restoring from the remember cookie', async (t) => {
    const { jar, loaded } = await build()
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    jar.restartBrowser()
    await whoami(jar)
    t.same(loaded, ['1'])
  })

  t.test('a stale session id is not followed by the remember cookie', async (t) => {
    const users = makeUsers()
    const loaded: string[] = []
    let gone = false
    const { jar } = await build({
      users,
      login: {
        userLoader: (id) => {
          loaded.push(id)
          return gone ? null : users.get(id) as object as LoginUser
        }
      }
    })
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    gone = true
    t.equal((await whoami(jar)).authenticated, false)
    t.same(loaded, ['1'])
  })

  t.test('a remember cookie for a missing user is not followed by requestLoader', async (t) => {
    const users = makeUsers()
    const calls: string[] = []
    const { jar, loaded } = await build({ users, login: { requestLoader: apiKeyLoader(users, calls) } })
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    jar.restartBrowser()
    users.delete('1')
    t.equal((await whoami(jar, { 'x-api-key': '2' })).authenticated, false)
    t.same(loaded, ['1'])
  })

  t.test('across several guards and decorators on one route', async (t) => {
    const { app, jar, loaded } = await build()
    app.get('/busy', { preHandler: [app.requireLogin, app.requireFreshLogin] }, async (request) => {
      return { a: request.isAuthenticated(), b: request.loginFresh, c: request.loginRemembered, d: (request.user as { name?: string }).name }
    })
    await jar.inject({ method: 'POST', url: '/login/1' })
    t.same((await jar.inject('/busy')).json(), { a: true, b: true, c: false, d: 'Ann' })
    t.same(loaded, ['1'])
  })
})

t.test('a loader that throws fails the request with a 500 through the error handler', async (t) => {
  for (const mode of ['sync', 'async'] as const) {
    t.test(mode, async (t) => {
      const failure = new Error('database down')
      let calls = 0
      const loader: UserLoader = mode === 'sync'
        ? () => { calls++; throw failure }
        : async () => { calls++; throw failure }
      const users = makeUsers()
      const requestCalls: string[] = []
      const { app, jar } = await build({ users, login: { userLoader: loader, requestLoader: apiKeyLoader(users, requestCalls) } })
      const handled: unknown[] = []
      app.setErrorHandler((error, _request, reply) => {
        handled.push(error)
        return reply.code(500).send({ message: (error as Error).message })
      })
      await jar.inject({ method: 'POST', url: '/login/1' })
      requestCalls.length = 0
      const response = await jar.inject({ url: '/', headers: { 'x-api-key': '2' } })
      t.equal(response.statusCode, 500)
      t.same(response.json(), { message: 'database down' })
      t.equal(handled[0], failure, 'the loader error reaches the error handler')
      t.equal(calls, 1)
      t.same(requestCalls, [], 'no fall back to requestLoader')
    })
  }
})

t.test('a throwing loader gives a 500 with the default error handler, not another user', async (t) => {
  let fail = false
  const users = makeUsers()
  const { jar } = await build({
    users,
    login: {
      userLoader: (id) => {
        if (fail) throw new Error('boom')
        return users.get(id) as object as LoginUser
      }
    }
  })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  fail = true
  const response = await jar.inject('/')
  t.equal(response.statusCode, 500)
  t.notOk(setCookieNames(response).includes('remember_token'), 'the remember cookie is not cleared')
})

t.test('a loader that throws on the remember cookie fails the request, without falling back', async (t) => {
  const users = makeUsers()
  const requestCalls: string[] = []
  let fail = false
  const { jar } = await build({
    users,
    login: {
      requestLoader: apiKeyLoader(users, requestCalls),
      userLoader: (id) => {
        if (fail) throw new Error('boom')
        return users.get(id) as object as LoginUser
      }
    }
  })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  fail = true
  requestCalls.length = 0
  const response = await jar.inject({ url: '/', headers: { 'x-api-key': '2' } })
  t.equal(response.statusCode, 500)
  t.same(requestCalls, [], 'requestLoader is not called')
  t.notOk(setCookieNames(response).includes('sessionId'), 'no session was written')
})

t.test('a requestLoader that throws fails the request with a 500', async (t) => {
  const { jar } = await build({ login: { requestLoader: () => { throw new Error('bad key store') } } })
  t.equal((await jar.inject('/')).statusCode, 500)
})

t.test('sync and async loaders both work', async (t) => {
  for (const mode of ['sync', 'async'] as const) {
    t.test(mode, async (t) => {
      const users = makeUsers()
      const find = (id: string): LoginUser | null => (users.get(id) as object | undefined ?? null) as LoginUser | null
      const userLoader: UserLoader = mode === 'sync' ? find : async (id) => { await new Promise((resolve) => setImmediate(resolve)); return find(id) }
      const requestLoader = mode === 'sync'
        ? (request: FastifyRequest) => find(String(request.headers['x-api-key']))
        : async (request: FastifyRequest) => find(String(request.headers['x-api-key']))
      const { jar } = await build({ users, login: { userLoader, requestLoader } })
      t.equal((await whoami(jar, { 'x-api-key': '2' })).user, 'Bob', 'requestLoader')
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      t.equal((await whoami(jar)).user, 'Ann', 'from the session')
      jar.restartBrowser()
      t.equal((await whoami(jar)).user, 'Ann', 'from the remember cookie')
    })
  }
})

t.test('userLoader receives the id and the request', async (t) => {
  const users = makeUsers()
  const seen: Array<[string, string]> = []
  const { jar } = await build({
    users,
    login: {
      userLoader: (id, request) => {
        seen.push([id, request.url])
        return users.get(id) as object as LoginUser
      }
    }
  })
  await jar.inject({ method: 'POST', url: '/login/2' })
  await jar.inject('/?x=1')
  t.same(seen, [['2', '/?x=1']])
})

t.test('a custom anonymousUser factory supplies the anonymous user', async (t) => {
  const requests: unknown[] = []
  const { app, jar } = await build({
    login: {
      anonymousUser: (request) => {
        requests.push(request.url)
        return { isAuthenticated: false, isActive: false, isAnonymous: true, getId: () => null, name: 'Guest' }
      }
    }
  })
  app.get('/guest', async (request) => ({ name: (request.user as { name?: string }).name, authenticated: request.isAuthenticated() }))
  t.same((await jar.inject('/guest')).json(), { name: 'Guest', authenticated: false })
  t.ok(requests.includes('/guest'), 'the factory gets the request')
  await jar.inject({ method: 'POST', url: '/login/1' })
  await jar.inject({ method: 'POST', url: '/logout' })
  t.equal((await jar.inject('/guest')).json().name, 'Guest', 'after logout too')
})

t.test('request.user is never undefined in a handler', async (t) => {
  const { app, jar } = await build()
  app.get('/plain', async (request) => ({ defined: request.user !== undefined && request.user !== null }))
  t.same((await jar.inject('/plain')).json(), { defined: true })
})

t.test('config.login false loads no user even with a valid session', async (t) => {
  const { app, jar, loaded } = await build()
  const accessed: unknown[] = []
  app.loginManager.on('userAccessed', (payload) => { accessed.push(payload) })
  app.get('/static', { config: { login: false } }, async (request) => {
    const user = request.user as { isAnonymous?: boolean } | undefined
    return { defined: user !== undefined, anonymous: user?.isAnonymous, authenticated: request.isAuthenticated(), fresh: request.loginFresh }
  })
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.same((await jar.inject('/static')).json(), { defined: true, anonymous: true, authenticated: false, fresh: false })
  t.same(loaded, [])
  t.equal(accessed.length, 0)
  t.equal((await whoami(jar)).user, 'Ann', 'the login is intact')
})

t.test('sessionVersion', async (t) => {
  const versioned: BuildOptions = { login: { sessionVersion: (user) => String((user as { version?: unknown }).version) } }

  t.test('is stored at login', async (t) => {
    const { jar } = await build(versioned)
    await jar.inject({ method: 'POST', url: '/login/1' })
    const stored: unknown[] = []
    for (const key of SESSION_KEYS) {
      if (key !== '_user_id') stored.push(await sessionValue(jar, key))
    }
    t.ok(stored.includes('1'), 'the version is under one of SESSION_KEYS')
  })

  t.test('an unchanged version keeps the login', async (t) => {
    const { jar } = await build(versioned)
    await jar.inject({ method: 'POST', url: '/login/1' })
    t.equal((await whoami(jar)).user, 'Ann')
  })

  t.test('a changed version logs the session out', async (t) => {
    const { jar, users } = await build(versioned)
    await jar.inject({ method: 'POST', url: '/login/1' })
    users.get('1')!.version = '2'
    t.equal((await whoami(jar)).authenticated, false)
    t.equal(await sessionValue(jar, '_user_id'), null)
  })

  t.test('a changed version rejects the remember cookie and clears it', async (t) => {
    const { jar, users } = await build(versioned)
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    users.get('1')!.version = '2'
    jar.restartBrowser()
    const response = await jar.inject('/')
    t.equal(response.json().authenticated, false)
    t.ok(setCookieNames(response).includes('remember_token'), 'a clearing Set-Cookie')
    t.equal(jar.get('remember_token'), undefined)
  })

  t.test('a changed version logs out a session that also has a remember cookie', async (t) => {
    const { jar, users } = await build(versioned)
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    users.get('1')!.version = '2'
    t.equal((await whoami(jar)).authenticated, false)
    t.equal((await whoami(jar)).authenticated, false, 'the cookie does not log it back in')
  })

  t.test('a new login after the change works', async (t) => {
    const { jar, users } = await build(versioned)
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    users.get('1')!.version = '2'
    await whoami(jar)
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    jar.restartBrowser()
    t.equal((await whoami(jar)).user, 'Ann')
  })
})
