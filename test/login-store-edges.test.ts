// The login store's less common paths: stores that keep expired records,
// races between a restore and a revoke, a remember cookie of another login
// riding along, secret rotation, odd session contents.
import t from 'tap'
import { AssertionError } from 'node:assert'
import { MemoryLoginStore, type LoginRecord } from '../lib/index.js'
import { testLoginStore } from '../lib/testing.js'
import { buildApp, CookieJar, LOGIN_SECRET, makeUsers } from './helpers.js'
import { buildStoreApp, ControlledStore, sessionStoreOutliving, useClock } from './store-helpers.js'

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

t.test('a route outside the session cookie\'s path: a store cookie is accepted without a rotation, and logout there ends the login', async (t) => {
  const { app, store } = await buildStoreApp({ session: { cookie: { secure: false, path: '/app' } } })
  t.teardown(() => app.close())
  app.post('/app/login', { config: { login: 'optional' } }, async (request) => ({ ok: await request.loginUser({ id: '1', name: 'Ann' }, { remember: true }) }))
  app.get('/app/me', { config: { login: 'optional' } }, async (request) => ({ authenticated: request.isAuthenticated() }))
  app.get('/other/me', { config: { login: 'optional' } }, async (request) => ({ authenticated: request.isAuthenticated(), loginId: request.loginId }))
  app.post('/other/logout', { config: { login: 'optional' } }, async (request) => ({ ok: await request.logoutUser() }))
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/app/login' })
  const cookie = jar.get(COOKIE)!
  store.reset()
  const outside = await app.inject({ url: '/other/me', headers: { cookie: `${COOKIE}=${cookie}` } })
  t.match(outside.json(), { authenticated: true, loginId: cookie.split('.')[1] })
  t.notOk(outside.cookies.some((item) => item.name === COOKIE), 'no new cookie')
  t.equal(store.calls.update, 0, 'no rotation written')
  await app.inject({ method: 'POST', url: '/other/logout', headers: { cookie: `${COOKIE}=${cookie}` } })
  t.same(await store.inner.list('1'), [], 'the login ended')
  t.equal((await jar.inject('/app/me')).json().authenticated, false, 'its session too')
})

t.test('a cookie from before the store on a route without a session restores, and keeps no record', async (t) => {
  const before = await buildApp({ session: { cookie: { secure: false, path: '/app' } } })
  before.app.post('/app/login', { config: { login: 'optional' } }, async (request) => ({ ok: await request.loginUser({ id: '1' }, { remember: true }) }))
  const login = await before.app.inject({ method: 'POST', url: '/app/login' })
  const v1 = login.cookies.find((item) => item.name === COOKIE)!.value
  await before.app.close()
  const { app, store } = await buildStoreApp({ session: { cookie: { secure: false, path: '/app' } } })
  t.teardown(() => app.close())
  app.get('/other/me', { config: { login: 'optional' } }, async (request) => ({ authenticated: request.isAuthenticated() }))
  t.same((await app.inject({ url: '/other/me', headers: { cookie: `${COOKIE}=${v1}` } })).json(), { authenticated: true })
  t.equal(store.calls.create, 0)
})

t.test('logout on a route that loads no user still ends the session\'s login', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  app.post('/quiet-logout', { config: { login: false } }, async (request) => ({ ok: await request.logoutUser() }))
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  const copy = jar.clone()
  await jar.inject({ method: 'POST', url: '/quiet-logout' })
  t.same(await store.inner.list('1'), [])
  t.equal((await copy.inject('/')).json().authenticated, false)
})

t.test('refreshEachRequest re-issues only the cookie of the request\'s own remembered login', async (t) => {
  const { app } = await buildStoreApp({ login: { remember: { refreshEachRequest: true } } })
  t.teardown(() => app.close())
  const remembered = new CookieJar(app)
  await remembered.inject({ method: 'POST', url: '/login/1?remember=1' })
  const cookie = remembered.get(COOKIE)!
  const plain = new CookieJar(app)
  await plain.inject({ method: 'POST', url: '/login/1' })
  plain.set(COOKIE, cookie)
  const other = await plain.inject('/')
  t.equal(other.json().user, 'Ann')
  t.notOk(other.cookies.some((item) => item.name === COOKIE), 'the cookie of another login: not re-issued')
  // An app that loads users by request only never restores a remember cookie, nor re-issues one.
  const byRequest = await buildStoreApp({
    store: new ControlledStore(),
    login: {
      userLoader: undefined,
      remember: { refreshEachRequest: true },
      requestLoader: (request) => request.headers['x-api-key'] === 'key-of-ann' ? { id: '1', name: 'Ann' } : null
    }
  })
  t.teardown(() => byRequest.app.close())
  const byKey = await byRequest.app.inject({ url: '/', headers: { 'x-api-key': 'key-of-ann', cookie: `${COOKIE}=${cookie}` } })
  t.equal(byKey.json().user, 'Ann')
  t.notOk(byKey.cookies.some((item) => item.name === COOKIE), 'a user from the request loader: the cookie is left alone')
})

