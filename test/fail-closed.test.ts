// Guards that cannot fail open (SPEC section 15): the named requireLogin /
// requireFreshLogin exports, the final `config.login` whichever onRoute hook
// set it, handlers that do not send, registering twice, and a forgotten
// `await` on loginUser, logoutUser or confirmLogin.
import t, { type Test } from 'tap'
import { createRequire } from 'node:module'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type InjectOptions, type LightMyRequestResponse, type RouteOptions, type Session } from 'fastify'
import fastifyAuth from '@fastify/auth'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin, { requireFreshLogin, requireLogin, type FastifyLoginOptions } from '../lib/index.js'
import { CookieJar, LOGIN_SECRET, SESSION_SECRET, User } from './helpers.js'

const ann = new User('1', 'Ann')

function loginOptions (extra: Partial<FastifyLoginOptions> = {}): FastifyLoginOptions {
  return { secret: LOGIN_SECRET, userLoader: (id: string) => (id === '1' ? ann : null), ...extra } as FastifyLoginOptions
}

/** An app with cookies and sessions, but no fastify-login yet. */
async function sessionApp (): Promise<FastifyInstance> {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  return app
}

/** POST /login logs Ann in (`?fresh=0`: not fresh); open under loginRequiredByDefault. */
function addLoginRoute (scope: FastifyInstance): void {
  scope.post<{ Querystring: { fresh?: string } }>('/login', { config: { login: 'optional' } }, async (request) => ({
    ok: await request.loginUser(ann, { fresh: request.query.fresh !== '0' })
  }))
}

async function loggedIn (app: FastifyInstance, query = ''): Promise<CookieJar> {
  const jar = new CookieJar(app)
  const response = await jar.inject({ method: 'POST', url: `/login${query}` })
  if (response.json().ok !== true) throw new Error('login failed')
  return jar
}

/** Asserts the error answer of a guard: its status and code. */
function isError (t: Test, response: LightMyRequestResponse, statusCode: number, code: string, label = code): void {
  t.equal(response.statusCode, statusCode, label)
  t.equal(response.json().code, code, label)
}

/** A handler that records that it ran: on a guarded route it must not, for an anonymous request. */
function recorder (): { ran: string[], handler: (request: { url: string }) => Promise<string> } {
  const ran: string[] = []
  return { ran, handler: async (request) => { ran.push(request.url); return 'secret' } }
}

