// The guards: app.requireLogin, app.requireFreshLogin, route `config.login`
// and `loginRequiredByDefault` (SPEC sections 3 and 5).
import t from 'tap'
import fastifyAuth from '@fastify/auth'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { buildApp, CookieJar, type User } from './helpers.js'

async function loggedIn (app: FastifyInstance, query = '', id = '1'): Promise<CookieJar> {
  const jar = new CookieJar(app)
  const response = await jar.inject({ method: 'POST', url: `/login/${id}${query}` })
  if (response.json().ok !== true) throw new Error('login failed')
  return jar
}

// The error of an invalid route, whether it is thrown while registering or by ready().
async function registrationError (app: FastifyInstance, register: () => void): Promise<unknown> {
  try {
    register()
    await app.ready()
  } catch (error) {
    return error
  }
  return null
}

t.test('requireLogin', async (t) => {
  // Flask: test_login_required_decorator
  t.test('answers 401 to an anonymous request', async (t) => {
    const { app } = await buildApp()
    const response = await app.inject('/protected')
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_UNAUTHORIZED')
  })

  t.test('lets an authenticated request through', async (t) => {
    const { app } = await buildApp()
    const jar = await loggedIn(app)
    const response = await jar.inject('/protected')
    t.equal(response.statusCode, 200)
    t.same(response.json(), { user: 'Ann' })
  })

  t.test('lets a stale login through', async (t) => {
    const { app } = await buildApp()
    const jar = await loggedIn(app, '?fresh=0')
    t.equal((await jar.inject('/protected')).statusCode, 200)
  })

  t.test('does not run the handler for an anonymous request', async (t) => {
    const { app } = await buildApp({ routes: false })
    let ran = false
    app.get('/guarded', { preHandler: app.requireLogin }, async () => {
      ran = true
      return 'secret'
    })
    const response = await app.inject('/guarded')
    t.equal(response.statusCode, 401)
    t.notOk(response.body.includes('secret'))
    t.equal(ran, false)
  })

  t.test('guards HEAD requests of a GET route', async (t) => {
    const { app } = await buildApp()
    t.equal((await app.inject({ method: 'HEAD', url: '/protected' })).statusCode, 401)
  })

  t.test('treats a user whose isAuthenticated is false as anonymous', async (t) => {
    const { app, users } = await buildApp()
    const jar = await loggedIn(app)
    Object.defineProperty(users.get('1') as User, 'isAuthenticated', { value: false })
    t.equal((await jar.inject('/protected')).statusCode, 401)
  })

  t.test('applies after logout', async (t) => {
    const { app } = await buildApp()
    const jar = await loggedIn(app)
    await jar.inject({ method: 'POST', url: '/logout' })
    t.equal((await jar.inject('/protected')).statusCode, 401)
  })
})

