// A login store that fails (Redis down): the request fails with a 503
// FST_LOGIN_STORE_FAILED; nobody is logged out by it, no revoked login is let
// through, and the store's own error text never reaches the client.
import t, { type Test } from 'tap'
import { CookieJar } from './helpers.js'
import { buildStoreApp, type StoreMethod } from './store-helpers.js'

function assertUnavailable (t: Test, response: { statusCode: number, body: string, json: () => { code?: string } }, what: string): void {
  t.equal(response.statusCode, 503, `${what}: 503`)
  t.equal(response.json().code, 'FST_LOGIN_STORE_FAILED', `${what}: the code`)
  t.notMatch(response.body, /secret detail/, `${what}: the store's error text stays out of the response`)
}

for (const mode of ['failing', 'throwing'] as const) {
  t.test(`a store whose methods are ${mode}`, async (t) => {
    t.test('a session login fails with 503 while the store is down, and holds again once it is back', async (t) => {
      const { app, store } = await buildStoreApp()
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1' })
      store[mode].add('get')
      assertUnavailable(t, await jar.inject('/'), 'a page')
      assertUnavailable(t, await jar.inject({ url: '/protected', headers: { accept: 'application/json' } }), 'a guarded page')
      store[mode].clear()
      t.equal((await jar.inject('/')).json().user, 'Ann', 'still logged in')
    })

    t.test('a revoked login is never let through while the store is down', async (t) => {
      // A stateless session: its copy still holds the login's keys after the logout.
      const { app, store } = await buildStoreApp({ sessionPlugin: 'secure-session' })
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1' })
      const stolen = jar.clone()
      await jar.inject({ method: 'POST', url: '/logout' })
      store[mode].add('get')
      const response = await stolen.inject({ url: '/protected', headers: { accept: 'application/json' } })
      t.equal(response.statusCode, 503)
      store[mode].clear()
      t.equal((await stolen.inject('/')).json().authenticated, false)
    })

    t.test('a remember-cookie restore fails with 503 and keeps the cookie', async (t) => {
      const { app, store } = await buildStoreApp()
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      jar.restartBrowser()
      const cookie = jar.get('remember_token')
      store[mode].add('get')
      const response = await jar.inject('/')
      assertUnavailable(t, response, 'the restore')
      t.equal(jar.get('remember_token'), cookie, 'the cookie is neither cleared nor rotated')
      store[mode].clear()
      store[mode].add('update')
      assertUnavailable(t, await jar.inject('/'), 'the rotation')
      store[mode].clear()
      t.equal((await jar.inject('/')).json().user, 'Ann', 'it restores once the store is back')
    })

    const failures: Array<[string, StoreMethod, string, string]> = [
      ['loginUser: no login, nothing written', 'create', 'POST', '/login/2'],
      ['logoutUser: still logged in, the record stays', 'delete', 'POST', '/logout'],
      ['listLogins', 'list', 'GET', '/devices'],
      ['revokeOtherLogins', 'list', 'POST', '/revoke-others']
    ]
    for (const [name, method, verb, url] of failures) {
      t.test(`${name}: 503 when the store fails`, async (t) => {
        const { app, store } = await buildStoreApp()
        t.teardown(() => app.close())
        const jar = new CookieJar(app)
        await jar.inject({ method: 'POST', url: '/login/1' })
        const before = (await jar.inject('/session-login')).json()
        store[mode].add(method)
        assertUnavailable(t, await jar.inject({ method: verb as 'GET' | 'POST', url }), name)
        store[mode].clear()
        t.same((await jar.inject('/session-login')).json(), before, 'the session is as it was')
        t.equal((await jar.inject('/')).json().user, 'Ann')
      })
    }

    t.test('the activity write failing fails the request too, and it is tried again later', async (t) => {
      const real = Date.now
      t.teardown(() => { Date.now = real })
      const { app, store } = await buildStoreApp()
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1' })
      Date.now = () => real() + 120_000
      store[mode].add('update')
      assertUnavailable(t, await jar.inject('/'), 'the write')
      store[mode].clear()
      store.reset()
      t.equal((await jar.inject('/')).json().user, 'Ann')
      t.equal(store.calls.update, 1, 'written now')
    })
  })
}

t.test('a store whose createId returns a bad id fails loginUser with FST_LOGIN_STORE_FAILED', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  Object.defineProperty(store, 'createId', { value: () => 'short' })
  const response = await app.inject({ method: 'POST', url: '/login/1' })
  t.equal(response.statusCode, 503)
  t.equal(response.json().code, 'FST_LOGIN_STORE_FAILED')
  Object.defineProperty(store, 'createId', { value: () => { throw new Error('store secret detail') } })
  const thrown = await app.inject({ method: 'POST', url: '/login/1' })
  t.equal(thrown.statusCode, 503)
  t.notMatch(thrown.body, /secret detail/)
})

t.test('the store error is the cause of FST_LOGIN_STORE_FAILED, for the application\'s logs', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  let seen: unknown
  app.setErrorHandler(async (error, _request, reply) => {
    seen = error
    return reply.code(503).send({ ok: false })
  })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  store.failing.add('get')
  await jar.inject('/')
  t.match(seen, { code: 'FST_LOGIN_STORE_FAILED', statusCode: 503, cause: { message: 'store secret detail: get is down' } })
})