t.test('the named requireLogin and requireFreshLogin', async (t) => {
  t.test('guard routes declared before the plugin has loaded', async (t) => {
    const app = Fastify()
    app.register(fastifyCookie)
    app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
    app.register(fastifyLogin, loginOptions())
    // What `app.requireLogin` cannot do here: it is still undefined.
    t.equal(app.requireLogin, undefined)
    const { ran, handler } = recorder()
    app.get('/account', { preHandler: requireLogin }, handler)
    app.get('/settings', { preHandler: requireFreshLogin }, handler)
    addLoginRoute(app)
    isError(t, await app.inject('/account'), 401, 'FST_LOGIN_UNAUTHORIZED')
    t.equal((await app.inject('/settings')).json().code, 'FST_LOGIN_UNAUTHORIZED')
    t.equal((await app.inject({ method: 'HEAD', url: '/account' })).statusCode, 401, 'the HEAD route too')
    t.same(ran, [])
    const stale = await loggedIn(app, '?fresh=0')
    t.equal((await stale.inject('/account')).body, 'secret')
    t.equal((await stale.inject('/settings')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
    const fresh = await loggedIn(app)
    t.equal((await fresh.inject('/settings')).body, 'secret')
    t.same(ran, ['/account', '/settings'])
  })

  t.test('guard routes of a plugin registered before fastify-login, with its options', async (t) => {
    const app = await sessionApp()
    const { ran, handler } = recorder()
    await app.register(async (early) => {
      early.get('/early', { preHandler: requireLogin }, handler)
    })
    await app.register(fastifyLogin, loginOptions({ loginView: '/sign-in' }))
    addLoginRoute(app)
    const browser = await app.inject({ url: '/early', headers: { accept: 'text/html' } })
    t.equal(browser.statusCode, 302)
    t.equal(browser.headers.location, '/sign-in?next=%2Fearly')
    t.same(ran, [])
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/early')).body, 'secret')
  })

  t.test('guard a not-found handler declared before the plugin has loaded', async (t) => {
    const app = Fastify()
    app.register(fastifyCookie)
    app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
    const notFound: string[] = []
    app.setNotFoundHandler({ preHandler: requireLogin }, async (request, reply) => {
      notFound.push(request.url)
      return reply.code(404).send({ missing: request.url })
    })
    app.register(fastifyLogin, loginOptions())
    addLoginRoute(app)
    t.equal((await app.inject('/no-such-page')).json().code, 'FST_LOGIN_UNAUTHORIZED')
    t.same(notFound, [])
    const jar = await loggedIn(app)
    t.same((await jar.inject('/no-such-page')).json(), { missing: '/no-such-page' })
  })

  t.test('are the same guards as app.requireLogin after the plugin has loaded', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    app.get('/both', { preHandler: [app.requireLogin, requireLogin] }, async () => 'ok')
    addLoginRoute(app)
    t.equal((await app.inject('/both')).statusCode, 401)
    const jar = await loggedIn(app)
    const response = await jar.inject('/both')
    t.equal(response.body, 'ok')
    t.equal(response.headers['cache-control'], 'private, no-store')
  })

  t.test('answer 500 FST_LOGIN_NOT_REGISTERED where no fastify-login is registered', async (t) => {
    const app = await sessionApp()
    const { ran, handler } = recorder()
    app.get('/nowhere', { preHandler: requireLogin }, handler)
    app.get('/nowhere-fresh', { preHandler: requireFreshLogin }, handler)
    for (const url of ['/nowhere', '/nowhere-fresh']) isError(t, await app.inject(url), 500, 'FST_LOGIN_NOT_REGISTERED', url)
    t.same(ran, [])
  })

  t.test('fail closed in a scope beside or above the one fastify-login is registered in', async (t) => {
    const app = await sessionApp()
    const { ran, handler } = recorder()
    await app.register(async (members) => {
      await members.register(fastifyLogin, loginOptions())
      members.get('/members', { preHandler: requireLogin }, handler)
      addLoginRoute(members)
    })
    await app.register(async (sibling) => {
      sibling.get('/sibling', { preHandler: requireLogin }, handler)
    })
    app.get('/root', { preHandler: requireLogin }, handler)
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/members')).body, 'secret', 'control: the scope with the plugin')
    for (const url of ['/sibling', '/root']) isError(t, await jar.inject(url), 500, 'FST_LOGIN_NOT_REGISTERED', url)
    t.same(ran, ['/members'])
  })

  t.test('called by hand in an async hook: resolve when the login does, reject when no plugin is registered', async (t) => {
    const app = await sessionApp()
    const results: unknown[] = []
    const hook = async function (this: FastifyInstance, request: Parameters<typeof requireLogin>[0], reply: Parameters<typeof requireLogin>[1]) {
      results.push(await requireLogin.call(this, request, reply))
    }
    await app.register(async (scope) => {
      await scope.register(fastifyLogin, loginOptions())
      scope.get('/manual', { preHandler: hook }, async () => 'manual')
      addLoginRoute(scope)
    })
    app.get('/unregistered', { preHandler: hook }, async () => 'unregistered')
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/manual')).body, 'manual')
    t.same(results, [undefined])
    t.equal((await app.inject('/manual')).json().code, 'FST_LOGIN_UNAUTHORIZED')
    t.equal((await jar.inject('/unregistered')).json().code, 'FST_LOGIN_NOT_REGISTERED')
    t.same(results, [undefined])
  })

  t.test('compose with @fastify/auth', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyAuth)
    const apiKey = async (request: { headers: Record<string, unknown> }): Promise<void> => {
      if (request.headers['x-api-key'] !== 'k') throw new Error('no key')
    }
    await app.register(async (scope) => {
      await scope.register(fastifyLogin, loginOptions())
      scope.get('/either', { preHandler: scope.auth([apiKey, requireFreshLogin]) }, async () => 'either')
      scope.get('/both', { preHandler: scope.auth([requireLogin, apiKey], { relation: 'and' }) }, async () => 'both')
      addLoginRoute(scope)
    })
    app.get('/outside', { preHandler: app.auth([requireLogin, apiKey], { relation: 'and' }) }, async () => 'outside')
    t.equal((await app.inject('/either')).statusCode, 401)
    t.equal((await app.inject({ url: '/either', headers: { 'x-api-key': 'k' } })).body, 'either')
    t.equal((await app.inject({ url: '/both', headers: { 'x-api-key': 'k' } })).json().code, 'FST_LOGIN_UNAUTHORIZED')
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/either')).body, 'either')
    t.equal((await jar.inject({ url: '/both', headers: { 'x-api-key': 'k' } })).body, 'both')
    isError(t, await jar.inject({ url: '/outside', headers: { 'x-api-key': 'k' } }), 500, 'FST_LOGIN_NOT_REGISTERED')
  })
})

