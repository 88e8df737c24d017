// The `next` of a redirect to the login view for request targets that are not
// plain paths: a path that begins with `//` (which a URL parser reads as a
// host), a backslash, an absolute-form target, and a Host header that names
// no host. `next` must be the requested path on the app's own origin, the
// round trip through the login view must stay on it, and nothing is a 500.
import t from 'tap'
import { connect, type AddressInfo } from 'node:net'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { buildApp, CookieJar, type BuildOptions } from './helpers.js'

const HOST = 'app.test'

// Reads any session key; @fastify/session types only the keys an app declares.
function sessionValue (request: FastifyRequest, key: string): unknown {
  return (request.session as unknown as { get (key: string): unknown }).get(key) ?? null
}

// Every path requires a login; GET /login answers with the safe next.
async function build (login: BuildOptions['login']): Promise<FastifyInstance> {
  const { app } = await buildApp({ login, routes: false })
  app.get('/login', { config: { login: 'optional' } }, async (request) => ({ next: request.safeNextUrl('(fallback)') }))
  app.get('/peek', { config: { login: 'optional' } }, async (request) => ({ next: sessionValue(request, 'next') }))
  app.get('/*', { config: { login: 'required' } }, async () => 'page')
  return app
}

function nextOf (location: unknown): string | null {
  return new URL(String(location), 'http://base.invalid').searchParams.get('next')
}

// Sends `target` as it is, which app.inject would normalise; resolves with the Location header.
async function rawLocation (app: FastifyInstance, target: string): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const socket = connect(port, '127.0.0.1')
  socket.write(`GET ${target} HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`)
  let response = ''
  socket.setEncoding('latin1')
  socket.on('data', (chunk: string) => { response += chunk })
  await new Promise((resolve) => socket.on('close', resolve))
  const location = /^location: (.*)$/im.exec(response)
  if (location?.[1] === undefined) throw new Error(`no Location in ${response.slice(0, 200)}`)
  return location[1]
}