t.test('requireFreshLogin', async (t) => {
  t.test('answers 401 unauthorized to an anonymous request', async (t) => {
    const { app } = await buildApp()
    const response = await app.inject('/fresh')
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_UNAUTHORIZED')
  })

  t.test('lets a fresh login through', async (t) => {
    const { app } = await buildApp()
    const jar = await loggedIn(app)
    const response = await jar.inject('/fresh')
    t.equal(response.statusCode, 200)
    t.same(response.json(), { user: 'Ann' })
  })

  t.test('answers needs-refresh to a login made not fresh', async (t) => {
    const { app } = await buildApp()
    const jar = await loggedIn(app, '?fresh=0')
    const response = await jar.inject('/fresh')
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_NEEDS_REFRESH')
  })

  // Flask: test_fresh_login_required_decorator
  t.test('answers needs-refresh to a login restored from the remember cookie, until confirmed', async (t) => {
    const { app } = await buildApp()
    const jar = await loggedIn(app, '?remember=1')
    t.equal((await jar.inject('/fresh')).statusCode, 200)
    jar.restartBrowser()
    t.ok(jar.get('remember_token'), 'the remember cookie survives the restart')
    const stale = await jar.inject('/fresh')
    t.equal(stale.statusCode, 401)
    t.equal(stale.json().code, 'FST_LOGIN_NEEDS_REFRESH')
    await jar.inject({ method: 'POST', url: '/confirm' })
    t.equal((await jar.inject('/fresh')).statusCode, 200)
  })

  t.test('answers needs-refresh after freshMaxAge has passed', async (t) => {
    const { app } = await buildApp({ login: { freshMaxAge: 60 } })
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/fresh')).statusCode, 200)
    const realNow = Date.now
    Date.now = () => realNow() + 61_000
    t.teardown(() => { Date.now = realNow })
    t.equal((await jar.inject('/fresh')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
  })

  for (const sessionPlugin of ['session', 'secure-session'] as const) {
    t.test(`a login is fresh for exactly freshMaxAge seconds, not a millisecond longer (${sessionPlugin})`, async (t) => {
      const realNow = Date.now
      t.teardown(() => { Date.now = realNow })
      const loginTime = realNow()
      Date.now = () => loginTime
      const { app } = await buildApp({ sessionPlugin, login: { freshMaxAge: 60 } })
      const jar = await loggedIn(app)
      Date.now = () => loginTime + 60_000
      t.equal((await jar.inject('/fresh')).statusCode, 200, 'at freshMaxAge: still fresh')
      t.equal((await jar.inject('/')).json().fresh, true)
      Date.now = () => loginTime + 60_001
      t.equal((await jar.inject('/fresh')).json().code, 'FST_LOGIN_NEEDS_REFRESH', 'one millisecond later: stale')
      t.equal((await jar.inject('/')).json().fresh, false)
    })
  }
})

t.test('guards outside a route\'s preHandler', async (t) => {
  // Fastify gives a route hook a `done` callback; a guard called by hand gets
  // none and must still return a promise.
  t.test('awaited by hand in an async hook: resolves to nothing when the login does', async (t) => {
    const { app } = await buildApp()
    const results: unknown[] = []
    app.get('/manual', {
      preHandler: async function (request, reply) {
        const result = await app.requireFreshLogin.call(this, request, reply)
        results.push(result)
        if (result === reply) return reply
      }
    }, async () => 'secret')
    const jar = await loggedIn(app)
    const passed = await jar.inject('/manual')
    t.equal(passed.statusCode, 200)
    t.equal(passed.body, 'secret')
    t.same(results, [undefined])
    t.equal(passed.headers['cache-control'], 'private, no-store')
    const denied = await app.inject('/manual')
    t.equal(denied.statusCode, 401, 'the JSON failure propagates as the hook\'s error')
    t.equal(denied.json().code, 'FST_LOGIN_UNAUTHORIZED')
    t.same(results, [undefined], 'the handler did not run')
  })

  t.test('awaited by hand with a login view: the reply has been sent when it settles', async (t) => {
    const { app } = await buildApp({ login: { loginView: '/login' } })
    let sentWhenSettled = false
    let handled = false
    app.get('/manual', {
      preHandler: async function (request, reply) {
        await app.requireLogin.call(this, request, reply)
        sentWhenSettled = reply.sent
        if (reply.sent) return reply
      }
    }, async () => {
      handled = true
      return 'secret'
    })
    const response = await app.inject({ url: '/manual', headers: { accept: 'text/html' } })
    t.equal(response.statusCode, 302)
    t.match(response.headers.location, /^\/login\?next=/)
    t.equal(sentWhenSettled, true)
    t.equal(handled, false)
  })

  t.test('as an instance-wide preHandler hook of an encapsulated plugin', async (t) => {
    const { app } = await buildApp()
    await app.register(async (scope) => {
      scope.addHook('preHandler', app.requireLogin)
      scope.get('/area', async () => 'members')
    })
    app.get('/open', async () => 'everyone')
    t.equal((await app.inject('/area')).statusCode, 401)
    t.equal((await app.inject('/open')).statusCode, 200)
    const jar = await loggedIn(app)
    const member = await jar.inject('/area')
    t.equal(member.statusCode, 200)
    t.equal(member.body, 'members')
  })
})

t.test('guards composed with @fastify/auth', async (t) => {
  // @fastify/auth calls each function with a callback, like a route hook.
  async function setup () {
    const built = await buildApp()
    await built.app.register(fastifyAuth)
    const { app } = built
    const onlyAnn = async (request: FastifyRequest): Promise<void> => {
      if ((request.user as User).name !== 'Ann') throw Object.assign(new Error('Ann only'), { statusCode: 403 })
    }
    const apiKey = async (request: FastifyRequest): Promise<void> => {
      if (request.headers['x-api-key'] !== 'k') throw new Error('no key')
    }
    app.get('/ann', { preHandler: app.auth([app.requireLogin, onlyAnn], { relation: 'and' }) }, async () => 'for Ann')
    app.get('/either', { preHandler: app.auth([apiKey, app.requireFreshLogin]) }, async () => 'either')
    return built
  }

  t.test("relation 'and'", async (t) => {
    const { app } = await setup()
    const anonymous = await app.inject('/ann')
    t.equal(anonymous.statusCode, 401)
    t.equal(anonymous.json().code, 'FST_LOGIN_UNAUTHORIZED')
    const ann = await loggedIn(app)
    const allowed = await ann.inject('/ann')
    t.equal(allowed.statusCode, 200)
    t.equal(allowed.body, 'for Ann')
    const bob = await loggedIn(app, '', '2')
    t.equal((await bob.inject('/ann')).statusCode, 403)
  })

  t.test("relation 'or'", async (t) => {
    const { app } = await setup()
    t.equal((await app.inject('/either')).statusCode, 401)
    t.equal((await app.inject({ url: '/either', headers: { 'x-api-key': 'k' } })).body, 'either')
    const fresh = await loggedIn(app)
    t.equal((await fresh.inject('/either')).body, 'either')
    const stale = await loggedIn(app, '?fresh=0')
    t.equal((await stale.inject('/either')).statusCode, 401)
  })
})

t.test('exempt methods', async (t) => {
  function addOptionsRoutes (app: FastifyInstance): void {
    app.route({ method: ['GET', 'OPTIONS'], url: '/hook', preHandler: app.requireLogin, handler: async () => 'hook' })
    app.route({ method: ['GET', 'OPTIONS'], url: '/hook-fresh', preHandler: app.requireFreshLogin, handler: async () => 'fresh' })
    app.route({ method: ['GET', 'OPTIONS'], url: '/config', config: { login: 'required' }, handler: async () => 'config' })
  }

  // Flask: test_options_call_exempt
  t.test('OPTIONS passes every guard by default', async (t) => {
    const { app } = await buildApp({ routes: false })
    addOptionsRoutes(app)
    for (const url of ['/hook', '/hook-fresh', '/config']) {
      t.equal((await app.inject({ method: 'OPTIONS', url })).statusCode, 200, `OPTIONS ${url}`)
      t.equal((await app.inject({ method: 'GET', url })).statusCode, 401, `GET ${url}`)
    }
  })

  t.test('OPTIONS passes requireFreshLogin for a stale login', async (t) => {
    const { app } = await buildApp()
    app.route({ method: ['GET', 'OPTIONS'], url: '/hook-fresh', preHandler: app.requireFreshLogin, handler: async () => 'fresh' })
    const jar = await loggedIn(app, '?fresh=0')
    t.equal((await jar.inject({ method: 'OPTIONS', url: '/hook-fresh' })).statusCode, 200)
    t.equal((await jar.inject({ method: 'GET', url: '/hook-fresh' })).statusCode, 401)
  })

  t.test('custom exemptMethods replace the default list', async (t) => {
    const { app } = await buildApp({ routes: false, login: { exemptMethods: ['get'] } })
    addOptionsRoutes(app)
    for (const url of ['/hook', '/hook-fresh', '/config']) {
      t.equal((await app.inject({ method: 'GET', url })).statusCode, 200, `GET ${url}`)
      t.equal((await app.inject({ method: 'OPTIONS', url })).statusCode, 401, `OPTIONS ${url}`)
    }
  })

  t.test('an empty exemptMethods guards OPTIONS too', async (t) => {
    const { app } = await buildApp({ routes: false, login: { exemptMethods: [] } })
    addOptionsRoutes(app)
    t.equal((await app.inject({ method: 'OPTIONS', url: '/hook' })).statusCode, 401)
  })
})

t.test('route config.login', async (t) => {
  t.test("'required' answers 401 to an anonymous request and lets a user through", async (t) => {
    const { app } = await buildApp()
    app.get('/r', { config: { login: 'required' } }, async (request) => ({ user: (request.user as User).name }))
    t.equal((await app.inject('/r')).statusCode, 401)
    const jar = await loggedIn(app, '?fresh=0')
    t.same((await jar.inject('/r')).json(), { user: 'Ann' })
  })

  t.test("'required' runs before the route's own preHandler", async (t) => {
    const { app } = await buildApp()
    const seen: string[] = []
    app.get('/r', {
      config: { login: 'required' },
      preHandler: async (request) => { seen.push(request.isAuthenticated() ? 'user' : 'anonymous') }
    }, async () => 'ok')
    t.equal((await app.inject('/r')).statusCode, 401)
    t.same(seen, [])
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/r')).statusCode, 200)
    t.same(seen, ['user'])
  })

  t.test("'fresh' runs before each of the route's own preHandler hooks, in their order", async (t) => {
    const { app } = await buildApp()
    const seen: string[] = []
    app.get('/r', {
      config: { login: 'fresh' },
      preHandler: [async () => { seen.push('first') }, async () => { seen.push('second') }]
    }, async () => 'ok')
    t.equal((await app.inject('/r')).statusCode, 401)
    t.equal((await (await loggedIn(app, '?fresh=0')).inject('/r')).statusCode, 401)
    t.same(seen, [], 'neither hook ran for an anonymous or a stale request')
    t.equal((await (await loggedIn(app)).inject('/r')).statusCode, 200)
    t.same(seen, ['first', 'second'])
  })

  t.test("'fresh' answers unauthorized, then needs-refresh, then lets a fresh login through", async (t) => {
    const { app } = await buildApp()
    app.get('/f', { config: { login: 'fresh' } }, async (request) => ({ user: (request.user as User).name }))
    t.equal((await app.inject('/f')).json().code, 'FST_LOGIN_UNAUTHORIZED')
    const stale = await loggedIn(app, '?fresh=0')
    t.equal((await stale.inject('/f')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
    const fresh = await loggedIn(app)
    t.same((await fresh.inject('/f')).json(), { user: 'Ann' })
  })

  t.test("'optional' loads the user and guards nothing", async (t) => {
    const { app } = await buildApp()
    app.get('/o', { config: { login: 'optional' } }, async (request) => ({ authenticated: request.isAuthenticated() }))
    t.same((await app.inject('/o')).json(), { authenticated: false })
    const jar = await loggedIn(app)
    t.same((await jar.inject('/o')).json(), { authenticated: true })
  })

  // Flask: test_static_loads_anonymous, test_static_loads_without_accessing_session
  t.test('false never loads a user, even with a valid session', async (t) => {
    const { app, loaded } = await buildApp()
    const accessed: string[] = []
    app.loginManager.on('userAccessed', ({ request }) => { accessed.push(request.url) })
    app.get('/static', { config: { login: false } }, async (request) => ({
      authenticated: request.isAuthenticated(),
      anonymous: (request.user as { isAnonymous?: boolean }).isAnonymous
    }))
    const jar = await loggedIn(app, '?remember=1')
    loaded.length = 0
    const response = await jar.inject('/static')
    t.same(response.json(), { authenticated: false, anonymous: true })
    t.same(loaded, [], 'the user loader was not called')
    t.same(accessed, [], 'userAccessed did not fire')
    t.same((await jar.inject('/')).json().authenticated, true, 'the login itself is untouched')
  })

  t.test('false does not restore from the remember cookie or touch it', async (t) => {
    const { app, loaded } = await buildApp()
    app.get('/static', { config: { login: false } }, async (request) => ({ authenticated: request.isAuthenticated() }))
    const jar = await loggedIn(app, '?remember=1')
    jar.restartBrowser()
    loaded.length = 0
    const response = await jar.inject('/static')
    t.same(response.json(), { authenticated: false })
    t.same(loaded, [])
    t.equal(response.headers['set-cookie'], undefined, 'no cookie is written')
  })

  t.test('false never calls the request loader', async (t) => {
    let calls = 0
    const { app } = await buildApp({
      login: { requestLoader: () => { calls++; return null } }
    })
    app.get('/static', { config: { login: false } }, async () => 'ok')
    await app.inject('/static')
    t.equal(calls, 0)
    await app.inject('/')
    t.equal(calls, 1, 'the request loader runs on other routes')
  })

  t.test('an invalid value fails registration with an FST_LOGIN_ code', async (t) => {
    for (const login of ['yes', 'REQUIRED', true, null, 1]) {
      const { app } = await buildApp()
      const error = await registrationError(app, () => {
        app.get('/bad', { config: { login: login as never } }, async () => 'ok')
      })
      t.match(error, { code: /^FST_LOGIN_/, message: /config\.login/ }, `config.login ${JSON.stringify(login)}`)
    }
  })
})

t.test('loginRequiredByDefault', async (t) => {
  async function build (loginRequiredByDefault?: boolean): Promise<FastifyInstance> {
    const { app } = await buildApp({ login: { loginRequiredByDefault } })
    app.get('/plain', async () => 'plain')
    app.get('/optional', { config: { login: 'optional' } }, async (request) => ({ authenticated: request.isAuthenticated() }))
    app.get('/off', { config: { login: false } }, async (request) => ({ authenticated: request.isAuthenticated() }))
    app.get('/fresh-route', { config: { login: 'fresh' } }, async () => 'fresh')
    await app.register(async (child) => {
      child.get('/child', async () => 'child')
    })
    return app
  }

  t.test('guards every route without config.login', async (t) => {
    const app = await build(true)
    t.equal((await app.inject('/plain')).statusCode, 401)
    t.equal((await app.inject('/child')).statusCode, 401, 'routes of child plugins too')
    t.equal((await app.inject({ method: 'POST', url: '/logout' })).statusCode, 200, "the helper's 'optional' routes stay open")
  })

  t.test('lets a logged-in user through', async (t) => {
    const app = await build(true)
    const jar = await loggedIn(app, '?fresh=0')
    t.equal((await jar.inject('/plain')).statusCode, 200)
    t.equal((await jar.inject('/child')).statusCode, 200)
  })

  t.test("leaves 'optional' and false routes open", async (t) => {
    const app = await build(true)
    t.same((await app.inject('/optional')).json(), { authenticated: false })
    t.same((await app.inject('/off')).json(), { authenticated: false })
  })

  t.test("keeps 'fresh' routes fresh", async (t) => {
    const app = await build(true)
    const jar = await loggedIn(app, '?fresh=0')
    t.equal((await jar.inject('/fresh-route')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
  })

  t.test('exempts OPTIONS', async (t) => {
    const { app } = await buildApp({ login: { loginRequiredByDefault: true } })
    app.options('/preflight', async () => 'ok')
    t.equal((await app.inject({ method: 'OPTIONS', url: '/preflight' })).statusCode, 200)
  })

  t.test('is off by default', async (t) => {
    const app = await build()
    t.equal((await app.inject('/plain')).statusCode, 200)
    t.equal((await app.inject('/child')).statusCode, 200)
  })
})