t.test('the named guards across the ES module and CommonJS builds', async (t) => {
  // The package itself, as a consumer loads it.
  const root = fileURLToPath(new URL('..', import.meta.url))
  if (!existsSync(new URL('../dist/esm/lib/index.js', import.meta.url)) || !existsSync(new URL('../dist/cjs/main.js', import.meta.url))) {
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' })
  }
  type Package = typeof import('../lib/index.js')
  const cjs = createRequire(import.meta.url)('fastify-login') as Package & Package['default']
  const esm = await import('fastify-login' as string) as Package
  t.equal(typeof cjs.requireLogin, 'function', "require('fastify-login').requireLogin")
  t.equal(typeof cjs.requireFreshLogin, 'function')
  t.not(cjs.requireLogin, esm.requireLogin, 'two builds, two functions')

  const pairs = [['ESM', esm, 'CommonJS', cjs], ['CommonJS', cjs, 'ESM', esm]] as const
  for (const [pluginBuild, plugin, guardBuild, guards] of pairs) {
    t.test(`a guard of the ${guardBuild} build on a plugin of the ${pluginBuild} build`, async (t) => {
      const app = await sessionApp()
      const { ran, handler } = recorder()
      await app.register(plugin.default, loginOptions())
      app.get('/a', { preHandler: guards.requireLogin }, handler)
      app.get('/f', { preHandler: guards.requireFreshLogin }, handler)
      addLoginRoute(app)
      t.equal((await app.inject('/a')).json().code, 'FST_LOGIN_UNAUTHORIZED')
      const stale = await loggedIn(app, '?fresh=0')
      t.equal((await stale.inject('/a')).body, 'secret')
      t.equal((await stale.inject('/f')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
      t.same(ran, ['/a'])
    })
  }

  t.test('registering both builds in one scope is registering twice', async (t) => {
    const app = await sessionApp()
    await app.register(esm.default, loginOptions())
    await t.rejects(async () => { await app.register(cjs, loginOptions()) }, { code: 'FST_LOGIN_ALREADY_REGISTERED' })
  })
})

/** An encapsulated plugin whose onRoute hook sets `config.login` on its routes. */
function scopeSetting (login: unknown, add: (scope: FastifyInstance) => void): FastifyPluginAsync {
  return async (scope) => {
    scope.addHook('onRoute', (route) => { route.config = { ...route.config, login: login as false } })
    add(scope)
  }
}

t.test('the final config.login, whichever onRoute hook set it', async (t) => {
  for (const order of ['after', 'before'] as const) {
    t.test(`a hook registered ${order} the plugin that sets 'required' guards the route`, async (t) => {
      const app = await sessionApp()
      const { ran, handler } = recorder()
      if (order === 'after') await app.register(fastifyLogin, loginOptions())
      app.addHook('onRoute', (route) => {
        if (route.url.startsWith('/admin')) route.config = { ...route.config, login: 'required' }
      })
      if (order === 'before') await app.register(fastifyLogin, loginOptions())
      app.get('/admin', handler)
      addLoginRoute(app)
      t.equal((await app.inject('/admin')).json().code, 'FST_LOGIN_UNAUTHORIZED')
      t.equal((await app.inject({ method: 'HEAD', url: '/admin' })).statusCode, 401, 'its HEAD route too')
      t.same(ran, [])
      const jar = await loggedIn(app, '?fresh=0')
      t.equal((await jar.inject('/admin')).body, 'secret')
    })
  }

  t.test('the HEAD twin of a GET route guarded by a hook that looks at the method is guarded alike', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    app.addHook('onRoute', (route) => {
      if (route.method === 'GET' && route.url.startsWith('/admin')) route.config = { ...route.config, login: route.url === '/admin/keys' ? 'fresh' : 'required' }
    })
    const { ran, handler } = recorder()
    app.get('/admin', handler)
    app.get('/admin/keys', { config: { login: 'optional' } }, handler)
    app.get('/open', async () => 'open')
    app.head('/admin/explicit', { config: { login: 'required' } }, async (_request, reply) => reply.send())
    addLoginRoute(app)
    for (const url of ['/admin', '/admin/keys', '/admin/explicit']) {
      t.equal((await app.inject({ method: 'HEAD', url })).statusCode, 401, `HEAD ${url}`)
    }
    t.equal((await app.inject({ method: 'HEAD', url: '/open' })).statusCode, 200, 'control: an open route')
    t.same(ran, [])
    const stale = await loggedIn(app, '?fresh=0')
    t.equal((await stale.inject({ method: 'HEAD', url: '/admin' })).statusCode, 200)
    t.equal((await stale.inject({ method: 'HEAD', url: '/admin/keys' })).statusCode, 401, "the GET route's fresh guard")
    t.same(ran, ['/admin'])
  })

  t.test("an encapsulated plugin's hook that sets 'fresh' gets the fresh guard", async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    const { ran, handler } = recorder()
    await app.register(scopeSetting('fresh', (scope) => { scope.get('/billing', handler) }))
    addLoginRoute(app)
    t.equal((await app.inject('/billing')).json().code, 'FST_LOGIN_UNAUTHORIZED')
    const stale = await loggedIn(app, '?fresh=0')
    t.equal((await stale.inject('/billing')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
    t.same(ran, [])
    const fresh = await loggedIn(app)
    t.equal((await fresh.inject('/billing')).body, 'secret')
  })

  t.test("under loginRequiredByDefault, a late 'fresh' gets the fresh guard and a late 'optional' or false opts out", async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions({ loginRequiredByDefault: true }))
    const { ran, handler } = recorder()
    await app.register(scopeSetting('fresh', (scope) => { scope.get('/billing', handler) }))
    await app.register(scopeSetting('optional', (scope) => { scope.get('/about', async () => 'about') }))
    await app.register(scopeSetting(false, (scope) => { scope.get('/health', async () => 'ok') }))
    app.get('/default', handler)
    addLoginRoute(app)
    const stale = await loggedIn(app, '?fresh=0')
    t.equal((await stale.inject('/billing')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
    t.equal((await stale.inject('/default')).body, 'secret', 'control: the default needs any login')
    t.same(ran, ['/default'])
    t.equal((await app.inject('/about')).body, 'about')
    t.equal((await app.inject('/health')).body, 'ok')
    t.equal((await app.inject('/default')).statusCode, 401)
  })

  t.test('a preHandler a later hook assigns runs behind the guard', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    const seen: string[] = []
    const audit = async (request: { url: string }): Promise<void> => { seen.push(request.url) }
    app.addHook('onRoute', (route: RouteOptions) => {
      if (route.url !== '/audited') return
      route.config = { ...route.config, login: 'required' }
      const existing = route.preHandler === undefined ? [] : [route.preHandler].flat()
      route.preHandler = [...existing, audit]
    })
    app.get('/audited', { preHandler: async () => { seen.push('own') } }, async () => 'audited')
    addLoginRoute(app)
    t.equal((await app.inject('/audited')).statusCode, 401)
    t.same(seen, [], 'neither hook ran for an anonymous request')
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/audited')).body, 'audited')
    t.same(seen, ['own', '/audited'])
  })

  t.test('an onRequest list a later hook reads and assigns back keeps the guard first, once', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    const seen: string[] = []
    app.addHook('onRoute', (route: RouteOptions) => {
      if (route.url !== '/listed') return
      // The list as Fastify would see it now (the guard first), extended and assigned back.
      const existing = route.onRequest === undefined ? [] : [route.onRequest].flat()
      route.onRequest = [...existing, async () => { seen.push('added') }]
    })
    app.get('/listed', { config: { login: 'required' }, onRequest: [async () => { seen.push('own') }] }, async () => 'listed')
    addLoginRoute(app)
    t.equal((await app.inject('/listed')).statusCode, 401)
    t.same(seen, [], 'no hook ran for an anonymous request')
    const jar = await loggedIn(app)
    t.equal((await jar.inject('/listed')).body, 'listed')
    t.same(seen, ['own', 'added'], 'each hook once, behind the one guard')
  })

  t.test('an invalid config.login from a later hook fails ready() with FST_LOGIN_INVALID_OPTION', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    app.register(scopeSetting('always', (scope) => { scope.get('/bad', async () => 'bad') }))
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LOGIN_INVALID_OPTION', message: /GET \/bad: `config\.login`/ })
  })

  t.test('a later hook may correct an invalid value: the final one counts', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    await app.register(scopeSetting('required', (scope) => {
      scope.get('/fixed', { config: { login: 'yes' as unknown as false } }, async () => 'fixed')
    }))
    t.equal((await app.inject('/fixed')).statusCode, 401)
  })
})

