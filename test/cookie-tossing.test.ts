// Cookie tossing (SPEC section 16): a request that carries more than one
// remember cookie uses none of them, and the response clears what it can. A
// browser sends every cookie whose path and domain match, the longer path
// first, and @fastify/cookie keeps the first: without this rule a cookie
// tossed from a sibling subdomain or set on a longer path, holding the
// attacker's own valid token, would log the victim in as the attacker.
// Also: the `__Host-` and `__Secure-` cookie-name prefixes.
import { connect } from 'node:net'
import t from 'tap'
import Fastify, { type FastifyInstance, type LightMyRequestResponse } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin from '../lib/index.js'
import { buildApp, CookieJar, LOGIN_SECRET, SESSION_SECRET, type BuildOptions } from './helpers.js'

const PLUGINS = ['session', 'secure-session'] as const
const ANONYMOUS = { user: null, authenticated: false, fresh: false, remembered: false }

// A valid remember cookie of user `id`, as a login with remember sets it.
async function rememberTokenOf (app: FastifyInstance, id: string): Promise<string> {
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: `/login/${id}?remember=1` })
  const token = jar.get('remember_token')
  if (token === undefined) throw new Error('no remember cookie')
  return token
}

interface SetCookie {
  name: string
  value: string
  path?: string
  domain?: string
  maxAge?: number
  expires?: Date
}

function setCookies (response: LightMyRequestResponse, name = 'remember_token'): SetCookie[] {
  return (response.cookies as SetCookie[]).filter((cookie) => cookie.name === name)
}

function isClearing (cookie: SetCookie): boolean {
  return cookie.value === '' && (cookie.maxAge === 0 || (cookie.expires !== undefined && cookie.expires.getTime() <= Date.now()))
}

// `path domain` of each clearing Set-Cookie, `domain` '-' for a host-only cookie.
function cleared (response: LightMyRequestResponse, name = 'remember_token'): string[] {
  return setCookies(response, name).filter(isClearing).map((cookie) => `${cookie.path ?? ''} ${cookie.domain ?? '-'}`).sort()
}

async function setup (options: BuildOptions = {}) {
  const built = await buildApp(options)
  const ann = await rememberTokenOf(built.app, '1')
  const bob = await rememberTokenOf(built.app, '2')
  built.loaded.length = 0
  return { ...built, ann, bob }
}

