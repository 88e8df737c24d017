// The login store (SPEC section 11): every login is a record; the store is
// the authority. Listing and revoking devices, logout that ends copies of the
// cookies, requests in flight, migration, and the decorators without a store.
import t from 'tap'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin, { MemoryLoginStore, type LoginInfo, type LoginRevokedEvent } from '../lib/index.js'
import { buildApp, CookieJar, LOGIN_SECRET, SESSION_SECRET, makeUsers, User } from './helpers.js'
import { addDeviceRoutes, buildStoreApp, sessionStoreOutliving, useClock } from './store-helpers.js'

const PLUGINS = ['session', 'secure-session'] as const

interface Devices {
  loginId: string | null
  logins: Array<Omit<LoginInfo, 'createdAt' | 'lastSeenAt' | 'expiresAt'> & { createdAt: string, lastSeenAt: string, expiresAt: string }>
}

async function devices (jar: CookieJar): Promise<Devices> {
  return (await jar.inject('/devices')).json()
}

async function whoAmI (jar: CookieJar): Promise<string | null> {
  return (await jar.inject('/')).json().user
}

for (const sessionPlugin of PLUGINS) {
  t.test(`with ${sessionPlugin}`, async (t) => {
    t.test('loginUser makes a record; the session holds its id; listLogins shows it as current', async (t) => {
      const { app, store } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      const before = Date.now()
      await jar.inject({ method: 'POST', url: '/login/1', headers: { 'user-agent': 'Browser/1' } })
      const session = (await jar.inject('/session-login')).json()
      t.equal(session.userId, '1')
      t.match(session.loginId, /^[A-Za-z0-9_-]{24}$/, 'a random id of 144 bits')
      const listed = await devices(jar)
      t.equal(listed.loginId, session.loginId, 'request.loginId')
      t.equal(listed.logins.length, 1)
      const [login] = listed.logins
      t.equal(login!.id, session.loginId)
      t.equal(login!.current, true)
      t.equal(login!.ip, '127.0.0.1')
      t.equal(login!.userAgent, 'Browser/1', 'the User-Agent of the login (no minute has passed)')
      t.equal(login!.remembered, false)
      t.ok(Date.parse(login!.createdAt) >= before && Date.parse(login!.createdAt) <= Date.now())
      const fourteenDays = 14 * 24 * 3600 * 1000
      t.ok(Math.abs(Date.parse(login!.expiresAt) - (Date.parse(login!.lastSeenAt) + fourteenDays)) < 1000, 'not remembered: 14 days without a request')
      t.equal(store.calls.create, 1)
    })

    t.test('a remembered login expires with its cookie', async (t) => {
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1?remember=1&duration=3600' })
      const [login] = (await devices(jar)).logins
      t.equal(login!.remembered, true)
      t.ok(Math.abs(Date.parse(login!.expiresAt) - (Date.now() + 3600_000)) < 2000)
    })

    t.test('each request with a session login reads its record once, and writes nothing within a minute', async (t) => {
      const { app, store, loaded } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1' })
      store.reset()
      loaded.length = 0
      for (let index = 0; index < 30; index++) t.equal(await whoAmI(jar), 'Ann')
      t.same(store.calls, { create: 0, get: 30, update: 0, delete: 0, list: 0 })
      t.equal(loaded.length, 30, 'one userLoader call each')
    })

    t.test('anonymous requests cost no store call', async (t) => {
      const { app, store } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      for (let index = 0; index < 5; index++) await jar.inject('/')
      await jar.inject({ url: '/protected', headers: { accept: 'application/json' } })
      t.equal(store.total, 0)
    })

    t.test('lastSeenAt, ip and userAgent are written back at most once a minute', async (t) => {
      const clock = useClock(t)
      const { app, store } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1', headers: { 'user-agent': 'Browser/1' } })
      const created = (await devices(jar)).logins[0]!
      clock.advance(59_000)
      store.reset()
      await jar.inject({ url: '/', headers: { 'user-agent': 'Browser/2' } })
      t.equal(store.calls.update, 0, 'not yet a minute')
      clock.advance(2000)
      for (let index = 0; index < 10; index++) await jar.inject({ url: '/', headers: { 'user-agent': 'Browser/2', 'x-forwarded-for': '203.0.113.7' } })
      t.equal(store.calls.update, 1, 'one write for ten requests after the minute')
      const seen = (await devices(jar)).logins[0]!
      t.equal(seen.userAgent, 'Browser/2')
      t.ok(Date.parse(seen.lastSeenAt) >= Date.parse(created.lastSeenAt) + 60_000)
      t.ok(Date.parse(seen.expiresAt) >= Date.parse(created.expiresAt) + 60_000, 'a login that is not remembered lives on while used')
      t.equal(seen.createdAt, created.createdAt)
    })

    t.test('two devices: each lists both, newest first, marking itself', async (t) => {
      const clock = useClock(t)
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const phone = new CookieJar(app)
      const laptop = new CookieJar(app)
      await phone.inject({ method: 'POST', url: '/login/1', headers: { 'user-agent': 'Phone/1' } })
      clock.advance(1000)
      await laptop.inject({ method: 'POST', url: '/login/1?remember=1', headers: { 'user-agent': 'Laptop/1' } })
      const fromPhone = await devices(phone)
      t.same(fromPhone.logins.map((login) => [login.userAgent, login.current, login.remembered]), [['Laptop/1', false, true], ['Phone/1', true, false]])
      const fromLaptop = await devices(laptop)
      t.same(fromLaptop.logins.map((login) => [login.userAgent, login.current]), [['Laptop/1', true], ['Phone/1', false]])
      const other = new CookieJar(app)
      await other.inject({ method: 'POST', url: '/login/2' })
      t.equal((await devices(other)).logins.length, 1, 'another user sees only their own')
    })

    t.test('revokeLogin ends another device at its next request; loginRevoked says so', async (t) => {
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const heard: LoginRevokedEvent[] = []
      app.loginManager.on('loginRevoked', (event) => { heard.push(event) })
      const phone = new CookieJar(app)
      const laptop = new CookieJar(app)
      await phone.inject({ method: 'POST', url: '/login/1' })
      await laptop.inject({ method: 'POST', url: '/login/1?remember=1' })
      const laptopId = (await devices(laptop)).loginId!
      const answer = await phone.inject({ method: 'POST', url: `/revoke/${laptopId}` })
      t.same(answer.json(), { revoked: true, authenticated: true }, 'the phone stays logged in')
      t.equal(heard.length, 1)
      t.same({ ...heard[0], request: heard[0]!.request !== undefined }, { request: true, userId: '1', loginId: laptopId, reason: 'revoked' })
      const response = await laptop.inject('/')
      t.equal(response.json().authenticated, false, 'the laptop is anonymous')
      t.same((await laptop.inject('/session-login')).json(), { userId: null, loginId: null }, 'its login keys left the session')
      laptop.restartBrowser()
      t.equal(await whoAmI(laptop), null, 'and its remember cookie restores nothing')
      t.equal(laptop.get('remember_token'), undefined, 'it was cleared')
      t.equal(await whoAmI(phone), 'Ann')
      t.same((await devices(phone)).logins.map((login) => login.current), [true])
    })

    t.test('revokeLogin of an unknown id or of another user\'s login answers false and revokes nothing', async (t) => {
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const ann = new CookieJar(app)
      const bob = new CookieJar(app)
      await ann.inject({ method: 'POST', url: '/login/1' })
      await bob.inject({ method: 'POST', url: '/login/2' })
      const bobsId = (await devices(bob)).loginId!
      t.same((await ann.inject({ method: 'POST', url: `/revoke/${bobsId}` })).json(), { revoked: false, authenticated: true })
      t.same((await ann.inject({ method: 'POST', url: '/revoke/AAAAAAAAAAAAAAAAAAAAAAAA' })).json(), { revoked: false, authenticated: true })
      t.same((await ann.inject({ method: 'POST', url: '/revoke/not%20an%20id' })).json(), { revoked: false, authenticated: true })
      t.equal(await whoAmI(bob), 'Bob')
    })

    t.test('revokeLogin of the current login logs this request out, as logoutUser does', async (t) => {
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const loggedOut: string[] = []
      app.loginManager.on('userLoggedOut', () => { loggedOut.push('out') })
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      const id = (await devices(jar)).loginId!
      const copy = jar.clone()
      const response = await jar.inject({ method: 'POST', url: `/revoke/${id}` })
      t.same(response.json(), { revoked: true, authenticated: false })
      t.ok(response.cookies.some((cookie) => cookie.name === 'remember_token' && cookie.value === ''), 'the remember cookie is cleared')
      t.same(loggedOut, ['out'])
      t.equal(await whoAmI(jar), null)
      t.equal(await whoAmI(copy), null, 'a copy of the cookies is anonymous too')
      t.same((await devices(jar)).logins, [])
    })

    t.test('revokeOtherLogins ends every other device and keeps this one', async (t) => {
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const jars = [new CookieJar(app), new CookieJar(app), new CookieJar(app)]
      for (const jar of jars) await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      const bob = new CookieJar(app)
      await bob.inject({ method: 'POST', url: '/login/2' })
      t.same((await jars[0]!.inject({ method: 'POST', url: '/revoke-others' })).json(), { revoked: 2 })
      t.equal(await whoAmI(jars[0]!), 'Ann')
      t.equal(await whoAmI(jars[1]!), null)
      t.equal(await whoAmI(jars[2]!), null)
      t.equal(await whoAmI(bob), 'Bob', 'other users are untouched')
      t.same((await jars[0]!.inject({ method: 'POST', url: '/revoke-others' })).json(), { revoked: 0 })
    })

    t.test('logout ends the record: a copy of the cookies taken before is anonymous afterwards', async (t) => {
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const heard: string[] = []
      app.loginManager.on('loginRevoked', ({ reason }) => { heard.push(reason) })
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      const stolen = jar.clone()
      await jar.inject({ method: 'POST', url: '/logout' })
      t.same(heard, ['logout'])
      t.equal(await whoAmI(stolen), null, 'the copied session cookie')
      stolen.delete('sessionId')
      stolen.delete('session')
      t.equal(await whoAmI(stolen), null, 'the copied remember cookie')
      t.equal(stolen.get('remember_token'), undefined, 'cleared')
    })

    t.test('loginUser ends the record of a login it replaces in the session', async (t) => {
      const { app } = await buildStoreApp({ sessionPlugin })
      t.teardown(() => app.close())
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1' })
      const first = (await devices(jar)).loginId
      const copy = jar.clone()
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      const listed = await devices(jar)
      t.not(listed.loginId, first)
      t.same(listed.logins.map((login) => login.id), [listed.loginId], 'one device, not two')
      t.equal(await whoAmI(copy), null, 'a copy of the first login is over')
    })
  })
}