t.test('a path that begins with // keeps the app as its host', async (t) => {
  t.test('relative login view: next is the absolute URL on the own origin', async (t) => {
    const app = await build({ loginView: '/login' })
    const response = await app.inject({ url: '//evil.test/x?a=1', headers: { host: HOST } })
    t.equal(response.statusCode, 302)
    t.equal(nextOf(response.headers.location), `http://${HOST}//evil.test/x?a=1`)
  })

  t.test('login view on another host: next is the absolute URL on the own origin', async (t) => {
    const app = await build({ loginView: 'https://auth.test/login' })
    const response = await app.inject({ url: '//evil.test/x', headers: { host: HOST } })
    t.equal(response.headers.location, `https://auth.test/login?next=${encodeURIComponent(`http://${HOST}//evil.test/x`)}`)
  })

  t.test('the round trip through the login view comes back to that path on this host', async (t) => {
    const app = await build({ loginView: '/login' })
    const response = await app.inject({ url: '//evil.test/x?a=1', headers: { host: HOST } })
    const back = (await app.inject({ url: String(response.headers.location), headers: { host: HOST } })).json().next
    const target = new URL(back)
    t.equal(target.host, HOST)
    t.equal(target.pathname + target.search, '//evil.test/x?a=1')
  })

  t.test('with useSessionForNext the session holds the same next, and it comes back', async (t) => {
    const app = await build({ loginView: '/login', useSessionForNext: true })
    const jar = new CookieJar(app)
    const response = await jar.inject({ url: '//evil.test/x', headers: { host: HOST } })
    t.equal(response.headers.location, '/login')
    t.same((await jar.inject({ url: '/peek', headers: { host: HOST } })).json(), { next: `http://${HOST}//evil.test/x` })
    t.same((await jar.inject({ url: '/login', headers: { host: HOST } })).json(), { next: `http://${HOST}//evil.test/x` })
  })

  t.test('the origin has the request\'s scheme, and only http or https', async (t) => {
    const { app } = await buildApp({ login: { loginView: 'https://auth.test/login' }, fastify: { trustProxy: true } })
    const next = async (proto: string): Promise<string | null> =>
      nextOf((await app.inject({ url: '/protected', headers: { host: HOST, 'x-forwarded-proto': proto } })).headers.location)
    t.equal(await next('https'), `https://${HOST}/protected`)
    t.equal(await next('http'), `http://${HOST}/protected`)
    t.equal(await next('javascript'), `http://${HOST}/protected`, 'a proxy\'s odd scheme is not copied')
  })

  t.test('a plain path is still a relative next', async (t) => {
    const app = await build({ loginView: '/login' })
    const response = await app.inject({ url: '/a//b?c=1', headers: { host: HOST } })
    t.equal(nextOf(response.headers.location), '/a//b?c=1')
  })
})

t.test('a Host header that names no host', async (t) => {
  const hosts = ['bad host', '[::1', 'app.test/evil', 'user@evil.test']

  t.test('a // path redirects with the path as next, never a 500', async (t) => {
    const app = await build({ loginView: '/login' })
    for (const host of hosts) {
      const response = await app.inject({ url: '//evil.test/x?a=1', headers: { host } })
      t.equal(response.statusCode, 302, `Host ${JSON.stringify(host)}`)
      t.equal(nextOf(response.headers.location), '//evil.test/x?a=1', `Host ${JSON.stringify(host)}`)
    }
  })

  t.test('that next is refused by safeNextUrl: it would lead to another host', async (t) => {
    const app = await build({ loginView: '/login' })
    const response = await app.inject({ url: '//evil.test/x', headers: { host: 'bad host' } })
    t.same((await app.inject({ url: String(response.headers.location), headers: { host: HOST } })).json(), { next: '(fallback)' })
  })

  t.test('with useSessionForNext, a 302 too', async (t) => {
    const app = await build({ loginView: '/login', useSessionForNext: true })
    const jar = new CookieJar(app)
    for (const host of hosts) {
      const response = await jar.inject({ url: '//evil.test/x', headers: { host } })
      t.equal(response.statusCode, 302, `Host ${JSON.stringify(host)}`)
      t.equal(response.headers.location, '/login', `Host ${JSON.stringify(host)}`)
    }
    t.same((await jar.inject({ url: '/peek', headers: { host: HOST } })).json(), { next: '//evil.test/x' })
  })

  t.test('a login view on another host still gets a redirect', async (t) => {
    const app = await build({ loginView: 'https://auth.test/login' })
    const response = await app.inject({ url: '//evil.test/x', headers: { host: 'bad host' } })
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, `https://auth.test/login?next=${encodeURIComponent('//evil.test/x')}`)
  })
})

t.test('targets only a raw client sends', async (t) => {
  t.test('a backslash after the first slash is read as a slash, on this host', async (t) => {
    const app = await build({ loginView: 'https://auth.test/login' })
    t.teardown(() => app.close())
    const location = await rawLocation(app, '/\\evil.test/x')
    t.equal(nextOf(location), `http://${HOST}//evil.test/x`)
  })

  t.test('an absolute-form target counts by its path, as it is routed', async (t) => {
    const app = await build({ loginView: 'https://auth.test/login' })
    t.teardown(() => app.close())
    const location = await rawLocation(app, 'http://evil.test/x?y=1')
    t.equal(nextOf(location), `http://${HOST}/x?y=1`)
  })
})

t.test('loginManager.loginUrl with a next that is not an absolute URL', async (t) => {
  const { app } = await buildApp({ routes: false })
  const { loginUrl } = app.loginManager
  t.equal(loginUrl('/login', '//other.test/x'), `/login?next=${encodeURIComponent('//other.test/x')}`, 'taken as it is, not thrown at')
  t.equal(loginUrl('/login', 'http://localhost//x'), `/login?next=${encodeURIComponent('http://localhost//x')}`, 'a // path stays absolute')
  t.equal(loginUrl('/login', 'http://localhost/x'), '/login?next=%2Fx')
})