t.test('registering fastify-login twice', async (t) => {
  t.test('in one scope rejects register with FST_LOGIN_ALREADY_REGISTERED, and ready()', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    await t.rejects(async () => { await app.register(fastifyLogin, loginOptions()) }, { code: 'FST_LOGIN_ALREADY_REGISTERED' })
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LOGIN_ALREADY_REGISTERED' })
  })

  t.test('without await rejects ready()', async (t) => {
    const app = Fastify()
    app.register(fastifyCookie)
    app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
    app.register(fastifyLogin, loginOptions())
    app.register(fastifyLogin, loginOptions())
    await t.rejects(async () => { await app.ready() }, { code: 'FST_LOGIN_ALREADY_REGISTERED' })
  })

  t.test('in a scope inside one that has it rejects', async (t) => {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions())
    const error = await app.register(async (child) => {
      await child.register(fastifyLogin, loginOptions())
    }).then(() => null, (error: unknown) => error)
    t.match(error, { code: 'FST_LOGIN_ALREADY_REGISTERED' })
  })

  t.test("a decorator another plugin has taken rejects register with Fastify's error, without a crash", async (t) => {
    const app = await sessionApp()
    app.decorateRequest('user', { getter: () => ({ name: 'from another plugin' }) })
    await t.rejects(async () => { await app.register(fastifyLogin, loginOptions()) }, { code: 'FST_ERR_DEC_ALREADY_PRESENT', message: /'user'/ })
  })

  t.test('in sibling scopes works: each scope has its own, with its own options', async (t) => {
    const app = await sessionApp()
    const heard: string[] = []
    const scope = (prefix: string, options: Partial<FastifyLoginOptions>): FastifyPluginAsync => async (instance) => {
      await instance.register(fastifyLogin, loginOptions(options))
      instance.loginManager.on('userUnauthorized', () => { heard.push(prefix) })
      instance.get('/who', { preHandler: requireLogin }, async (request) => ({ user: (request.user as User).name, scope: prefix }))
      instance.get('/config', { config: { login: 'required' } }, async () => prefix)
      addLoginRoute(instance)
    }
    await app.register(scope('web', { loginView: '/web/sign-in' }), { prefix: '/web' })
    await app.register(scope('api', { userLoader: (id: string) => (id === '1' ? new User('1', 'Ann via the API') : null) }), { prefix: '/api' })
    const web = await app.inject({ url: '/web/who', headers: { accept: 'text/html' } })
    t.equal(web.statusCode, 302)
    t.equal(web.headers.location, '/web/sign-in?next=%2Fweb%2Fwho')
    const api = await app.inject({ url: '/api/who', headers: { accept: 'text/html' } })
    t.equal(api.statusCode, 401, 'no login view in this scope')
    t.equal((await app.inject('/api/config')).statusCode, 401)
    t.same(heard, ['web', 'api', 'api'], "each scope's own events")
    const jar = new CookieJar(app)
    await jar.inject({ method: 'POST', url: '/web/login' })
    t.same((await jar.inject('/web/who')).json(), { user: 'Ann', scope: 'web' })
    t.same((await jar.inject('/api/who')).json(), { user: 'Ann via the API', scope: 'api' }, "the same session, each scope's loader")
  })
})

