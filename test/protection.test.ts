import t from 'tap'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { createHash } from 'node:crypto'
import { defaultSessionIdentifier } from '../lib/options.js'
import { buildApp, CookieJar, type BuildOptions } from './helpers.js'

const OTHER_AGENT = { 'user-agent': 'a different browser' }

interface AnySession {
  get (key: string): unknown
  set (key: string, value: unknown): void
}

function sessionOf (request: FastifyRequest): AnySession {
  return (request as unknown as { session: AnySession }).session
}

// Routes that keep unrelated data (a cart) in the session.
function addCartRoutes (app: FastifyInstance): void {
  app.post('/cart', { config: { login: false } }, async (request) => {
    sessionOf(request).set('cart', ['apples'])
    return { ok: true }
  })
  app.get('/cart', { config: { login: false } }, async (request) => ({ cart: sessionOf(request).get('cart') ?? null }))
}

async function setup (options: BuildOptions = {}) {
  const built = await buildApp(options)
  addCartRoutes(built.app)
  const protectedEvents: string[] = []
  built.app.loginManager.on('sessionProtected', ({ request }) => { protectedEvents.push(request.url) })
  return { ...built, jar: new CookieJar(built.app), protectedEvents }
}

function cookieCleared (header: string | string[] | undefined, name = 'remember_token'): boolean {
  const list = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return list.some((line) => line.startsWith(`${name}=;`) && /max-age=0|expires=thu, 01 jan 1970/i.test(line))
}

t.test('successive requests from the same client stay fresh (basic)', async (t) => {
  // Flask: test_session_protection_basic_passes_successive_requests
  const { jar, protectedEvents } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: true })
  t.same((await jar.inject('/')).json().fresh, true)
  t.same(protectedEvents, [])
})

t.test('successive requests from the same client stay fresh (strong)', async (t) => {
  // Flask: test_session_protection_strong_passes_successive_requests
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' } })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: true })
  t.same((await jar.inject('/')).json().fresh, true)
  t.same(protectedEvents, [])
})

t.test('basic: another client identifier keeps the login but makes it stale', async (t) => {
  // Flask: test_session_protection_basic_marks_session_unfresh, ..._basic_fires_signal
  const { jar, protectedEvents } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1' })
  const response = await jar.inject({ url: '/', headers: OTHER_AGENT })
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false })
  t.same(protectedEvents, ['/'])
  t.equal((await jar.inject('/')).json().fresh, false, 'the session stays stale afterwards')
  t.equal((await jar.inject('/fresh')).statusCode, 401, 'the fresh guard refuses it')
})

t.test('basic is the default mode', async (t) => {
  const { app } = await setup()
  t.equal(app.loginManager.options.sessionProtection, 'basic')
})

t.test('strong: another client identifier removes the login and clears the remember cookie', async (t) => {
  // Flask: test_session_protection_strong_deletes_session, ..._strong_fires_signal_user_agent
  const { jar, protectedEvents, loaded } = await setup({ login: { sessionProtection: 'strong' } })
  await jar.inject({ method: 'POST', url: '/cart' })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  loaded.length = 0
  const response = await jar.inject({ url: '/', headers: OTHER_AGENT })
  t.same(response.json(), { user: null, authenticated: false, fresh: false, remembered: false })
  t.ok(cookieCleared(response.headers['set-cookie']), 'the remember cookie is cleared')
  t.same(protectedEvents, ['/'])
  t.same(loaded, [], 'the loader is not consulted')
  t.notOk(jar.get('remember_token'))
  t.same((await jar.inject('/cart')).json(), { cart: ['apples'] }, 'other session data stays')
  t.equal((await jar.inject('/')).json().authenticated, false, 'the original client is logged out too')
})

t.test('strong: a persistent session is only marked stale', async (t) => {
  // Flask: test_permanent_strong_session_protection_marks_session_unfresh, ..._fires_signal
  const { jar, protectedEvents } = await setup({
    login: { sessionProtection: 'strong' },
    session: { cookie: { secure: false, maxAge: 3600 * 1000 } }
  })
  await jar.inject({ method: 'POST', url: '/login/1' })
  const response = await jar.inject({ url: '/', headers: OTHER_AGENT })
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false })
  t.same(protectedEvents, ['/'])
  t.equal((await jar.inject('/')).json().fresh, false)
})