t.test('a request still in flight when its login is logged out cannot bring it back (@fastify/session writes it back)', async (t) => {
  for (const rolling of [true, false]) {
    const { app, store } = await buildStoreApp({ session: { rolling } })
    t.teardown(() => app.close())
    let release: () => void = () => {}
    const held = new Promise<void>((resolve) => { release = resolve })
    let entered: () => void = () => {}
    const inside = new Promise<void>((resolve) => { entered = resolve })
    app.post('/slow', async (request) => {
      entered()
      await held
      // Something the handler writes: the whole session is saved again at the end.
      ;(request.session as unknown as { set (key: string, value: unknown): void }).set('draft', 'text')
      return { user: request.isAuthenticated() }
    })
    const victim = new CookieJar(app)
    await victim.inject({ method: 'POST', url: '/login/1' })
    const attacker = victim.clone()
    const slow = attacker.inject({ method: 'POST', url: '/slow' })
    await inside
    await victim.inject({ method: 'POST', url: '/logout' })
    release()
    t.same((await slow).json(), { user: true }, `rolling ${String(rolling)}: the request in flight was let in before the logout`)
    store.reset()
    t.same((await attacker.inject('/')).json().authenticated, false, `rolling ${String(rolling)}: the stolen cookie is anonymous after it`)
    t.equal(store.calls.get, 1, 'the record was asked')
    t.same((await attacker.inject('/session-login')).json(), { userId: null, loginId: null }, 'and the login keys are gone from the written-back session')
  }
})