t.test('an unauthorizedHandler or needsRefreshHandler that does not send', async (t) => {
  async function guardedApp (login: Partial<FastifyLoginOptions>): Promise<{ app: FastifyInstance, ran: string[] }> {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions(login))
    const { ran, handler } = recorder()
    app.get('/private', { config: { login: 'fresh' } }, handler)
    app.get('/named', { preHandler: requireFreshLogin }, handler)
    app.get('/manual', async (request, reply) => {
      await app.loginManager.unauthorized(request, reply)
      return reply
    })
    addLoginRoute(app)
    return { app, ran }
  }

  // Today's failure is a request that never ends: fail fast instead.
  async function injectWithin (app: FastifyInstance, options: InjectOptions) {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((resolve, reject) => { timer = setTimeout(() => { reject(new Error('no answer within 2 s')) }, 2000) })
    try {
      return await Promise.race([app.inject(options), timeout])
    } finally {
      clearTimeout(timer)
    }
  }

  const onlyStatus = {
    'a synchronous one that only sets the status': (_request: unknown, reply: { code (status: number): unknown }) => { reply.code(401) },
    'an async one that only sets the status': async (_request: unknown, reply: { code (status: number): unknown }) => { reply.code(403) },
    'one that does nothing': () => {}
  }
  for (const [name, handler] of Object.entries(onlyStatus)) {
    t.test(`${name}: the default 401 errors answer`, async (t) => {
      const { app, ran } = await guardedApp({ unauthorizedHandler: handler, needsRefreshHandler: handler })
      for (const url of ['/private', '/named']) isError(t, await injectWithin(app, { url }), 401, 'FST_LOGIN_UNAUTHORIZED', url)
      const manual = await injectWithin(app, { url: '/manual' })
      t.equal(manual.json().code, 'FST_LOGIN_UNAUTHORIZED', 'loginManager.unauthorized rejects with the error')
      const stale = await loggedIn(app, '?fresh=0')
      for (const url of ['/private', '/named']) isError(t, await stale.inject(url), 401, 'FST_LOGIN_NEEDS_REFRESH', url)
      t.same(ran, [])
    })
  }

  t.test('one that sends without returning, while slow onSend hooks run, answers once', async (t) => {
    const logs: string[] = []
    const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { logs.push(line) } } } })
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
    await app.register(fastifyLogin, loginOptions({ unauthorizedHandler: (_request, reply) => { reply.code(401).send({ custom: true }) } }))
    app.addHook('onSend', async () => { await new Promise((resolve) => setImmediate(resolve)) })
    const { ran, handler } = recorder()
    app.get('/private', { config: { login: 'required' } }, handler)
    const response = await injectWithin(app, { url: '/private' })
    t.equal(response.statusCode, 401)
    t.same(response.json(), { custom: true })
    t.same(ran, [])
    t.same(logs, [], 'nothing sent twice')
  })

  t.test('one that throws: its error answers', async (t) => {
    const failure = Object.assign(new Error('handler failed'), { statusCode: 403 })
    const { app, ran } = await guardedApp({ unauthorizedHandler: async () => { throw failure } })
    const response = await injectWithin(app, { url: '/private' })
    t.equal(response.statusCode, 403)
    t.equal(response.json().message, 'handler failed')
    t.same(ran, [])
  })

  t.test('one that hijacks the reply answers by itself', async (t) => {
    const { app, ran } = await guardedApp({
      unauthorizedHandler: (_request, reply) => {
        reply.hijack()
        reply.raw.writeHead(401, { 'content-type': 'text/plain' })
        reply.raw.end('raw answer')
      }
    })
    const response = await injectWithin(app, { url: '/private' })
    t.equal(response.statusCode, 401)
    t.equal(response.body, 'raw answer')
    t.same(ran, [])
  })

  t.test("leaves another plugin's wrapper of reply.send in place", async (t) => {
    const { app, ran } = await guardedApp({ unauthorizedHandler: (_request, reply) => reply.code(401).send('custom') })
    const wrapped: string[] = []
    app.addHook('onRequest', async (request, reply) => {
      const send = reply.send
      reply.send = function (payload) {
        wrapped.push(request.url)
        return send.call(this, payload)
      }
    })
    await app.ready()
    t.equal((await injectWithin(app, { url: '/private' })).body, 'custom')
    t.equal((await app.inject({ method: 'POST', url: '/login' })).statusCode, 200)
    t.same(wrapped, ['/private', '/login'])
    t.same(ran, [])
  })

  t.test('one that returns reply and sends it later is waited for', async (t) => {
    const { app, ran } = await guardedApp({
      unauthorizedHandler: (_request, reply) => {
        setImmediate(() => { reply.code(401).send('later') })
        return reply
      }
    })
    const response = await injectWithin(app, { url: '/private' })
    t.equal(response.body, 'later')
    t.same(ran, [])
  })
})

