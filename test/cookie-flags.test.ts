// Cookie flags and caching headers: the remember cookie's attributes (Flask's
// REMEMBER_COOKIE_* settings, test_remember_me_uses_custom_cookie_parameters),
// `secure: 'auto'` behind proxies, the SameSite=None guard at register time,
// `Vary: Cookie` on responses personalised from the remember cookie, and
// `Cache-Control: private, no-store` on guarded routes.
import t from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { buildApp, CookieJar, type BuildOptions } from './helpers.js'

const COOKIE = 'remember_token'
const HTTPS = { 'x-forwarded-proto': 'https' }

// The raw Set-Cookie line a response sent for `name`, if any.
function setCookieLine (response: LightMyRequestResponse, name = COOKIE): string | undefined {
  const header = response.headers['set-cookie']
  const lines = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return lines.find((line) => line.startsWith(`${name}=`))
}

// Attribute names (lower-cased) to values; flags map to ''.
function attributesOf (line: string | undefined): Map<string, string> {
  if (line === undefined) throw new Error('no such Set-Cookie header')
  const map = new Map<string, string>()
  for (const part of line.split(';').slice(1)) {
    const [name = '', ...value] = part.trim().split('=')
    map.set(name.toLowerCase(), value.join('='))
  }
  return map
}

async function rememberLogin (options: BuildOptions = {}, headers: Record<string, string> = {}) {
  const built = await buildApp(options)
  const response = await built.app.inject({ method: 'POST', url: '/login/1?remember=1', headers })
  const name = options.login?.remember?.cookieName ?? COOKIE
  return { ...built, response, attributes: attributesOf(setCookieLine(response, name)) }
}

t.test('remember cookie defaults', async (t) => {
  const { attributes } = await rememberLogin()

  t.test('HttpOnly', async (t) => { t.equal(attributes.get('httponly'), '') })
  t.test('SameSite=Lax', async (t) => { t.equal(attributes.get('samesite'), 'Lax') })
  t.test('Path=/', async (t) => { t.equal(attributes.get('path'), '/') })
  t.test('no Domain, so the cookie is host-only', async (t) => { t.notOk(attributes.has('domain')) })
  t.test('not Secure over plain HTTP', async (t) => { t.notOk(attributes.has('secure')) })
  t.test('Max-Age of 365 days', async (t) => { t.equal(attributes.get('max-age'), '31536000') })
  t.end()
})

t.test("secure: 'auto' follows request.protocol", async (t) => {
  t.test('behind a trusted proxy that says https, the cookie is Secure', async (t) => {
    const { attributes } = await rememberLogin({ fastify: { trustProxy: true } }, HTTPS)
    t.equal(attributes.get('secure'), '')
  })

  t.test('without trustProxy, X-Forwarded-Proto is ignored', async (t) => {
    const { attributes } = await rememberLogin({}, HTTPS)
    t.notOk(attributes.has('secure'))
  })

  t.test('a trusted proxy that says http gets no Secure flag', async (t) => {
    const { attributes } = await rememberLogin({ fastify: { trustProxy: true } }, { 'x-forwarded-proto': 'http' })
    t.notOk(attributes.has('secure'))
  })

  t.test('the clearing cookie of a logout over https is Secure too', async (t) => {
    const { app, response } = await rememberLogin({ fastify: { trustProxy: true } }, HTTPS)
    const jar = new CookieJar(app)
    jar.store(response)
    const logout = await jar.inject({ method: 'POST', url: '/logout', headers: HTTPS })
    t.equal(attributesOf(setCookieLine(logout)).get('secure'), '')
  })
  t.end()
})

t.test('secure: true marks the cookie Secure even over plain HTTP', async (t) => {
  const { attributes } = await rememberLogin({ login: { remember: { secure: true } } })
  t.equal(attributes.get('secure'), '')
})

t.test('secure: false never marks the cookie Secure, even behind an https proxy', async (t) => {
  const { attributes } = await rememberLogin({ login: { remember: { secure: false } }, fastify: { trustProxy: true } }, HTTPS)
  t.notOk(attributes.has('secure'))
})

t.test("sameSite: 'none'", async (t) => {
  for (const secure of [undefined, 'auto', false] as const) {
    t.test(`fails register with secure ${String(secure)}`, async (t) => {
      await t.rejects(buildApp({ login: { remember: { sameSite: 'none', secure } } }), {
        code: 'FST_LOGIN_INVALID_OPTION',
        message: /sameSite.*secure/
      })
    })
  }

  t.test('with secure: true sets SameSite=None; Secure', async (t) => {
    const { attributes } = await rememberLogin({ login: { remember: { sameSite: 'none', secure: true } } })
    t.equal(attributes.get('samesite'), 'None')
    t.equal(attributes.get('secure'), '')
  })
  t.end()
})

t.test("sameSite: 'strict' sets SameSite=Strict", async (t) => {
  const { attributes } = await rememberLogin({ login: { remember: { sameSite: 'strict' } } })
  t.equal(attributes.get('samesite'), 'Strict')
})