t.test('turning a store on logs nobody out: logins from before get their record at the next request', async (t) => {
  const sessionStore = sessionStoreOutliving()
  const before = await buildApp({ session: { store: sessionStore } })
  const sessionJar = new CookieJar(before.app)
  await sessionJar.inject({ method: 'POST', url: '/login/1' })
  const rememberJar = new CookieJar(before.app)
  await rememberJar.inject({ method: 'POST', url: '/login/2?remember=1&duration=7200' })
  const v1Cookie = rememberJar.get('remember_token')!
  t.match(v1Cookie, /^v1\./)
  await before.app.close()

  const after = await buildStoreApp({ session: { store: sessionStore } })
  t.teardown(() => after.app.close())
  const onNew = (jar: CookieJar): CookieJar => {
    const copy = new CookieJar(after.app)
    for (const [name, cookie] of jar.cookies) copy.cookies.set(name, { ...cookie })
    return copy
  }
  const sessionUser = onNew(sessionJar)
  t.equal(await whoAmI(sessionUser), 'Ann', 'the session login holds')
  const listed = await devices(sessionUser)
  t.equal(listed.logins.length, 1, 'and has a record now')
  t.equal(listed.logins[0]!.remembered, false)
  t.equal((await sessionUser.inject('/session-login')).json().loginId, listed.loginId)
  t.equal(after.store.calls.create, 1)

  const rememberUser = onNew(rememberJar)
  rememberUser.restartBrowser()
  const restored = await rememberUser.inject('/')
  t.equal(restored.json().user, 'Bob', 'a stateless remember cookie from before restores')
  const v2Cookie = rememberUser.get('remember_token')!
  t.match(v2Cookie, /^v2\./, 'and is replaced by a store cookie')
  const [record] = (await devices(rememberUser)).logins
  t.equal(record!.remembered, true)
  const v1Expiry = Number(v1Cookie.split('.')[2]) * 1000
  t.equal(Date.parse(record!.expiresAt), v1Expiry, 'the record keeps the old cookie\'s expiry')
  rememberUser.restartBrowser()
  t.equal(await whoAmI(rememberUser), 'Bob', 'the store cookie restores next time')

  const withOldCookie = new CookieJar(after.app)
  withOldCookie.set('remember_token', v1Cookie)
  t.equal(await whoAmI(withOldCookie), 'Bob', 'a v1 cookie still restores while it is valid (its own record)')
})

