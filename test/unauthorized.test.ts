// The unauthorized and needs-refresh responses: 401 errors, redirects to the
// login and refresh views, `next`, flashed messages, custom handlers, Accept
// negotiation and `loginManager.loginUrl` (SPEC section 5).
import t from 'tap'
import type { FastifyError, FastifyInstance, FastifyRequest } from 'fastify'
import { buildApp, CookieJar, type BuildOptions } from './helpers.js'

const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8'

interface FlashReply {
  flash (): Record<string, string[]>
}

// Reads any session key; @fastify/session types only the keys an app declares.
function sessionValue (request: FastifyRequest, key: string): unknown {
  return (request.session as unknown as { get (key: string): unknown }).get(key) ?? null
}

// Adds GET /flashes (all flashed messages) and GET /login (the consumed safe `next`).
async function build (options: BuildOptions = {}): Promise<FastifyInstance> {
  const { app } = await buildApp(options)
  if (options.flash === true) {
    app.get('/flashes', { config: { login: 'optional' } }, async (request, reply) => (reply as unknown as FlashReply).flash())
  }
  app.get('/login', { config: { login: 'optional' } }, async (request) => ({
    next: request.safeNextUrl('(none)'),
    again: request.safeNextUrl('(none)')
  }))
  return app
}

async function staleJar (app: FastifyInstance): Promise<CookieJar> {
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?fresh=0' })
  return jar
}

t.test('unauthorized without a login view', async (t) => {
  // Flask: test_unauthorized_aborts_with_401
  t.test('answers a 401 JSON error with code FST_LOGIN_UNAUTHORIZED', async (t) => {
    const app = await build()
    const response = await app.inject('/protected')
    t.equal(response.statusCode, 401)
    t.match(response.headers['content-type'], /application\/json/)
    t.match(response.json(), { statusCode: 401, code: 'FST_LOGIN_UNAUTHORIZED', error: 'Unauthorized' })
    t.equal(response.headers.location, undefined)
  })

  t.test("goes through the application's error handler", async (t) => {
    const { app } = await buildApp({ routes: false })
    const seen: unknown[] = []
    app.setErrorHandler((error: FastifyError, request, reply) => {
      seen.push(error.code)
      return reply.code(error.statusCode ?? 500).send({ handled: error.code })
    })
    app.get('/protected', { preHandler: app.requireLogin }, async () => 'secret')
    const response = await app.inject('/protected')
    t.equal(response.statusCode, 401)
    t.same(response.json(), { handled: 'FST_LOGIN_UNAUTHORIZED' })
    t.same(seen, ['FST_LOGIN_UNAUTHORIZED'])
  })

  // Flask: test_unauthorized_fires_unauthorized_signal
  t.test('emits userUnauthorized once with the request', async (t) => {
    const app = await build()
    const heard: string[] = []
    app.loginManager.on('userUnauthorized', ({ request }) => { heard.push(request.url) })
    await app.inject('/protected?a=1')
    t.same(heard, ['/protected?a=1'])
  })

  t.test('does not emit userUnauthorized for an authenticated request', async (t) => {
    const app = await build()
    let heard = 0
    app.loginManager.on('userUnauthorized', () => { heard++ })
    const jar = new CookieJar(app)
    await jar.inject({ method: 'POST', url: '/login/1' })
    await jar.inject('/protected')
    t.equal(heard, 0)
  })
})