t.test('over a real connection, a client that leaves never reaches the guarded handler', async (t) => {
  /** Sends GET `path`; leaves (destroys the socket) once `leave` settles, unless an answer came first. */
  function visit (port: number, path: string, leave: Promise<unknown>): Promise<number | null> {
    return new Promise((resolve) => {
      const request = httpRequest({ host: '127.0.0.1', port, path, headers: { accept: 'text/html' } })
      request.on('response', (response) => {
        response.resume()
        response.on('end', () => { resolve(response.statusCode ?? null) })
      })
      request.on('error', () => {})
      leave.then(() => {
        request.destroy()
        resolve(null)
      }, () => {})
      request.end()
    })
  }

  /**
   * Serves `/private` (config.login 'required') on 127.0.0.1; `outcome` settles with 'handler' if the
   * route's handler ran, or with 'error' once the guard's failure reached the error handler.
   */
  async function serve (t: Test, login: Partial<FastifyLoginOptions>, extra?: (app: FastifyInstance) => void) {
    const app = await sessionApp()
    await app.register(fastifyLogin, loginOptions(login))
    let settle: (value: 'handler' | 'error') => void = () => {}
    const outcome = new Promise<'handler' | 'error'>((resolve) => { settle = resolve })
    app.setErrorHandler((error, _request, reply) => {
      settle('error')
      return reply.send(error)
    })
    extra?.(app)
    app.get('/private', { config: { login: 'required' } }, async () => {
      settle('handler')
      return 'secret'
    })
    await app.listen({ host: '127.0.0.1', port: 0 })
    t.teardown(() => app.close())
    return { port: (app.server.address() as AddressInfo).port, outcome }
  }

  const within = (ms: number): Promise<void> => new Promise((resolve) => { setTimeout(resolve, ms).unref() })

  t.test('an unauthorizedHandler that only sets a status: the 401 comes at once', async (t) => {
    let called: () => void = () => {}
    const handlerCalled = new Promise<void>((resolve) => { called = resolve })
    const { port, outcome } = await serve(t, { unauthorizedHandler: (_request, reply) => { called(); reply.code(401) } })
    // Today the request hangs: the client gives up a moment after the handler was called.
    const status = await visit(port, '/private', handlerCalled.then(() => within(500)))
    t.equal(status, 401)
    t.equal(await outcome, 'error')
  })

  t.test('an unauthorizedHandler that returns reply without ever sending it: the client leaves', async (t) => {
    let called: () => void = () => {}
    const handlerCalled = new Promise<void>((resolve) => { called = resolve })
    const { port, outcome } = await serve(t, {
      unauthorizedHandler: (_request, reply) => {
        called()
        return reply.code(401)
      }
    })
    t.equal(await visit(port, '/private', handlerCalled), null)
    t.equal(await outcome, 'error', 'the guard failed; the handler did not run')
  })

  t.test('the redirect to the login view, still in a slow onSend hook when the client leaves', async (t) => {
    let sending: () => void = () => {}
    const inOnSend = new Promise<void>((resolve) => { sending = resolve })
    const { port, outcome } = await serve(t, { loginView: '/sign-in' }, (app) => {
      // An onSend hook that takes its time (a session store saving): here, until a moment after the client has gone.
      app.addHook('onSend', async (request) => {
        const socket = request.raw.socket
        if (socket.destroyed) return
        sending()
        await new Promise((resolve) => socket.once('close', resolve))
        await new Promise((resolve) => setTimeout(resolve, 50))
      })
    })
    t.equal(await visit(port, '/private', inOnSend), null)
    t.equal(await outcome, 'error', 'the guard failed; the handler did not run')
  })
})