t.test('a store cookie without a store is ignored and cleared', async (t) => {
  const withStore = await buildStoreApp()
  const jar = new CookieJar(withStore.app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const cookie = jar.get('remember_token')!
  await withStore.app.close()
  const { app, loaded } = await buildApp()
  t.teardown(() => app.close())
  const response = await app.inject({ url: '/', headers: { cookie: `remember_token=${cookie}` } })
  t.equal(response.json().authenticated, false)
  t.ok(response.cookies.some((item) => item.name === 'remember_token' && item.value === ''))
  t.same(loaded, [])
})

t.test('without a store: loginId is null and the store methods reject with FST_LOGIN_NO_STORE', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  addDeviceRoutes(app)
  app.get('/id', async (request) => ({ loginId: request.loginId }))
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.same((await jar.inject('/id')).json(), { loginId: null })
  for (const [method, url] of [['GET', '/devices'], ['POST', '/revoke/x'], ['POST', '/revoke-others']] as const) {
    const response = await jar.inject({ method, url })
    t.equal(response.statusCode, 500)
    t.equal(response.json().code, 'FST_LOGIN_NO_STORE')
  }
  await t.rejects(app.loginManager.listLogins('1'), { code: 'FST_LOGIN_NO_STORE' })
  await t.rejects(app.loginManager.revokeLogins('1'), { code: 'FST_LOGIN_NO_STORE' })
})

t.test('anonymous: listLogins is empty, revokeLogin false, revokeOtherLogins 0', async (t) => {
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  t.same(await devices(jar), { loginId: null, logins: [] })
  t.same((await jar.inject({ method: 'POST', url: '/revoke/AAAAAAAAAAAAAAAAAAAAAAAA' })).json(), { revoked: false, authenticated: false })
  t.same((await jar.inject({ method: 'POST', url: '/revoke-others' })).json(), { revoked: 0 })
  t.equal(store.total, 0)
})

t.test('loginManager.listLogins and revokeLogins, for administrators and password resets', async (t) => {
  const { app } = await buildStoreApp()
  t.teardown(() => app.close())
  const heard: Array<{ hasRequest: boolean, reason: string }> = []
  app.loginManager.on('loginRevoked', (event) => { heard.push({ hasRequest: event.request !== undefined, reason: event.reason }) })
  const jars = [new CookieJar(app), new CookieJar(app)]
  for (const jar of jars) await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const bob = new CookieJar(app)
  await bob.inject({ method: 'POST', url: '/login/2' })
  const listed = await app.loginManager.listLogins('1')
  t.equal(listed.length, 2)
  t.ok(listed.every((login) => login.current === false && login.createdAt instanceof Date))
  t.same((await app.loginManager.listLogins(2)).length, 1, 'a number id is stringified')
  t.equal(await app.loginManager.revokeLogins(1), 2)
  t.same(heard, [{ hasRequest: false, reason: 'revoked' }, { hasRequest: false, reason: 'revoked' }])
  for (const jar of jars) {
    t.equal(await whoAmI(jar), null)
    jar.restartBrowser()
    t.equal(await whoAmI(jar), null, 'remember cookies too')
  }
  t.equal(await whoAmI(bob), 'Bob')
  t.equal(await app.loginManager.revokeLogins('1'), 0)
  await t.rejects(app.loginManager.listLogins(''), { code: 'FST_LOGIN_INVALID_USER_ID' })
  await t.rejects(app.loginManager.revokeLogins(null as unknown as string), { code: 'FST_LOGIN_INVALID_USER_ID' })
})