t.test('unauthorized with a login view', async (t) => {
  // Flask: test_unauthorized_redirects_to_login_view
  t.test('redirects (302) to the login view with next = path and query', async (t) => {
    const app = await build({ login: { loginView: '/login' } })
    const response = await app.inject('/protected?a=1')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/login?next=%2Fprotected%3Fa%3D1')
  })

  t.test('next survives a round trip through the login view', async (t) => {
    const app = await build({ login: { loginView: '/login' } })
    const response = await app.inject('/protected?a=1&b=%C3%BC')
    const location = response.headers.location as string
    t.same((await app.inject(location)).json().next, '/protected?a=1&b=%C3%BC')
  })

  t.test('emits userUnauthorized before redirecting', async (t) => {
    const app = await build({ login: { loginView: '/login' } })
    let heard = 0
    app.loginManager.on('userUnauthorized', () => { heard++ })
    t.equal((await app.inject('/protected')).statusCode, 302)
    t.equal(heard, 1)
  })

  t.test('uses an absolute next when the login view is on another host', async (t) => {
    const app = await build({ login: { loginView: 'https://auth.example/login' } })
    const response = await app.inject('/protected?a=1')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, 'https://auth.example/login?next=http%3A%2F%2Flocalhost%2Fprotected%3Fa%3D1')
  })

  t.test('uses a relative next when an absolute login view is on the same origin', async (t) => {
    const app = await build({ login: { loginView: 'http://localhost/login' } })
    const response = await app.inject('/protected')
    t.equal(response.headers.location, 'http://localhost/login?next=%2Fprotected')
  })

  // Flask: test_unauthorized_uses_blueprint_login_view
  t.test('accepts loginView as a function of the request', async (t) => {
    const app = await build({
      login: { loginView: (request) => request.url.startsWith('/admin') ? '/admin/login' : '/login' }
    })
    app.get('/admin/panel', { config: { login: 'required' } }, async () => 'panel')
    t.equal((await app.inject('/admin/panel')).headers.location, '/admin/login?next=%2Fadmin%2Fpanel')
    t.equal((await app.inject('/protected')).headers.location, '/login?next=%2Fprotected')
  })

  // Flask: unauthorized() with no view for the blueprint, `if not login_view: abort(401)`
  t.test('a loginView function that gives no path or URL answers 401, as no view does', async (t) => {
    for (const view of ['', null, undefined, false, 0, 42, {}, 'http://[', 'https://exa mple.test/login']) {
      const app = await build({ login: { loginView: () => view as string } })
      const response = await app.inject('/protected')
      t.equal(response.statusCode, 401, JSON.stringify(view))
      t.equal(response.json().code, 'FST_LOGIN_UNAUTHORIZED', JSON.stringify(view))
      t.equal(response.headers.location, undefined, JSON.stringify(view))
    }
  })

  t.test('a loginView function may give a view to some areas only', async (t) => {
    const app = await build({ login: { loginView: (request) => request.url.startsWith('/admin') ? '/admin/login' : undefined } })
    app.get('/admin/panel', { config: { login: 'required' } }, async () => 'panel')
    t.equal((await app.inject('/admin/panel')).headers.location, '/admin/login?next=%2Fadmin%2Fpanel')
    t.equal((await app.inject('/protected')).statusCode, 401)
  })

  t.test('uses a custom nextField', async (t) => {
    const app = await build({ login: { loginView: '/login', nextField: 'goto' } })
    t.equal((await app.inject('/protected')).headers.location, '/login?goto=%2Fprotected')
  })

  t.test('keeps the query string of the login view', async (t) => {
    const app = await build({ login: { loginView: '/login?affil=cgnu' } })
    t.equal((await app.inject('/protected')).headers.location, '/login?affil=cgnu&next=%2Fprotected')
  })

  // Flask: test_unauthorized_uses_host_from_config_when_available
  t.test('forceHostForRedirects puts that host in the redirect', async (t) => {
    const app = await build({ login: { loginView: '/login', forceHostForRedirects: 'good.com' } })
    const response = await app.inject({ url: '/protected', headers: { host: 'bad.com' } })
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '//good.com/login?next=%2Fprotected')
  })

  // Flask: test_unauthorized_uses_host_from_next_url
  t.test('without forceHostForRedirects the redirect has no host', async (t) => {
    const app = await build({ login: { loginView: '/login' } })
    const response = await app.inject({ url: '/protected', headers: { host: 'foo.com' } })
    t.equal(response.headers.location, '/login?next=%2Fprotected')
  })

  t.test('a malformed Host header still gets the redirect, not a 500', async (t) => {
    const app = await build({ login: { loginView: '/login' } })
    for (const host of ['bad host', 'good.com:notaport', 'a[b', 'good.com:99999']) {
      const response = await app.inject({ url: '/protected?a=1', headers: { host } })
      t.equal(response.statusCode, 302, `Host ${JSON.stringify(host)}`)
      t.equal(response.headers.location, '/login?next=%2Fprotected%3Fa%3D1', `Host ${JSON.stringify(host)}`)
    }
  })

  t.test('writes no session and sets no cookie for an anonymous redirect', async (t) => {
    const app = await build({ login: { loginView: '/login' } })
    const response = await app.inject('/protected')
    t.equal(response.statusCode, 302)
    t.equal(response.headers['set-cookie'], undefined)
  })
})