for (const sessionPlugin of PLUGINS) {
  t.test(`two valid remember cookies: neither logs anybody in (${sessionPlugin})`, async (t) => {
    const { app, ann, bob, loaded } = await setup({ sessionPlugin })
    // The attacker's cookie, on a longer path, comes first.
    const response = await app.inject({ url: '/', headers: { cookie: `remember_token=${bob}; remember_token=${ann}` } })
    t.same(response.json(), ANONYMOUS)
    t.same(loaded, [], 'no loader call')
    t.ok(cleared(response).includes('/ -'), 'cleared at the configured path and domain')
    t.same(setCookies(response, sessionPlugin === 'session' ? 'sessionId' : 'session'), [], 'no session created')
  })

  t.test(`a session login stays; the remember cookies are not used, and are cleared (${sessionPlugin})`, async (t) => {
    const { app, ann, bob } = await setup({ sessionPlugin })
    const jar = new CookieJar(app)
    await jar.inject({ method: 'POST', url: '/login/1' })
    const response = await app.inject({ url: '/', headers: { cookie: `${jar.header()}; remember_token=${bob}; remember_token=${ann}` } })
    t.same(response.json(), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
    t.ok(cleared(response).includes('/ -'))
  })
}

t.test('a tossed junk cookie no longer disables remember-me for good: it is cleared where it can live', async (t) => {
  const { app, ann } = await setup()
  const response = await app.inject({
    url: '/account/settings?tab=1',
    headers: { host: 'app.example.com', cookie: `remember_token=junk; remember_token=${ann}` }
  })
  t.equal(response.statusCode, 404, 'no such route, but the hook ran')
  // Every path the tossed cookie can have been sent for, host-only or on the host and its parent domain.
  const expected: string[] = []
  for (const path of ['/', '/account', '/account/', '/account/settings']) {
    for (const domain of ['-', 'app.example.com', 'example.com']) expected.push(`${path} ${domain}`)
  }
  t.same(cleared(response), expected.sort())
})

t.test('what is cleared is bounded, and only paths and domains a cookie can have', async (t) => {
  const { app, ann } = await setup()
  const deep = `/${Array.from({ length: 40 }, (_, index) => `s${index}`).join('/')}`
  const host = `${Array.from({ length: 40 }, (_, index) => `h${index}`).join('.')}.example.com`
  const response = await app.inject({ url: deep, headers: { host, cookie: `remember_token=junk; remember_token=${ann}` } })
  const all = cleared(response)
  t.equal(all.length, 6 * 3, 'at most 6 paths and 3 domains (host-only and 2 Domain values)')
  t.ok(all.includes('/ -'))
  t.ok(all.includes('/s0/s1/ example.com') && all.includes('/s0/s1/s2 h39.example.com'), 'the shortest paths and parent domains first')
  const size = [response.headers['set-cookie']].flat().join('\r\n').length
  t.ok(size < 2500, `${size} bytes of Set-Cookie: small enough for a proxy's header buffer`)
  const odd = await app.inject({ url: '/a;b/c', headers: { host: '127.0.0.1:3000', cookie: `remember_token=junk; remember_token=${ann}` } })
  t.same(cleared(odd), ['/ -'], 'no path with a ";" (it cannot be a cookie path) and no Domain for an address')
})

t.test('a login on such a request sets the new cookie at the configured path and clears the others', async (t) => {
  const { app, ann, bob } = await setup()
  const response = await app.inject({ method: 'POST', url: '/login/1?remember=1', headers: { cookie: `remember_token=${bob}; remember_token=${ann}` } })
  t.same(response.json(), { ok: true })
  const set = setCookies(response).filter((cookie) => !isClearing(cookie))
  t.equal(set.length, 1)
  t.equal(set[0]?.path, '/')
  t.same(cleared(response), ['/login -', '/login/ -', '/login/1 -'])
})

t.test('logout on such a request clears them', async (t) => {
  const { app, ann, bob } = await setup()
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  const response = await app.inject({ method: 'POST', url: '/logout', headers: { cookie: `${jar.header()}; remember_token=${bob}; remember_token=${ann}` } })
  t.same(cleared(response), ['/ -', '/logout -'])
})

t.test('cookie names are matched as @fastify/cookie reads them', async (t) => {
  const { app, ann, bob } = await setup()
  const as = async (cookie: string) => (await app.inject({ url: '/', headers: { cookie } })).json().user as string | null
  t.equal(await as(`xremember_token=${bob}; remember_token=${ann}`), 'Ann', 'a longer name is another cookie')
  t.equal(await as(`other=remember_token=${bob}; remember_token=${ann}`), 'Ann', 'a value is not a name')
  t.equal(await as(`remember_token; remember_token=${ann}`), 'Ann', 'a pair without "=" is skipped')
  t.equal(await as(`remember_token=${ann};remember_token=${bob}`), null, 'no space after ";"')
  t.equal(await as(` remember_token \t= ${bob}; remember_token=${ann}`), null, 'spaces and tabs around the name')
  t.equal(await as(`remember_token=${ann}; remember_token=`), null, 'an empty second value counts too')
})

t.test('cookie-name prefixes', async (t) => {
  const invalid: Array<[string, Record<string, unknown>, RegExp]> = [
    ['__Host- without secure', { cookieName: '__Host-remember_token' }, /`__Host-` cookie name needs `remember\.secure: true`, `remember\.path: '\/'` and no `remember\.domain`/],
    ['__Host- with secure auto', { cookieName: '__Host-remember_token', secure: 'auto' }, /__Host-/],
    ['__Host- with a path', { cookieName: '__Host-remember_token', secure: true, path: '/app' }, /__Host-/],
    ['__Host- with a domain', { cookieName: '__Host-remember_token', secure: true, domain: 'example.com' }, /__Host-/],
    ['__host- in lower case', { cookieName: '__host-remember_token' }, /__Host-/],
    ['__Secure- without secure', { cookieName: '__Secure-remember_token' }, /`__Secure-` cookie name needs `remember\.secure: true`/],
    ['__SECURE- with secure false', { cookieName: '__SECURE-remember_token', secure: false }, /__Secure-/]
  ]
  for (const [label, remember, advice] of invalid) {
    const error = await buildApp({ login: { remember } }).then(() => null, (error: unknown) => error as Error & { code?: string })
    t.equal(error?.code, 'FST_LOGIN_INVALID_OPTION', `${label}: refused`)
    t.match(error?.message, advice, `${label}: says what to do`)
  }

  const https = { 'x-forwarded-proto': 'https' }
  const { app } = await buildApp({ fastify: { trustProxy: true }, login: { remember: { cookieName: '__Host-remember_token', secure: true } } })
  const login = await app.inject({ method: 'POST', url: '/login/1?remember=1', headers: https })
  const [cookie] = setCookies(login, '__Host-remember_token') as Array<SetCookie & { secure?: boolean }>
  t.equal(cookie?.path, '/')
  t.equal(cookie?.domain, undefined)
  t.equal(cookie?.secure, true)
  const restored = await app.inject({ url: '/', headers: { ...https, cookie: `__Host-remember_token=${cookie?.value ?? ''}` } })
  t.match(restored.json(), { user: 'Ann', remembered: true }, 'a __Host- cookie restores the login')
  const twice = await app.inject({ url: '/deep/path', headers: { ...https, host: 'app.example.com', cookie: `__Host-remember_token=x; __Host-remember_token=${cookie?.value ?? ''}` } })
  t.same(cleared(twice, '__Host-remember_token'), ['/ -'], 'a __Host- cookie can only live at / on this host: only that one is cleared')

  const secure = await buildApp({ login: { remember: { cookieName: '__Secure-remember_token', secure: true, path: '/app', domain: 'example.com' } } })
  t.equal(secure.app.loginManager.options.remember.cookieName, '__Secure-remember_token', '__Secure- with secure: true is accepted')
})

t.test('with remember.domain, the configured cookie is cleared once, with its own Domain', async (t) => {
  const { app, ann, bob } = await setup({ login: { remember: { domain: '.Example.com' } } })
  const response = await app.inject({ url: '/x', headers: { host: 'app.example.com', cookie: `remember_token=${bob}; remember_token=${ann}` } })
  const all = setCookies(response).filter(isClearing)
  const atRoot = all.filter((cookie) => cookie.path === '/' && cookie.domain?.toLowerCase().replace(/^\./, '') === 'example.com')
  t.equal(atRoot.length, 1, 'one clearing cookie for the configured path and domain')
  t.same(cleared(response).filter((entry) => entry.startsWith('/x ')), ['/x -', '/x app.example.com', '/x example.com'])
})

t.test('an absolute-form request target clears at / only', async (t) => {
  const { app, ann, bob } = await setup()
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  const socket = connect(port, '127.0.0.1')
  socket.write(`GET http://app.test/deep/page HTTP/1.1\r\nHost: app.test\r\nCookie: remember_token=${bob}; remember_token=${ann}\r\nConnection: close\r\n\r\n`)
  let raw = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { raw += chunk })
  await new Promise((resolve) => socket.on('close', resolve))
  const lines = raw.split('\r\n').filter((line) => /^set-cookie: remember_token=;/i.test(line))
  t.same(lines.map((line) => `${/Path=([^;]*)/i.exec(line)?.[1] ?? ''} ${/Domain=([^;]*)/i.exec(line)?.[1] ?? '-'}`).sort(), ['/ -', '/ app.test'], 'at / only: no path is read from an absolute URL')
})

t.test('a remember cookie that an earlier hook put in request.cookies, without a Cookie header, is used', async (t) => {
  const { app: signer } = await buildApp()
  const ann = await rememberTokenOf(signer, '1')
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  // A native client sends its token in a header; the app hands it to fastify-login as the cookie.
  app.addHook('onRequest', async (request) => {
    const header = request.headers['x-remember']
    if (typeof header === 'string') request.cookies.remember_token = header
  })
  await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: (id: string) => (id === '1' ? { id: '1', name: 'Ann' } : null) })
  app.get('/', async (request) => ({ name: request.isAuthenticated() ? (request.user as { name: string }).name : null, remembered: request.loginRemembered }))
  t.same((await app.inject({ url: '/', headers: { 'x-remember': ann } })).json(), { name: 'Ann', remembered: true })
})
