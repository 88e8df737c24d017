// `loginDisabled` (SPEC section 13, Flask-Login's LOGIN_DISABLED): every guard
// lets every request through, users are still loaded, and Fastify's log gets
// one warning at register.
import t, { type Test } from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin from '../lib/index.js'
import { buildApp, CookieJar, LOGIN_SECRET, SESSION_SECRET, type BuildOptions } from './helpers.js'

interface LogLine {
  level: number
  msg: string
}

/** Builds the standard app with a logger whose lines are collected in `logs`. */
async function build (t: Test, options: BuildOptions = {}): Promise<{ app: FastifyInstance, jar: CookieJar, logs: LogLine[], loaded: string[] }> {
  const logs: LogLine[] = []
  const stream = { write: (line: string) => { logs.push(JSON.parse(line) as LogLine) } }
  const { app, loaded } = await buildApp({ ...options, fastify: { logger: { level: 'info', stream } } })
  t.teardown(() => app.close())
  app.get('/required', { config: { login: 'required' } }, async (request) => ({ authenticated: request.isAuthenticated() }))
  app.get('/fresh-config', { config: { login: 'fresh' } }, async (request) => ({ authenticated: request.isAuthenticated() }))
  app.get('/by-hand', { config: { login: 'optional' } }, async (request, reply) => {
    await app.requireLogin(request, reply)
    await app.requireFreshLogin(request, reply)
    return { passed: true }
  })
  return { app, jar: new CookieJar(app), logs, loaded }
}

const warnings = (logs: LogLine[]): LogLine[] => logs.filter((line) => line.level === 40)

t.test('every guard form lets an anonymous request through', async (t) => {
  const { jar } = await build(t, { login: { loginDisabled: true, loginView: '/login' } })
  const page = await jar.inject('/protected')
  t.equal(page.statusCode, 200, 'app.requireLogin runs the handler')
  t.same(page.json(), {}, 'for the anonymous user, who has no name')
  for (const url of ['/fresh', '/required', '/fresh-config']) {
    const response = await jar.inject(url)
    t.equal(response.statusCode, 200, url)
  }
  t.same((await jar.inject('/required')).json(), { authenticated: false }, 'the request stays anonymous')
  t.same((await jar.inject('/by-hand')).json(), { passed: true }, 'guards called by hand resolve')
})

t.test('a stale login passes requireFreshLogin and config.login fresh', async (t) => {
  const { jar } = await build(t, { login: { loginDisabled: true } })
  await jar.inject({ method: 'POST', url: '/login/1?fresh=0' })
  t.same((await jar.inject('/fresh')).json(), { user: 'Ann' })
  t.same((await jar.inject('/fresh-config')).json(), { authenticated: true })
})

t.test('users are still loaded', async (t) => {
  const { jar, loaded } = await build(t, { login: { loginDisabled: true } })
  await jar.inject({ method: 'POST', url: '/login/2' })
  t.same((await jar.inject('/protected')).json(), { user: 'Bob' })
  t.same(loaded, ['2'])
})

t.test('a guarded reply is still kept out of shared caches', async (t) => {
  const { jar } = await build(t, { login: { loginDisabled: true } })
  t.equal((await jar.inject('/protected')).headers['cache-control'], 'private, no-store')
})

t.test('loginRequiredByDefault lets every request through', async (t) => {
  const { app, jar } = await build(t, { login: { loginDisabled: true, loginRequiredByDefault: true } })
  app.get('/default', async () => 'default')
  t.equal((await jar.inject('/default')).body, 'default')
})

t.test('routes added before the plugin has loaded let every request through', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  app.register(fastifyCookie)
  app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => null, loginDisabled: true, loginRequiredByDefault: true })
  app.get('/required', { config: { login: 'required' } }, async () => 'required')
  app.get('/fresh', { config: { login: 'fresh' } }, async () => 'fresh')
  app.get('/default', async () => 'default')
  for (const url of ['/required', '/fresh', '/default']) t.equal((await app.inject(url)).body, url.slice(1))
})

t.test('logs exactly one warning at register', async (t) => {
  const { app, logs } = await build(t, { login: { loginDisabled: true } })
  await app.ready()
  await app.inject('/protected')
  const warned = warnings(logs)
  t.equal(warned.length, 1)
  t.match(warned[0]?.msg, /loginDisabled/)
})

t.test('is off by default: no warning, and the guards guard', async (t) => {
  const { app, jar, logs } = await build(t)
  await app.ready()
  t.equal(app.loginManager.options.loginDisabled, false)
  t.equal((await jar.inject('/protected')).statusCode, 401)
  t.equal((await jar.inject('/required')).statusCode, 401)
  t.same(warnings(logs), [])
})

t.test('shows in loginManager.options, and only a boolean is accepted', async (t) => {
  const { app } = await build(t, { login: { loginDisabled: true } })
  t.equal(app.loginManager.options.loginDisabled, true)
  await t.rejects(buildApp({ login: { loginDisabled: 'yes' as unknown as boolean } }), { code: 'FST_LOGIN_INVALID_OPTION', message: /`loginDisabled`/ })
})