t.test('useSessionForNext', async (t) => {
  // Flask: test_unauthorized_with_next_in_session
  t.test('stores next in the session and redirects without it', async (t) => {
    const app = await build({ login: { loginView: '/login', useSessionForNext: true } })
    app.get('/peek', { config: { login: 'optional' } }, async (request) => ({ next: sessionValue(request, 'next') }))
    const jar = new CookieJar(app)
    const response = await jar.inject('/protected?a=1')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/login')
    t.same((await jar.inject('/peek')).json(), { next: '/protected?a=1' })
  })

  t.test('safeNextUrl returns the stored next once', async (t) => {
    const app = await build({ login: { loginView: '/login', useSessionForNext: true } })
    const jar = new CookieJar(app)
    await jar.inject('/protected?a=1')
    t.same((await jar.inject('/login')).json(), { next: '/protected?a=1', again: '(none)' })
    t.same((await jar.inject('/login')).json(), { next: '(none)', again: '(none)' }, 'the session no longer holds it')
  })

  t.test('uses the custom nextField as the session key', async (t) => {
    const app = await build({ login: { loginView: '/login', useSessionForNext: true, nextField: 'goto' } })
    app.get('/peek', { config: { login: 'optional' } }, async (request) => ({ goto: sessionValue(request, 'goto') }))
    const jar = new CookieJar(app)
    t.equal((await jar.inject('/protected')).headers.location, '/login')
    t.same((await jar.inject('/peek')).json(), { goto: '/protected' })
  })

  t.test('stores the absolute next when the login view is on another host', async (t) => {
    const app = await build({ login: { loginView: 'https://auth.example/login', useSessionForNext: true } })
    app.get('/peek', { config: { login: 'optional' } }, async (request) => ({ next: sessionValue(request, 'next') }))
    const jar = new CookieJar(app)
    t.equal((await jar.inject('/protected')).headers.location, 'https://auth.example/login')
    t.same((await jar.inject('/peek')).json(), { next: 'http://localhost/protected' })
  })

  // Flask: test_refresh_with_next_in_session
  t.test('works for needs-refresh', async (t) => {
    const app = await build({ login: { refreshView: '/login', useSessionForNext: true } })
    const jar = await staleJar(app)
    const response = await jar.inject('/fresh')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/login')
    t.equal((await jar.inject('/login')).json().next, '/fresh')
  })
})

t.test('flashed messages', async (t) => {
  t.test('flashes the default login message in the default category', async (t) => {
    const app = await build({ flash: true, login: { loginView: '/login' } })
    const jar = new CookieJar(app)
    t.equal((await jar.inject('/protected')).statusCode, 302)
    t.same((await jar.inject('/flashes')).json(), { message: ['Please log in to access this page.'] })
  })

  // Flask: test_unauthorized_flashes_message_with_login_view
  t.test('flashes loginMessage in loginMessageCategory', async (t) => {
    const app = await build({ flash: true, login: { loginView: '/login', loginMessage: 'Log in!', loginMessageCategory: 'login' } })
    const jar = new CookieJar(app)
    await jar.inject('/protected')
    t.same((await jar.inject('/flashes')).json(), { login: ['Log in!'] })
  })

  t.test('loginMessage false flashes nothing', async (t) => {
    const app = await build({ flash: true, login: { loginView: '/login', loginMessage: false } })
    const jar = new CookieJar(app)
    t.equal((await jar.inject('/protected')).statusCode, 302)
    t.same((await jar.inject('/flashes')).json(), {})
  })

  // Flask: test_unauthorized_flash_message_localized
  t.test('localize translates the message, given the request', async (t) => {
    const calls: Array<[string, string]> = []
    const app = await build({
      flash: true,
      login: {
        loginView: '/login',
        loginMessage: 'Log in!',
        localize: (message, request) => {
          calls.push([message, request.url])
          return message === 'Log in!' ? 'Einloggen' : message
        }
      }
    })
    const jar = new CookieJar(app)
    await jar.inject('/protected')
    t.same((await jar.inject('/flashes')).json(), { message: ['Einloggen'] })
    t.same(calls, [['Log in!', '/protected']])
  })

  t.test('flashes nothing when the answer is a 401', async (t) => {
    const app = await build({ flash: true })
    const jar = new CookieJar(app)
    t.equal((await jar.inject('/protected')).statusCode, 401)
    t.same((await jar.inject('/flashes')).json(), {})
  })

  t.test('redirects without crashing when @fastify/flash is not registered', async (t) => {
    const app = await build({ login: { loginView: '/login', loginMessage: 'Log in!' } })
    t.equal(app.hasRequestDecorator('flash'), false)
    const response = await app.inject('/protected')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/login?next=%2Fprotected')
  })

  // Flask: test_needs_refresh_fires_flash_when_redirect_to_refresh_view
  t.test('flashes needsRefreshMessage in needsRefreshMessageCategory', async (t) => {
    const app = await build({
      flash: true,
      login: { refreshView: '/reauth', needsRefreshMessage: 'Refresh', needsRefreshMessageCategory: 'refresh' }
    })
    const jar = await staleJar(app)
    t.equal((await jar.inject('/fresh')).statusCode, 302)
    t.same((await jar.inject('/flashes')).json(), { refresh: ['Refresh'] })
  })

  t.test('flashes the default needs-refresh message', async (t) => {
    const app = await build({ flash: true, login: { refreshView: '/reauth' } })
    const jar = await staleJar(app)
    await jar.inject('/fresh')
    t.same((await jar.inject('/flashes')).json(), { message: ['Please reauthenticate to access this page.'] })
  })

  t.test('needsRefreshMessage false flashes nothing', async (t) => {
    const app = await build({ flash: true, login: { refreshView: '/reauth', needsRefreshMessage: false } })
    const jar = await staleJar(app)
    t.equal((await jar.inject('/fresh')).statusCode, 302)
    t.same((await jar.inject('/flashes')).json(), {})
  })

  // Flask: test_needs_refresh_flash_message_localized
  t.test('localize translates the needs-refresh message', async (t) => {
    const app = await build({
      flash: true,
      login: { refreshView: '/reauth', needsRefreshMessage: 'Refresh', localize: (message) => message === 'Refresh' ? 'Aktualisieren' : message }
    })
    const jar = await staleJar(app)
    await jar.inject('/fresh')
    t.same((await jar.inject('/flashes')).json(), { message: ['Aktualisieren'] })
  })
})

