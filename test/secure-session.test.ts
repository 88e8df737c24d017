import t from 'tap'
import { buildApp, CookieJar, type BuildOptions } from './helpers.js'

const OTHER_AGENT = { 'user-agent': 'a different browser' }

async function setup (options: BuildOptions = {}) {
  const built = await buildApp({ ...options, sessionPlugin: 'secure-session' })
  return { ...built, jar: new CookieJar(built.app) }
}

t.test('login persists across requests in a stateless session', async (t) => {
  const { jar, loaded } = await setup()
  const login = await jar.inject({ method: 'POST', url: '/login/1' })
  t.same(login.json(), { ok: true })
  t.ok(jar.get('session'), 'the secure-session cookie carries the login')
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
  t.same((await jar.inject('/protected')).json(), { user: 'Ann' })
  t.same((await jar.inject('/fresh')).json(), { user: 'Ann' })
  t.same(loaded, ['1', '1', '1'])
})

t.test('a not-fresh login is refused by the fresh guard', async (t) => {
  const { jar } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1?fresh=0' })
  t.equal((await jar.inject('/')).json().fresh, false)
  t.equal((await jar.inject('/protected')).statusCode, 200)
  t.equal((await jar.inject('/fresh')).statusCode, 401)
})

t.test('the remember cookie restores the user after the browser restarts', async (t) => {
  const { jar } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  t.notOk(jar.get('session'), 'the session cookie is gone')
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  jar.delete('remember_token')
  t.equal((await jar.inject('/')).json().user, 'Ann', 'the restored login is in the session')
})

t.test('logout ends the login and clears the remember cookie', async (t) => {
  const { jar } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  t.same((await jar.inject({ method: 'POST', url: '/logout' })).json(), { ok: true })
  t.notOk(jar.get('remember_token'))
  t.equal((await jar.inject('/')).json().authenticated, false)
  t.equal((await jar.inject('/protected')).statusCode, 401)
})

t.test('strong protection logs a session out when the client changes', async (t) => {
  const { jar, app } = await setup({ login: { sessionProtection: 'strong' } })
  let fired = 0
  app.loginManager.on('sessionProtected', () => { fired++ })
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const response = await jar.inject({ url: '/', headers: OTHER_AGENT })
  t.equal(response.json().authenticated, false)
  t.equal(fired, 1)
  t.notOk(jar.get('remember_token'), 'the remember cookie is cleared')
  t.equal((await jar.inject('/')).json().authenticated, false, 'the login is gone from the session')
})

t.test('basic protection marks the session stale when the client changes', async (t) => {
  const { jar } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.same((await jar.inject({ url: '/', headers: OTHER_AGENT })).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false })
  t.equal((await jar.inject('/')).json().fresh, false)
})

t.test('confirmLogin makes a restored login fresh again', async (t) => {
  const { jar } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  t.equal((await jar.inject('/fresh')).statusCode, 401)
  t.same((await jar.inject({ method: 'POST', url: '/confirm' })).json(), { fresh: true })
  t.equal((await jar.inject('/')).json().fresh, true)
  t.same((await jar.inject('/fresh')).json(), { user: 'Ann' })
})

t.test('a request without credentials creates no secure session', async (t) => {
  const { app, loaded } = await setup()
  const response = await app.inject('/')
  t.equal(response.headers['set-cookie'], undefined)
  t.same(loaded, [])
})