t.test('the user gone or its sessionVersion changed: the login and its record are over', async (t) => {
  const users = makeUsers()
  const { app, store } = await buildStoreApp({ users, login: { sessionVersion: (user) => (user as unknown as { version: string }).version } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  users.get('1')!.version = '2'
  t.equal(await whoAmI(jar), null)
  t.same(await store.inner.list('1'), [], 'the record is gone')
  const bob = new CookieJar(app)
  await bob.inject({ method: 'POST', url: '/login/2' })
  users.delete('2')
  t.equal(await whoAmI(bob), null)
  t.same(await store.inner.list('2'), [])
})

t.test('strong session protection that removes a login ends its record', async (t) => {
  const { app, store } = await buildStoreApp({ login: { sessionProtection: 'strong' } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1', headers: { 'user-agent': 'Mine/1' } })
  t.equal((await jar.inject({ url: '/', headers: { 'user-agent': 'Other/1' } })).json().authenticated, false)
  t.same(await store.inner.list('1'), [])
})

t.test('isolation: 500 concurrent requests as 50 users, each on its own store-backed login, never mix', async (t) => {
  const users = makeUsers()
  for (let index = 10; index < 60; index++) users.set(String(index), new User(String(index), `User ${index}`))
  const { app } = await buildStoreApp({ users, login: { userLoader: async (id: string) => { await new Promise((resolve) => setImmediate(resolve)); return users.get(id) ?? null } } })
  t.teardown(() => app.close())
  const jars = new Map<string, CookieJar>()
  for (let index = 10; index < 60; index++) {
    const jar = new CookieJar(app)
    // Every other user is remembered; half of those come back through their remember cookie.
    await jar.inject({ method: 'POST', url: `/login/${index}?remember=${index % 2 === 0 ? 1 : 0}` })
    if (index % 4 === 0) jar.restartBrowser()
    jars.set(String(index), jar)
  }
  const requests = Array.from({ length: 500 }, (_, index) => {
    const id = String(10 + (index % 50))
    return jars.get(id)!.inject('/devices').then((response) => ({ id, body: response.json() as Devices }))
  })
  const answers = await Promise.all(requests)
  let mixed = 0
  for (const { body } of answers) {
    const own = body.logins.find((login) => login.current)
    if (own === undefined || body.loginId !== own.id || body.logins.length !== 1) mixed++
  }
  t.equal(mixed, 0)
  const names = await Promise.all([...jars].map(async ([id, jar]) => [id, await whoAmI(jar)]))
  t.ok(names.every(([id, name]) => name === `User ${id}`), 'every user is themself')
})

t.test('options: loginStore must be a store, remember.rotationGrace seconds >= 0', async (t) => {
  async function register (options: Record<string, unknown>): Promise<unknown> {
    const app = Fastify()
    await app.register(fastifyCookie)
    await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false } })
    try {
      await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: () => null, ...options })
      return null
    } catch (error) {
      return error
    } finally {
      await app.close()
    }
  }
  for (const loginStore of [null, 'redis', {}, { get () {}, create () {}, update () {}, delete () {} }, new Map()]) {
    t.match(await register({ loginStore }), { code: 'FST_LOGIN_INVALID_OPTION', message: /loginStore/ }, `loginStore ${String(loginStore)}`)
  }
  const incomplete = { create () {}, get () {}, update () {}, delete () {}, list () {}, createId: 'no' }
  t.match(await register({ loginStore: incomplete }), { code: 'FST_LOGIN_INVALID_OPTION', message: /createId/ })
  for (const rotationGrace of [-1, Number.NaN, Infinity, '60']) {
    t.match(await register({ remember: { rotationGrace } }), { code: 'FST_LOGIN_INVALID_OPTION', message: /rotationGrace/ })
  }
  t.equal(await register({ loginStore: new MemoryLoginStore(), remember: { rotationGrace: 0 } }), null)
})

t.test('concurrent requests of one login after the minute make one activity write, not one each', async (t) => {
  const clock = useClock(t)
  const { app, store } = await buildStoreApp()
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  clock.advance(61_000)
  store.reset()
  const answers = await Promise.all(Array.from({ length: 20 }, () => jar.inject('/')))
  t.ok(answers.every((answer) => answer.json().user === 'Ann'))
  t.equal(store.calls.update, 1)
})