t.test('unauthorizedHandler', async (t) => {
  // Flask: test_unauthorized_uses_authorized_handler
  t.test('replaces the 401 response', async (t) => {
    const app = await build({ login: { unauthorizedHandler: (request, reply) => reply.code(401).send('This is secret!') } })
    const response = await app.inject('/protected')
    t.equal(response.statusCode, 401)
    t.equal(response.body, 'This is secret!')
  })

  t.test('replaces the redirect, and the event still fires', async (t) => {
    const app = await build({
      flash: true,
      login: {
        loginView: '/login',
        unauthorizedHandler: async (request, reply) => reply.code(403).send({ custom: request.url })
      }
    })
    let heard = 0
    app.loginManager.on('userUnauthorized', () => { heard++ })
    const jar = new CookieJar(app)
    const response = await jar.inject('/protected')
    t.equal(response.statusCode, 403)
    t.same(response.json(), { custom: '/protected' })
    t.equal(heard, 1)
    t.same((await jar.inject('/flashes')).json(), {}, 'no message is flashed')
  })

  t.test('keeps the handler from running', async (t) => {
    let ran = false
    const { app } = await buildApp({ routes: false, login: { unauthorizedHandler: (request, reply) => reply.code(418).send('no') } })
    app.get('/guarded', { config: { login: 'required' } }, async () => { ran = true; return 'yes' })
    t.equal((await app.inject('/guarded')).statusCode, 418)
    t.equal(ran, false)
  })
})