t.test('a session login is protected when only a requestLoader reads it', async (t) => {
  // Flask's LoginViaRequestTestCase: the request loader reads session['_user_id'],
  // and _session_protection_failed() runs before any loader.
  for (const mode of ['basic', 'strong'] as const) {
    t.test(mode, async (t) => {
      const requestLoaderCalls: string[] = []
      const { jar, protectedEvents, users } = await setup({
        login: {
          sessionProtection: mode,
          userLoader: undefined,
          requestLoader: (request: FastifyRequest) => {
            const id = sessionOf(request).get('_user_id')
            requestLoaderCalls.push(String(id))
            return typeof id === 'string' ? users.get(id) ?? null : null
          }
        }
      })
      await jar.inject({ method: 'POST', url: '/login/1' })
      t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: false }, 'control: the same client')
      t.same(protectedEvents, [])
      requestLoaderCalls.length = 0
      const response = await jar.inject({ url: '/', headers: OTHER_AGENT })
      t.same(protectedEvents, ['/'])
      if (mode === 'basic') {
        t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false })
        t.equal((await jar.inject('/fresh')).statusCode, 401, 'the session stays stale')
      } else {
        t.same(response.json(), { user: null, authenticated: false, fresh: false, remembered: false })
        t.same(requestLoaderCalls, [], 'the loader is not consulted')
        t.equal((await jar.inject('/')).json().authenticated, false, 'the login left the session')
      }
    })
  }
})

t.test('sessionProtection false ignores another client identifier', async (t) => {
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: false } })
  await jar.inject({ method: 'POST', url: '/login/1' })
  const response = await jar.inject({ url: '/', headers: OTHER_AGENT })
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
  t.same(protectedEvents, [])
})

t.test('a session without a login is not protected', async (t) => {
  // Flask: test_session_protection_skip_when_basic_and_anonymous
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' } })
  await jar.inject({ method: 'POST', url: '/cart' })
  const response = await jar.inject({ url: '/', headers: OTHER_AGENT })
  t.equal(response.json().authenticated, false)
  t.same(protectedEvents, [])
  t.same((await jar.inject('/cart')).json(), { cart: ['apples'] })
})

t.test('an anonymous request without a session fires nothing and writes nothing', async (t) => {
  const { app, protectedEvents } = await setup({ login: { sessionProtection: 'strong' } })
  const response = await app.inject('/')
  t.equal(response.headers['set-cookie'], undefined)
  t.same(protectedEvents, [])
})

t.test('a remember restore is not a protection failure', async (t) => {
  // Flask: test_session_protection_basic_skips_when_remember_me, ..._strong_skips_when_remember_me
  for (const mode of ['basic', 'strong'] as const) {
    const { jar, protectedEvents } = await setup({ login: { sessionProtection: mode } })
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    jar.restartBrowser()
    t.equal((await jar.inject({ url: '/', headers: OTHER_AGENT })).json().user, 'Ann', mode)
    t.same(protectedEvents, [], mode)
  }
})

t.test('strong: a restored session stays logged in on the next request', async (t) => {
  // Unlike Flask-Login, the identifier is stored when the cookie restores the user.
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' } })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  await jar.inject('/')
  const response = await jar.inject('/')
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  t.notOk(cookieCleared(response.headers['set-cookie']))
  jar.delete('remember_token')
  t.equal((await jar.inject('/')).json().user, 'Ann', 'the session alone holds the login')
  t.same(protectedEvents, [])
})

t.test('a restored session is bound to the client that restored it', async (t) => {
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' } })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  await jar.inject({ url: '/', headers: OTHER_AGENT })
  const response = await jar.inject('/')
  t.equal(response.json().authenticated, false)
  t.same(protectedEvents, ['/'])
})

t.test('confirmLogin from a new client makes the session fresh and binds it there', async (t) => {
  const { jar, protectedEvents } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.equal((await jar.inject({ url: '/', headers: OTHER_AGENT })).json().fresh, false)
  t.same((await jar.inject({ method: 'POST', url: '/confirm', headers: OTHER_AGENT })).json(), { fresh: true })
  protectedEvents.length = 0
  t.equal((await jar.inject({ url: '/', headers: OTHER_AGENT })).json().fresh, true, 'fresh from the new client')
  t.same(protectedEvents, [], 'the new client passes')
  t.equal((await jar.inject('/')).json().fresh, false, 'the first client is now the stranger')
  t.same(protectedEvents, ['/'])
})