t.test('a reply sent while loginUser or logoutUser is still running is logged at error level', async (t) => {
  /** A session store that answers on a later turn of the event loop, as a networked one does. */
  function asyncStore (): fastifySession.SessionStore {
    const data = new Map<string, Session>()
    const later = (callback: () => void): void => { setImmediate(callback) }
    return {
      get (id, callback) { later(() => { callback(null, data.get(id)) }) },
      set (id, session, callback) { later(() => { data.set(id, session); callback() }) },
      destroy (id, callback) { later(() => { data.delete(id); callback() }) }
    }
  }

  async function loggingApp (store?: fastifySession.SessionStore) {
    const lines: Array<{ level: number, msg: string, err?: { code?: string } }> = []
    const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(JSON.parse(line)) } } } })
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false, ...(store === undefined ? {} : { store }) })
    await app.register(fastifyLogin, loginOptions())
    app.post('/forgot-login', async (request) => {
      // The missing `await` under test.
      request.loginUser(ann, { remember: request.headers['x-remember'] === '1' }).catch(() => {})
      return 'sent'
    })
    app.post('/forgot-logout', async (request) => {
      request.logoutUser().catch(() => {})
      return 'sent'
    })
    app.post('/awaited', async (request) => {
      await request.loginUser(ann, { remember: true })
      await request.confirmLogin()
      await request.logoutUser()
      return 'sent'
    })
    addLoginRoute(app)
    return { app, lines }
  }

  function notAwaited (lines: Array<{ level: number, msg: string, err?: { code?: string } }>) {
    return lines.filter((line) => line.err?.code === 'FST_LOGIN_NOT_AWAITED')
  }

  t.test('loginUser with an asynchronous session store', async (t) => {
    const { app, lines } = await loggingApp(asyncStore())
    const response = await app.inject({ method: 'POST', url: '/forgot-login' })
    t.equal(response.body, 'sent')
    const logged = notAwaited(lines)
    t.equal(logged.length, 1)
    t.equal(logged[0]?.level, 50, 'error level')
    t.match(logged[0]?.msg, /request\.loginUser\(\) was still running .*`await request\.loginUser\(…\)`/)
  })

  t.test('loginUser with remember: the remember cookie would be lost', async (t) => {
    const { app, lines } = await loggingApp()
    const response = await app.inject({ method: 'POST', url: '/forgot-login', headers: { 'x-remember': '1' } })
    t.equal(response.body, 'sent')
    const logged = notAwaited(lines)
    t.equal(logged.length, 1)
    t.match(logged[0]?.msg, /await request\.loginUser/)
  })

  t.test('logoutUser with an asynchronous session store', async (t) => {
    const { app, lines } = await loggingApp(asyncStore())
    const jar = await loggedIn(app)
    t.same(notAwaited(lines), [], 'the awaited login logged nothing')
    await jar.inject({ method: 'POST', url: '/forgot-logout' })
    const logged = notAwaited(lines)
    t.equal(logged.length, 1)
    t.match(logged[0]?.msg, /request\.logoutUser\(\) was still running .*`await request\.logoutUser\(…\)`/)
  })

  t.test('awaited calls log nothing', async (t) => {
    for (const store of [undefined, asyncStore()]) {
      const { app, lines } = await loggingApp(store)
      const response = await app.inject({ method: 'POST', url: '/awaited' })
      t.equal(response.body, 'sent')
      t.same(lines, [])
    }
  })
})