t.test('needs refresh', async (t) => {
  // Flask: test_needs_refresh_aborts_401
  t.test('answers a 401 JSON error with code FST_LOGIN_NEEDS_REFRESH without a refresh view', async (t) => {
    const app = await build({ login: { loginView: '/login' } })
    const jar = await staleJar(app)
    const response = await jar.inject('/fresh')
    t.equal(response.statusCode, 401)
    t.match(response.json(), { statusCode: 401, code: 'FST_LOGIN_NEEDS_REFRESH' })
  })

  t.test("goes through the application's error handler", async (t) => {
    const { app } = await buildApp()
    const seen: unknown[] = []
    app.setErrorHandler((error: FastifyError, request, reply) => {
      seen.push(error.code)
      return reply.code(error.statusCode ?? 500).send({ handled: error.code })
    })
    app.get('/very-protected', { config: { login: 'fresh' } }, async () => 'secret')
    const jar = await staleJar(app)
    t.same((await jar.inject('/very-protected')).json(), { handled: 'FST_LOGIN_NEEDS_REFRESH' })
    t.same(seen, ['FST_LOGIN_NEEDS_REFRESH'])
  })

  // Flask: test_redirects_to_refresh_view
  t.test('redirects to refreshView with next', async (t) => {
    const app = await build({ login: { loginView: '/login', refreshView: '/reauth' } })
    const jar = await staleJar(app)
    const response = await jar.inject('/fresh?x=1')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/reauth?next=%2Ffresh%3Fx%3D1')
  })

  t.test('accepts refreshView as a function of the request', async (t) => {
    const app = await build({ login: { refreshView: (request) => `/reauth/${request.method.toLowerCase()}` } })
    const jar = await staleJar(app)
    t.equal((await jar.inject('/fresh')).headers.location, '/reauth/get?next=%2Ffresh')
  })

  t.test('a refreshView function that gives no path or URL answers 401', async (t) => {
    for (const view of ['', null, undefined, 'http://[']) {
      const app = await build({ login: { refreshView: () => view as string } })
      const jar = await staleJar(app)
      const response = await jar.inject('/fresh')
      t.equal(response.statusCode, 401, JSON.stringify(view))
      t.equal(response.json().code, 'FST_LOGIN_NEEDS_REFRESH', JSON.stringify(view))
    }
  })

  // Flask: test_needs_refresh_fires_needs_refresh_signal
  t.test('emits userNeedsRefresh, not userUnauthorized', async (t) => {
    const app = await build()
    const heard: string[] = []
    app.loginManager.on('userNeedsRefresh', ({ request }) => { heard.push(`refresh ${request.url}`) })
    app.loginManager.on('userUnauthorized', ({ request }) => { heard.push(`unauthorized ${request.url}`) })
    const jar = await staleJar(app)
    await jar.inject('/fresh')
    t.same(heard, ['refresh /fresh'])
  })

  // Flask: test_needs_refresh_uses_handler
  t.test('needsRefreshHandler replaces the response', async (t) => {
    const app = await build({
      login: { refreshView: '/reauth', needsRefreshHandler: (request, reply) => reply.code(200).send('Needs Refresh!') }
    })
    const jar = await staleJar(app)
    const response = await jar.inject('/fresh')
    t.equal(response.statusCode, 200)
    t.equal(response.body, 'Needs Refresh!')
  })

  t.test('needsRefreshHandler is not used for anonymous requests', async (t) => {
    const app = await build({ login: { needsRefreshHandler: (request, reply) => reply.code(200).send('Needs Refresh!') } })
    const response = await app.inject('/fresh')
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_UNAUTHORIZED')
  })

  t.test('unauthorizedHandler is not used for stale logins', async (t) => {
    const app = await build({ login: { unauthorizedHandler: (request, reply) => reply.code(418).send('no') } })
    const jar = await staleJar(app)
    t.equal((await jar.inject('/fresh')).json().code, 'FST_LOGIN_NEEDS_REFRESH')
  })
})

t.test('Accept negotiation', async (t) => {
  const cases: Array<[string | undefined, number]> = [
    ['application/json', 401],
    ['text/html;q=0.5, application/json;q=0.9', 401],
    ['application/json, text/html;q=0.9', 401],
    ['application/json;q=0.1', 401],
    [BROWSER_ACCEPT, 302],
    ['*/*', 302],
    [undefined, 302],
    ['', 302],
    ['text/html', 302],
    ['application/json, text/html', 302],
    ['text/html;q=0.9, application/json;q=0.5', 302],
    ['application/json;q=0', 302],
    // A q-value that is not a number counts as 0.
    ['application/json;q=high, text/html;q=0.1', 302],
    ['application/json, text/html;q=high', 401]
  ]
  for (const [accept, status] of cases) {
    t.test(`Accept ${JSON.stringify(accept)} gets ${status}`, async (t) => {
      const app = await build({ login: { loginView: '/login', refreshView: '/reauth' } })
      const headers = accept === undefined ? {} : { accept }
      const response = await app.inject({ url: '/protected', headers })
      t.equal(response.statusCode, status)
      if (status === 401) t.equal(response.json().code, 'FST_LOGIN_UNAUTHORIZED')
      else t.equal(response.headers.location, '/login?next=%2Fprotected')
    })
  }

  t.test('a JSON client gets FST_LOGIN_NEEDS_REFRESH instead of the refresh redirect', async (t) => {
    const app = await build({ login: { refreshView: '/reauth' } })
    const jar = await staleJar(app)
    const response = await jar.inject({ url: '/fresh', headers: { accept: 'application/json' } })
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_NEEDS_REFRESH')
    t.equal((await jar.inject({ url: '/fresh', headers: { accept: BROWSER_ACCEPT } })).statusCode, 302)
  })
})