t.test('a custom sessionIdentifier decides what counts as the same client', async (t) => {
  const { jar, protectedEvents } = await setup({
    login: { sessionProtection: 'strong', sessionIdentifier: (request) => String(request.headers['x-device']) }
  })
  await jar.inject({ method: 'POST', url: '/login/1', headers: { 'x-device': 'phone' } })
  const same = await jar.inject({ url: '/', headers: { 'x-device': 'phone', ...OTHER_AGENT } })
  t.equal(same.json().user, 'Ann', 'another User-Agent does not matter')
  t.same(protectedEvents, [])
  const other = await jar.inject({ url: '/', headers: { 'x-device': 'laptop' } })
  t.equal(other.json().authenticated, false)
  t.same(protectedEvents, ['/'])
})

t.test('the client address is part of the default identifier', async (t) => {
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' } })
  await jar.inject({ method: 'POST', url: '/login/1', remoteAddress: '10.0.0.1' })
  t.equal((await jar.inject({ url: '/', remoteAddress: '10.0.0.1' })).json().user, 'Ann')
  t.equal((await jar.inject({ url: '/', remoteAddress: '10.0.0.2' })).json().authenticated, false)
  t.same(protectedEvents, ['/'])
})

t.test('the default identifier is the SHA-512 hex of address|User-Agent, for every client', async (t) => {
  // Flask-Login's _create_identifier; checked past the size of the identifier cache.
  const expected = (address: string, agent: string): string => createHash('sha512').update(`${address}|${agent}`, 'utf8').digest('hex')
  const client = (address: string, agent?: string) => ({ ip: address, headers: agent === undefined ? {} : { 'user-agent': agent } }) as unknown as FastifyRequest
  const wrong: string[] = []
  for (let round = 0; round < 2; round++) {
    for (let index = 0; index < 1500; index++) {
      const agent = `agent ${index % 700}`
      const address = `10.0.${index % 3}.1`
      if (defaultSessionIdentifier(client(address, agent)) !== expected(address, agent)) wrong.push(`${address}|${agent}`)
    }
  }
  t.same(wrong, [], 'every client gets its own hash, cached or not')
  t.equal(defaultSessionIdentifier(client('10.0.0.1')), expected('10.0.0.1', ''), 'no User-Agent counts as an empty one')
})

t.test('with trustProxy a login persists behind one X-Forwarded-For address', async (t) => {
  // Flask: test_login_persists_with_signle_x_forwarded_for, ..._with_many_x_forwarded_for
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' }, fastify: { trustProxy: true } })
  const forwarded = { 'x-forwarded-for': '10.1.1.1' }
  await jar.inject({ method: 'POST', url: '/login/1', headers: forwarded })
  t.equal((await jar.inject({ url: '/', headers: forwarded })).json().user, 'Ann')
  t.equal((await jar.inject({ url: '/', headers: forwarded })).json().user, 'Ann')
  t.equal((await jar.inject({ url: '/', headers: { 'x-forwarded-for': '10.1.1.1, 10.1.1.2' } })).json().user, 'Ann',
    'a further proxy appended after the client does not change the client address')
  t.same(protectedEvents, [])
})

t.test('with trustProxy another X-Forwarded-For address is another client', async (t) => {
  // Flask: test_session_protection_strong_fires_signal_x_forwarded_for
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' }, fastify: { trustProxy: true } })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1', headers: { 'x-forwarded-for': '10.1.1.1' } })
  const response = await jar.inject({ url: '/', headers: { 'x-forwarded-for': '10.1.1.2' } })
  t.equal(response.json().authenticated, false)
  t.same(protectedEvents, ['/'])
})

t.test('without trustProxy X-Forwarded-For is ignored', async (t) => {
  const { jar, protectedEvents } = await setup({ login: { sessionProtection: 'strong' } })
  await jar.inject({ method: 'POST', url: '/login/1', headers: { 'x-forwarded-for': '10.1.1.1' } })
  const response = await jar.inject({ url: '/', headers: { 'x-forwarded-for': '10.9.9.9' } })
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
  t.same(protectedEvents, [])
})
