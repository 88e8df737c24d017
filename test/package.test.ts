// The built package, imported the way a consumer does: by its name, from ESM
// and from CommonJS, in separate Node processes (package self-reference).
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))

if (!existsSync(new URL('../dist/esm/lib/index.js', import.meta.url)) || !existsSync(new URL('../dist/cjs/main.js', import.meta.url))) {
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'ignore' })
}

function run (code: string, type: 'module' | 'commonjs'): unknown {
  const args = type === 'module' ? ['--input-type=module', '-e', code] : ['-e', code]
  const output = execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' })
  return JSON.parse(output)
}

// A small app that logs user 1 in through a route, then asks who it is.
const APP_SCRIPT = `
async function tryLogin (Fastify, fastifyCookie, fastifySession, fastifyLogin, loginAs) {
  const users = new Map([['1', { id: '1', name: 'Ann' }]])
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: 'session-secret-of-at-least-32-characters!', cookie: { secure: false }, saveUninitialized: false })
  await app.register(fastifyLogin, { secret: 'login-secret-of-at-least-32-characters!!', userLoader: (id) => users.get(id) ?? null })
  app.post('/login', async (request) => ({ ok: await request.loginUser(users.get('1'), { remember: true }) }))
  app.get('/me', async (request) => ({ user: request.isAuthenticated() ? request.user.name : null, fresh: request.loginFresh }))
  const login = await app.inject({ method: 'POST', url: '/login' })
  const cookie = login.cookies.map((item) => item.name + '=' + item.value).join('; ')
  const me = await app.inject({ url: '/me', headers: { cookie } })
  const anonymous = await app.inject({ url: '/me' })
  const testCookie = await loginAs(app, users.get('1'), { fresh: false })
  const asTest = await app.inject({ url: '/me', headers: { cookie: testCookie } })
  await app.close()
  return { login: login.json(), cookies: login.cookies.map((item) => item.name).sort(), me: me.json(), anonymous: anonymous.json(), asTest: asTest.json() }
}
`

const EXPECTED_APP = {
  login: { ok: true },
  cookies: ['remember_token', 'sessionId'],
  me: { user: 'Ann', fresh: true },
  anonymous: { user: null, fresh: false },
  asTest: { user: 'Ann', fresh: false }
}

t.test('ESM: default and named imports are the plugin, with the helpers beside it', async (t) => {
  const result = run(`
    import fastifyLogin, { fastifyLogin as named, UserMixin, isSafeRedirectUrl, SESSION_KEYS } from 'fastify-login'
    import { loginAs } from 'fastify-login/testing'
    class User extends UserMixin { constructor (id) { super(); this.id = id } }
    console.log(JSON.stringify({
      plugin: typeof fastifyLogin,
      same: fastifyLogin === named,
      pluginName: fastifyLogin[Symbol.for('plugin-meta')]?.name,
      userId: new User(7).getId(),
      safe: isSafeRedirectUrl('/next', ['example.com']),
      unsafe: isSafeRedirectUrl('https://evil.test/', ['example.com']),
      hasUserIdKey: SESSION_KEYS.includes('_user_id'),
      loginAs: typeof loginAs
    }))
  `, 'module')
  t.same(result, {
    plugin: 'function',
    same: true,
    pluginName: 'fastify-login',
    userId: '7',
    safe: true,
    unsafe: false,
    hasUserIdKey: true,
    loginAs: 'function'
  })
})

t.test('CommonJS: require gives the plugin itself with .default, .fastifyLogin and every named export', async (t) => {
  const result = run(`
    const fastifyLogin = require('fastify-login')
    const testing = require('fastify-login/testing')
    import('fastify-login').then((esm) => {
      const names = Object.keys(esm).filter((name) => name !== 'default')
      console.log(JSON.stringify({
        plugin: typeof fastifyLogin,
        pluginName: fastifyLogin[Symbol.for('plugin-meta')]?.name,
        defaultIsPlugin: fastifyLogin.default === fastifyLogin,
        namedIsPlugin: fastifyLogin.fastifyLogin === fastifyLogin,
        names,
        missing: names.filter((name) => !(name in fastifyLogin)),
        differentType: names.filter((name) => typeof fastifyLogin[name] !== typeof esm[name]),
        differentValue: names.filter((name) => typeof esm[name] !== 'function' &&
          JSON.stringify(fastifyLogin[name]) !== JSON.stringify(esm[name])),
        loginAs: typeof testing.loginAs
      }))
    })
  `, 'commonjs') as { names: string[] }
  t.match(result, {
    plugin: 'function',
    pluginName: 'fastify-login',
    defaultIsPlugin: true,
    namedIsPlugin: true,
    missing: [],
    differentType: [],
    differentValue: [],
    loginAs: 'function'
  })
  for (const name of ['fastifyLogin', 'UserMixin', 'AnonymousUserMixin', 'isSafeRedirectUrl', 'SESSION_KEYS', 'FST_LOGIN_UNAUTHORIZED']) {
    t.ok(result.names.includes(name), `${name} is a named export`)
  }
})

t.test('CommonJS: the required plugin logs a user in in a real app', async (t) => {
  const result = run(`
    ${APP_SCRIPT}
    tryLogin(require('fastify'), require('@fastify/cookie'), require('@fastify/session'), require('fastify-login'), require('fastify-login/testing').loginAs)
      .then((result) => console.log(JSON.stringify(result)))
  `, 'commonjs')
  t.same(result, EXPECTED_APP)
})

t.test('ESM: the imported plugin logs a user in in a real app', async (t) => {
  const result = run(`
    import Fastify from 'fastify'
    import fastifyCookie from '@fastify/cookie'
    import fastifySession from '@fastify/session'
    import fastifyLogin from 'fastify-login'
    import { loginAs } from 'fastify-login/testing'
    ${APP_SCRIPT}
    console.log(JSON.stringify(await tryLogin(Fastify, fastifyCookie, fastifySession, fastifyLogin, loginAs)))
  `, 'module')
  t.same(result, EXPECTED_APP)
})

t.test('the ESM loginAs works with the CommonJS plugin', async (t) => {
  const result = run(`
    import { createRequire } from 'node:module'
    import { loginAs } from 'fastify-login/testing'
    const require = createRequire(process.cwd() + '/')
    ${APP_SCRIPT}
    console.log(JSON.stringify(await tryLogin(require('fastify'), require('@fastify/cookie'), require('@fastify/session'), require('fastify-login'), loginAs)))
  `, 'module')
  t.same(result, EXPECTED_APP)
})