t.test('loginManager.unauthorized and needsRefresh called from a route', async (t) => {
  async function withSecretRoute (options: BuildOptions): Promise<{ app: FastifyInstance, record: { sent?: boolean, code?: unknown } }> {
    const app = await build(options)
    const record: { sent?: boolean, code?: unknown } = {}
    app.get('/secret', { config: { login: 'optional' } }, async (request, reply) => {
      try {
        await app.loginManager.unauthorized(request, reply)
      } catch (error) {
        record.code = (error as FastifyError).code
        throw error
      }
      record.sent = reply.sent
      return reply
    })
    app.get('/needs-refresh', { config: { login: 'optional' } }, async (request, reply) => {
      await app.loginManager.needsRefresh(request, reply)
      return reply
    })
    return { app, record }
  }

  // Flask: LoginTestCase's /secret route
  t.test('redirects, and the promise settles once the reply is sent', async (t) => {
    const { app, record } = await withSecretRoute({ login: { loginView: '/login' } })
    const response = await app.inject('/secret?a=1')
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/login?next=%2Fsecret%3Fa%3D1')
    t.same(record, { sent: true })
  })

  t.test('rejects with FST_LOGIN_UNAUTHORIZED and answers 401', async (t) => {
    const { app, record } = await withSecretRoute({})
    const response = await app.inject('/secret')
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_UNAUTHORIZED')
    t.same(record, { code: 'FST_LOGIN_UNAUTHORIZED' })
  })

  t.test('uses the unauthorizedHandler', async (t) => {
    const { app } = await withSecretRoute({ login: { unauthorizedHandler: (request, reply) => reply.code(401).send('This is secret!') } })
    const response = await app.inject('/secret')
    t.equal(response.statusCode, 401)
    t.equal(response.body, 'This is secret!')
  })

  t.test('needsRefresh redirects to the refresh view or answers 401', async (t) => {
    const withView = (await withSecretRoute({ login: { refreshView: '/reauth' } })).app
    t.equal((await withView.inject('/needs-refresh')).headers.location, '/reauth?next=%2Fneeds-refresh')
    const without = (await withSecretRoute({})).app
    const response = await without.inject('/needs-refresh')
    t.equal(response.statusCode, 401)
    t.equal(response.json().code, 'FST_LOGIN_NEEDS_REFRESH')
  })
})

// Flask: TestLoginUrlGeneration
t.test('loginManager.loginUrl', async (t) => {
  const { app } = await buildApp({ routes: false })
  const { loginUrl } = app.loginManager
  const protectedUrl = 'http://localhost/protected'
  t.equal(loginUrl('/foo'), '/foo', 'no next')
  t.equal(loginUrl('/login', protectedUrl), '/login?next=%2Fprotected', 'same-origin next is a path')
  t.equal(loginUrl('/login', '/protected'), '/login?next=%2Fprotected', 'a path next stays a path')
  t.equal(loginUrl('/login', protectedUrl, 'n'), '/login?n=%2Fprotected', 'custom field')
  t.equal(loginUrl('/login?affil=cgnu', protectedUrl), '/login?affil=cgnu&next=%2Fprotected', 'existing query kept')
  t.equal(loginUrl('https://auth.localhost/login', protectedUrl),
    'https://auth.localhost/login?next=http%3A%2F%2Flocalhost%2Fprotected', 'another host: absolute next')
  t.equal(loginUrl('https://localhost/login', 'http://localhost/profile'),
    'https://localhost/login?next=http%3A%2F%2Flocalhost%2Fprofile', 'another scheme: absolute next')
  t.equal(loginUrl('http://accounts.localhost/login', 'http://localhost/profile'),
    'http://accounts.localhost/login?next=http%3A%2F%2Flocalhost%2Fprofile', 'a subdomain is another host')
  t.equal(loginUrl('http://localhost/login', 'http://localhost/profile'),
    'http://localhost/login?next=%2Fprofile', 'absolute view on the same origin: path next')
})

t.test('loginManager.loginUrl uses the configured nextField and forceHostForRedirects', async (t) => {
  const { app } = await buildApp({ routes: false, login: { nextField: 'goto', forceHostForRedirects: 'good.com' } })
  t.equal(app.loginManager.loginUrl('/login', 'http://localhost/protected'), '//good.com/login?goto=%2Fprotected')
  // As in Flask-Login's login_url, the host is forced only where there is a next.
  t.equal(app.loginManager.loginUrl('/login'), '/login')
})