t.test('httpOnly: false drops HttpOnly', async (t) => {
  const { attributes } = await rememberLogin({ login: { remember: { httpOnly: false } } })
  t.notOk(attributes.has('httponly'))
})

// Flask: test_remember_me_uses_custom_cookie_parameters.
t.test('a custom name, domain, path and duration are used', async (t) => {
  const options = { login: { remember: { cookieName: 'myname', domain: 'localhost.local', path: '/mypath', duration: 2 * 24 * 3600 } } }
  const { response, attributes } = await rememberLogin(options)
  t.equal(setCookieLine(response), undefined, 'no remember_token')
  t.ok(setCookieLine(response, 'myname'), 'myname is set')
  t.equal(attributes.get('domain'), 'localhost.local')
  t.equal(attributes.get('path'), '/mypath')
  t.equal(attributes.get('max-age'), '172800')
})

t.test('logout clears the cookie with the Domain and Path it was set with', async (t) => {
  const { app, response } = await rememberLogin({ login: { remember: { domain: 'localhost.local', path: '/' } } })
  const jar = new CookieJar(app)
  jar.store(response)
  const logout = await jar.inject({ method: 'POST', url: '/logout' })
  const attributes = attributesOf(setCookieLine(logout))
  t.equal(attributes.get('domain'), 'localhost.local')
  t.equal(attributes.get('path'), '/')
})

t.test('Vary: Cookie', async (t) => {
  // A browser whose session is gone but whose remember cookie is still there.
  async function restoring (options: BuildOptions = {}, addRoutes?: (app: FastifyInstance) => void) {
    const built = await buildApp(options)
    addRoutes?.(built.app)
    const jar = new CookieJar(built.app)
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    jar.restartBrowser()
    return { ...built, jar }
  }

  t.test('is sent when the user came from the remember cookie', async (t) => {
    const { jar } = await restoring()
    const response = await jar.inject('/')
    t.equal(response.json().remembered, true)
    t.match(response.headers.vary, /\bCookie\b/i)
  })

  // The security issue says "whose user came from a cookie"; the session cookie is one too.
  t.test('is sent when the user came from the session cookie', async (t) => {
    const { app } = await buildApp()
    const jar = new CookieJar(app)
    await jar.inject({ method: 'POST', url: '/login/1' })
    const response = await jar.inject('/')
    t.equal(response.json().user, 'Ann')
    t.match(response.headers.vary, /\bCookie\b/i)
  })

  t.test('is not sent on an anonymous response', async (t) => {
    const { app } = await buildApp()
    t.equal((await app.inject('/')).headers.vary, undefined)
  })

  t.test("is added to the route's own Vary, not put in its place", async (t) => {
    const { jar } = await restoring({}, (app) => {
      app.get('/cors', { config: { login: 'optional' } }, async (request, reply) => {
        reply.header('vary', 'Origin')
        return { authenticated: request.isAuthenticated() }
      })
    })
    const response = await jar.inject('/cors')
    t.equal(response.json().authenticated, true)
    const vary = String(response.headers.vary).split(',').map((field) => field.trim().toLowerCase())
    t.ok(vary.includes('origin'), `Origin kept (Vary: ${String(response.headers.vary)})`)
    t.ok(vary.includes('cookie'), 'Cookie added')
  })

  t.test('is merged with every shape of Vary a route may set', async (t) => {
    const cases: Array<[string | string[], string]> = [
      ['Accept-Encoding, cookie', 'Accept-Encoding, cookie'],
      ['*', '*'],
      [['Origin', 'Accept'], 'Origin, Accept, Cookie'],
      ['', 'Cookie']
    ]
    const { jar } = await restoring({}, (app) => {
      app.get<{ Querystring: { case: string } }>('/vary', { config: { login: 'optional' } }, async (request, reply) => {
        reply.header('vary', cases[Number(request.query.case)]![0])
        return { authenticated: request.isAuthenticated() }
      })
    })
    for (const [index, [, expected]] of cases.entries()) {
      const response = await jar.inject(`/vary?case=${index}`)
      t.equal(response.json().authenticated, true)
      t.equal(response.headers.vary, expected, `route Vary ${JSON.stringify(cases[index]![0])}`)
    }
  })

  t.test('is sent on a guarded route reached through the remember cookie', async (t) => {
    const { jar } = await restoring()
    const response = await jar.inject('/protected')
    t.equal(response.statusCode, 200)
    t.match(response.headers.vary, /\bCookie\b/i)
  })
  t.end()
})

