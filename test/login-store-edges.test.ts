// The login store's less common paths: stores that keep expired records,
// races between a restore and a revoke, a remember cookie of another login
// riding along, secret rotation, odd session contents.
import t from 'tap'
import { AssertionError } from 'node:assert'
import { MemoryLoginStore, type LoginRecord } from '../lib/index.js'
import { testLoginStore } from '../lib/testing.js'
import { CookieJar, LOGIN_SECRET } from './helpers.js'
import { buildStoreApp, ControlledStore, useClock } from './store-helpers.js'

const COOKIE = 'remember_token'

t.test('logout also ends the login a remember cookie of the same user names; another user\'s is left alone', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  const remembered = new CookieJar(app)
  await remembered.inject({ method: 'POST', url: '/login/1?remember=1' })
  const annsCookie = remembered.get(COOKIE)!
  const other = new CookieJar(app)
  await other.inject({ method: 'POST', url: '/login/2?remember=1' })
  const bobsCookie = other.get(COOKIE)!

  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  jar.set(COOKIE, annsCookie)
  await jar.inject({ method: 'POST', url: '/logout' })
  t.same(await store.inner.list('1'), [], 'both of Ann\'s logins ended')

  const mixed = new CookieJar(app)
  await mixed.inject({ method: 'POST', url: '/login/1' })
  mixed.set(COOKIE, bobsCookie)
  await mixed.inject({ method: 'POST', url: '/logout' })
  t.equal((await store.inner.list('2')).length, 1, 'Bob\'s login is not Ann\'s to end')
})

t.test('a store that returns an expired record: the login is over, its record deleted, loginRevoked says expired', async (t) => {
  const inner = new MemoryLoginStore()
  const aged = new ControlledStore(inner)
  let age = 0
  Object.defineProperty(aged, 'get', {
    value: async (id: string): Promise<LoginRecord | null> => {
      const found = await inner.get(id)
      return found === null ? null : { ...found, expiresAt: found.expiresAt - age }
    }
  })
  const { app } = await buildStoreApp({ store: aged })
  t.teardown(() => app.close())
  const reasons: string[] = []
  app.loginManager.on('loginRevoked', ({ reason }) => { reasons.push(reason) })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  age = 15 * 24 * 3600 * 1000
  t.equal((await jar.inject('/')).json().authenticated, false)
  t.same(reasons, ['expired'])
  t.same(await inner.list('1'), [])
})

t.test('with refreshEachRequest, the activity write moves a remembered login\'s expiry too', async (t) => {
  const clock = useClock(t)
  const { app, store } = await buildStoreApp({ login: { remember: { refreshEachRequest: true, duration: 3600 } } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const [before] = await store.inner.list('1')
  clock.advance(120_000)
  await jar.inject('/')
  const [after] = await store.inner.list('1')
  const moved = after!.expiresAt - before!.expiresAt
  t.ok(moved >= 120_000 && moved < 121_000, `moved by ${moved} ms`)
  const plain = await buildStoreApp({ login: { remember: { duration: 3600 } } })
  t.teardown(() => plain.app.close())
  const other = new CookieJar(plain.app)
  await other.inject({ method: 'POST', url: '/login/1?remember=1' })
  const [kept] = await plain.store.inner.list('1')
  clock.advance(120_000)
  await other.inject('/')
  t.equal((await plain.store.inner.list('1'))[0]!.expiresAt, kept!.expiresAt, 'without it, the cookie\'s expiry stays')
})

t.test('a cookie in the grace window whose record no key can match is accepted, with no cookie sent', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const cookie = jar.get(COOKIE)!
  await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })
  const loginId = cookie.split('.')[1]!
  t.ok(await store.inner.update(loginId, { rotation: 1 }, { validatorHash: 'not-a-hash-of-any-validator' }))
  const response = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })
  t.equal(response.json().authenticated, true)
  t.notOk(response.cookies.some((item) => item.name === COOKIE), 'no cookie to catch up to')
})

t.test('a record revoked between the read and the rotation: the restore ends anonymous and clears the cookie', async (t) => {
  const inner = new MemoryLoginStore()
  const racing = new ControlledStore(inner)
  Object.defineProperty(racing, 'update', {
    value: async (id: string): Promise<boolean> => {
      await inner.delete(id)
      return false
    }
  })
  const { app } = await buildStoreApp({ store: racing })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  const response = await jar.inject('/')
  t.equal(response.json().authenticated, false)
  t.ok(response.cookies.some((item) => item.name === COOKIE && item.value === ''))
})

t.test('a record rotated twice meanwhile: the restore is theft', async (t) => {
  const inner = new MemoryLoginStore()
  const racing = new ControlledStore(inner)
  Object.defineProperty(racing, 'update', {
    value: async (id: string, expected: { rotation?: number }): Promise<boolean> => {
      const rotation = expected.rotation ?? 0
      await inner.update(id, { rotation }, { rotation: rotation + 2, rotatedAt: Date.now() })
      return false
    }
  })
  const { app } = await buildStoreApp({ store: racing })
  t.teardown(() => app.close())
  const thefts: string[] = []
  app.loginManager.on('rememberTheft', ({ loginId }) => { thefts.push(loginId) })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  t.equal((await jar.inject('/')).json().authenticated, false)
  t.equal(thefts.length, 1)
})

t.test('a store cookie signed under an older secret restores, and the rotated one is signed under the new secret', async (t) => {
  const store = new ControlledStore()
  const before = await buildStoreApp({ store })
  const jar = new CookieJar(before.app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const old = jar.get(COOKIE)!
  await before.app.close()
  const NEW_SECRET = 'a-new-login-secret-of-at-least-32-characters'
  const after = await buildStoreApp({ store, login: { secret: [NEW_SECRET, LOGIN_SECRET] } })
  t.teardown(() => after.app.close())
  const response = await after.app.inject({ url: '/', headers: { cookie: `${COOKIE}=${old}` } })
  t.equal(response.json().user, 'Ann')
  const rotated = response.cookies.find((item) => item.name === COOKIE)!.value
  const onlyNew = await buildStoreApp({ store, login: { secret: NEW_SECRET } })
  t.teardown(() => onlyNew.app.close())
  t.equal((await onlyNew.app.inject({ url: '/', headers: { cookie: `${COOKIE}=${rotated}` } })).json().user, 'Ann', 'the new secret alone verifies it')
  t.equal((await onlyNew.app.inject({ url: '/', headers: { cookie: `${COOKIE}=${old}` } })).json().authenticated, false, 'the old one does not verify under it')
})

t.test('with a store, a session whose user id is not a string is dropped, as without one', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  app.post('/plant', { config: { login: false } }, async (request) => {
    ;(request.session as unknown as { set (key: string, value: unknown): void }).set('_user_id', 1)
    return { ok: true }
  })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/plant' })
  t.equal((await jar.inject('/')).json().authenticated, false)
  t.same((await jar.inject('/session-login')).json(), { userId: null, loginId: null })
  t.equal(store.total, 0)
})

t.test('testLoginStore reports a store that throws something other than an Error', async (t) => {
  const error = await testLoginStore(() => Object.assign(new MemoryLoginStore(), {
    get: async () => { throw 'a string' } // eslint-disable-line no-throw-literal -- a careless store, on purpose
  })).then(() => null, (caught: unknown) => caught)
  t.ok(error instanceof AssertionError)
  t.match((error as Error).message, /a string/)
})