t.test('a long User-Agent is cut to 512 characters in the record', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  await app.inject({ method: 'POST', url: '/login/1', headers: { 'user-agent': 'A'.repeat(2000) } })
  const [record] = await store.inner.list('1')
  t.equal(record!.userAgent, 'A'.repeat(512))
})

t.test('logins made in the same millisecond are listed in a stable order', async (t) => {
  const store = new MemoryLoginStore()
  const { app } = await buildStoreApp({ store: new ControlledStore(store) })
  t.teardown(() => app.close())
  const now = Date.now()
  const ids = ['BBBBBBBBBBBBBBBBBBBBBBBB', 'AAAAAAAAAAAAAAAAAAAAAAAA', 'CCCCCCCCCCCCCCCCCCCCCCCC']
  for (const id of ids) {
    await store.create({ id, userId: '1', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000, ip: '', userAgent: '', remembered: false, rememberSeconds: 0, rotation: 0, rotatedAt: 0, validatorHash: '', versionTag: '' })
  }
  t.same((await app.loginManager.listLogins('1')).map((login) => login.id), [...ids].sort())
})

t.test('with a store, a userLoader that fails fails the request, and a requestLoader still works', async (t) => {
  let failing = false
  const { app, store } = await buildStoreApp({
    login: {
      userLoader: async (id: string) => {
        if (failing) throw new Error('database down')
        return id === '1' ? { id: '1', name: 'Ann' } : null
      },
      requestLoader: (request) => request.headers['x-api-key'] === 'key-of-bob' ? { id: '2', name: 'Bob' } : null
    }
  })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  failing = true
  t.equal((await jar.inject('/')).statusCode, 500)
  failing = false
  store.reset()
  t.equal((await app.inject({ url: '/', headers: { 'x-api-key': 'key-of-bob' } })).json().user, 'Bob')
  t.equal(store.total, 0, 'a requestLoader\'s user costs no store call')
})

t.test('logins from before the store: with a remember cookie of the same user the record is remembered, of another user not', async (t) => {
  const sessionStore = sessionStoreOutliving()
  const before = await buildApp({ session: { store: sessionStore } })
  const ann = new CookieJar(before.app)
  await ann.inject({ method: 'POST', url: '/login/1?remember=1' })
  const bob = new CookieJar(before.app)
  await bob.inject({ method: 'POST', url: '/login/2?remember=1' })
  await before.app.close()
  const { app, store } = await buildStoreApp({ session: { store: sessionStore } })
  t.teardown(() => app.close())
  const moved = (jar: CookieJar): CookieJar => {
    const copy = new CookieJar(app)
    for (const [name, cookie] of jar.cookies) copy.cookies.set(name, { ...cookie })
    return copy
  }
  const annAfter = moved(ann)
  t.equal((await annAfter.inject('/')).json().user, 'Ann')
  t.equal((await store.inner.list('1'))[0]!.remembered, true)
  t.match(annAfter.get(COOKIE), /^v2\./, 'and given a store cookie')
  const mixed = moved(ann)
  mixed.set(COOKIE, bob.get(COOKIE)!)
  await store.inner.delete((await store.inner.list('1'))[0]!.id)
  const sessionOnly = await buildApp({ session: { store: sessionStore } })
  const fresh = new CookieJar(sessionOnly.app)
  await fresh.inject({ method: 'POST', url: '/login/1' })
  await sessionOnly.app.close()
  const annWithBobsCookie = moved(fresh)
  annWithBobsCookie.set(COOKIE, bob.get(COOKIE)!)
  t.equal((await annWithBobsCookie.inject('/')).json().user, 'Ann')
  t.equal((await store.inner.list('1'))[0]!.remembered, false, 'another user\'s cookie makes no remembered login of Ann\'s')
})

t.test('a store-cookie restore with regenerateSession false keeps the session id and drops old login keys', async (t) => {
  const { app } = await buildStoreApp({ login: { regenerateSession: false } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  await jar.inject('/devices')
  const session = jar.get('sessionId')
  t.equal((await jar.inject('/')).json().user, 'Ann')
  jar.restartBrowser()
  const restored = await jar.inject('/')
  t.equal(restored.json().user, 'Ann')
  t.not(session, undefined)
})

t.test('a restore whose user is gone ends the login', async (t) => {
  const users = makeUsers()
  const { app, store } = await buildStoreApp({ users })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/2?remember=1' })
  jar.restartBrowser()
  users.delete('2')
  t.equal((await jar.inject('/')).json().authenticated, false)
  t.same(await store.inner.list('2'), [])
})