t.test('Cache-Control on guarded routes', async (t) => {
  async function loggedIn (options: BuildOptions = {}) {
    const built = await buildApp(options)
    const jar = new CookieJar(built.app)
    return { ...built, jar }
  }

  t.test('preHandler: app.requireLogin answers private, no-store', async (t) => {
    const { jar } = await loggedIn()
    await jar.inject({ method: 'POST', url: '/login/1' })
    const response = await jar.inject('/protected')
    t.equal(response.statusCode, 200)
    t.equal(response.headers['cache-control'], 'private, no-store')
  })

  t.test("config: { login: 'required' } answers private, no-store", async (t) => {
    const { app, jar } = await loggedIn()
    app.get('/account', { config: { login: 'required' } }, async () => ({ ok: true }))
    await jar.inject({ method: 'POST', url: '/login/1' })
    const response = await jar.inject('/account')
    t.equal(response.statusCode, 200)
    t.equal(response.headers['cache-control'], 'private, no-store')
  })

  t.test('the fresh guard answers private, no-store', async (t) => {
    const { app, jar } = await loggedIn()
    app.get('/settings', { config: { login: 'fresh' } }, async () => ({ ok: true }))
    await jar.inject({ method: 'POST', url: '/login/1' })
    for (const url of ['/fresh', '/settings']) {
      const response = await jar.inject(url)
      t.equal(response.statusCode, 200, url)
      t.equal(response.headers['cache-control'], 'private, no-store', url)
    }
  })

  t.test('loginRequiredByDefault answers private, no-store', async (t) => {
    const { app, jar } = await loggedIn({ login: { loginRequiredByDefault: true } })
    app.get('/dashboard', async () => ({ ok: true }))
    await jar.inject({ method: 'POST', url: '/login/1' })
    const response = await jar.inject('/dashboard')
    t.equal(response.statusCode, 200)
    t.equal(response.headers['cache-control'], 'private, no-store')
  })

  t.test("a route's own Cache-Control wins", async (t) => {
    const { app, jar } = await loggedIn()
    app.get('/avatar', { preHandler: app.requireLogin }, async (_request, reply) => {
      reply.header('cache-control', 'private, max-age=60')
      return { ok: true }
    })
    app.get('/early', {
      config: { login: 'required' },
      onRequest: async (_request, reply) => { reply.header('cache-control', 'no-cache') }
    }, async () => ({ ok: true }))
    app.get('/refreshed', { config: { login: 'fresh' } }, async (_request, reply) => {
      reply.header('cache-control', 'private, max-age=5')
      return { ok: true }
    })
    await jar.inject({ method: 'POST', url: '/login/1' })
    t.equal((await jar.inject('/avatar')).headers['cache-control'], 'private, max-age=60', 'set in the handler')
    t.equal((await jar.inject('/early')).headers['cache-control'], 'no-cache', 'set before the guard ran')
    t.equal((await jar.inject('/refreshed')).headers['cache-control'], 'private, max-age=5', 'fresh guard')
  })

  t.test('unguarded routes get no Cache-Control', async (t) => {
    const { app, jar } = await loggedIn()
    app.get('/public', async () => ({ ok: true }))
    t.equal((await jar.inject('/')).headers['cache-control'], undefined, 'anonymous')
    await jar.inject({ method: 'POST', url: '/login/1' })
    t.equal((await jar.inject('/')).headers['cache-control'], undefined, "config.login 'optional', logged in")
    t.equal((await jar.inject('/public')).headers['cache-control'], undefined, 'no config, logged in')
  })
  t.end()
})

// A user from the requestLoader (an API key in a header) personalises the
// response by a header no Vary can name in general: keep it out of shared caches.
t.test('Cache-Control: private on responses to a requestLoader user', async (t) => {
  const KEYS = new Map([['key-of-ann', '1']])
  for (const sessionPlugin of ['session', 'secure-session'] as const) {
    const { app, users } = await buildApp({
      sessionPlugin,
      login: { requestLoader: (request) => users.get(KEYS.get(String(request.headers['x-api-key'])) ?? '') ?? null }
    })
    app.get('/api/me', async (request) => ({ user: request.isAuthenticated() ? (request.user as { name: string }).name : null }))
    app.get('/api/cached', async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=60')
      return { ok: true }
    })
    app.get('/api/guarded', { config: { login: 'required' } }, async () => ({ ok: true }))
    const withKey = (url: string) => app.inject({ url, headers: { 'x-api-key': 'key-of-ann' } })

    const me = await withKey('/api/me')
    t.same(me.json(), { user: 'Ann' }, `${sessionPlugin}: the key logs Ann in`)
    t.equal(me.headers['cache-control'], 'private', `${sessionPlugin}: an unguarded route is private`)
    t.equal((await withKey('/api/cached')).headers['cache-control'], 'public, max-age=60', `${sessionPlugin}: the route's own header wins`)
    t.equal((await withKey('/api/guarded')).headers['cache-control'], 'private, no-store', `${sessionPlugin}: a guarded route keeps the guard's`)
    const anonymous = await app.inject({ url: '/api/me', headers: { 'x-api-key': 'wrong' } })
    t.same(anonymous.json(), { user: null })
    t.equal(anonymous.headers['cache-control'], undefined, `${sessionPlugin}: an anonymous response is left alone`)
  }
})
