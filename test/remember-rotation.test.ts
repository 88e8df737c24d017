// Remember cookies with a login store (SPEC section 11): the cookie names a
// record and carries a validator that is rotated on every restore, with a
// grace window for parallel requests and lost responses; an old validator
// after the window is theft. Forged cookies cost no store read.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { LightMyRequestResponse } from 'fastify'
import type { RememberTheftEvent } from '../lib/index.js'
import { CookieJar, makeUsers } from './helpers.js'
import { buildStoreApp, sleep, type StoreApp } from './store-helpers.js'

const COOKIE = 'remember_token'

function rememberCookieOf (response: LightMyRequestResponse): { value: string, maxAge: number | undefined } | undefined {
  const cookie = response.cookies.find((item) => item.name === COOKIE)
  return cookie === undefined ? undefined : { value: cookie.value, maxAge: cookie.maxAge }
}

function rotationOf (value: string): number {
  return Number(value.split('.')[2])
}

/** An app, a browser remembered as user 1, and the browser after a restart. */
async function remembered (t: Test, options: Parameters<typeof buildStoreApp>[0] = {}): Promise<StoreApp & { jar: CookieJar, cookie: string }> {
  const built = await buildStoreApp(options)
  t.teardown(() => built.app.close())
  const jar = new CookieJar(built.app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.restartBrowser()
  return { ...built, jar, cookie: jar.get(COOKIE)! }
}

t.test('the remember cookie names the record and carries a random validator, not the user id', async (t) => {
  const { cookie, store } = await remembered(t)
  const [format, loginId, rotation, validator] = cookie.split('.')
  t.equal(format, 'v2')
  t.equal(rotation, '0')
  t.match(validator, /^[A-Za-z0-9_-]{43}$/, '256 bits')
  const record = await store.inner.get(loginId!)
  t.equal(record?.userId, '1')
  t.not(record?.validatorHash, validator, 'the store keeps a hash, never the validator')
  t.notMatch(cookie, /Ann|\.1\./, 'no user id or name in clear')
})

t.test('a restore rotates the validator: a new cookie, same expiry, and the login shows up as the same device', async (t) => {
  const { jar, cookie, app } = await remembered(t)
  const heard: string[] = []
  app.loginManager.on('userLoadedFromCookie', () => { heard.push('cookie') })
  const response = await jar.inject('/')
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  t.same(heard, ['cookie'])
  const next = rememberCookieOf(response)!
  t.equal(rotationOf(next.value), 1)
  t.equal(next.value.split('.')[1], cookie.split('.')[1], 'the same login')
  t.ok(Math.abs(next.maxAge! - 365 * 24 * 3600) <= 2, 'the expiry is kept')
  const devices = (await jar.inject('/devices')).json()
  t.equal(devices.logins.length, 1)
  t.equal(devices.logins[0].id, devices.loginId)
  t.equal(devices.logins[0].current, true)
  jar.restartBrowser()
  t.equal(rotationOf(rememberCookieOf(await jar.inject('/'))!.value), 2, 'every restore rotates')
})

t.test('20 parallel restores with the same cookie all succeed, with no theft', async (t) => {
  const { app, cookie, store } = await remembered(t)
  const thefts: RememberTheftEvent[] = []
  app.loginManager.on('rememberTheft', (event) => { thefts.push(event) })
  const responses = await Promise.all(Array.from({ length: 20 }, () => app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })))
  t.ok(responses.every((response) => response.json().authenticated === true), 'all authenticated')
  t.same(thefts, [])
  const record = await store.inner.get(cookie.split('.')[1]!)
  t.equal(record?.rotation, 1, 'rotated once')
  const sent = new Set(responses.map((response) => rememberCookieOf(response)?.value))
  t.equal(sent.size, 1, 'every response carries the one current cookie')
  t.equal(rotationOf([...sent][0]!), 1)
})

t.test('a response lost in transit, then a retry in the grace window: accepted, not rotated again, and sent the current cookie', async (t) => {
  const { app, cookie, store } = await remembered(t)
  const lost = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })
  const current = rememberCookieOf(lost)!.value
  // The browser never saw `lost`: it sends the old cookie again.
  const jar = new CookieJar(app)
  jar.set(COOKIE, cookie)
  const retry = await jar.inject('/')
  t.equal(retry.json().authenticated, true)
  t.equal(rememberCookieOf(retry)?.value, current, 'caught up to the current cookie')
  t.equal((await store.inner.get(cookie.split('.')[1]!))?.rotation, 1, 'no second rotation')
  jar.restartBrowser()
  const later = await jar.inject('/')
  t.equal(later.json().authenticated, true, 'the caught-up cookie restores next time')
  t.equal(rotationOf(rememberCookieOf(later)!.value), 2)
})

t.test('an old validator after the grace window is theft: revoked everywhere, cleared, anonymous', async (t) => {
  const { app, jar, cookie, store } = await remembered(t, { login: { remember: { rotationGrace: 0.2 } } })
  const thefts: RememberTheftEvent[] = []
  const revoked: string[] = []
  app.loginManager.on('rememberTheft', (event) => { thefts.push(event) })
  app.loginManager.on('loginRevoked', ({ reason }) => { revoked.push(reason) })
  t.equal((await jar.inject('/')).json().user, 'Ann', 'the owner restores (rotation 1)')
  await sleep(300)
  const thief = new CookieJar(app)
  thief.set(COOKIE, cookie)
  const response = await thief.inject('/')
  t.same(response.json(), { user: null, authenticated: false, fresh: false, remembered: false })
  t.ok(response.cookies.some((item) => item.name === COOKIE && item.value === ''), 'the cookie is cleared')
  const loginId = cookie.split('.')[1]
  t.same(thefts.map(({ userId, loginId, request }) => ({ userId, loginId, request: request !== undefined })), [{ userId: '1', loginId, request: true }])
  t.same(revoked, ['theft'])
  t.equal(await store.inner.get(loginId!), null, 'the record is gone')
  t.equal((await jar.inject('/')).json().authenticated, false, 'the owner\'s session is over too')
  jar.restartBrowser()
  t.equal((await jar.inject('/')).json().authenticated, false, 'and so is the owner\'s cookie')
})

t.test('a thief who restores first: the owner\'s older cookie after the window ends the thief\'s login too', async (t) => {
  const { app, cookie } = await remembered(t, { login: { remember: { rotationGrace: 0.2 } } })
  const thief = new CookieJar(app)
  thief.set(COOKIE, cookie)
  t.equal((await thief.inject('/')).json().user, 'Ann', 'the stolen cookie restores once')
  await sleep(300)
  const owner = new CookieJar(app)
  owner.set(COOKIE, cookie)
  t.equal((await owner.inject('/')).json().authenticated, false)
  t.equal((await thief.inject('/')).json().authenticated, false, 'the thief\'s session is anonymous at its next request')
})

t.test('a cookie accepted in the grace window does not rotate again; after the window it is theft', async (t) => {
  const { app, cookie, store } = await remembered(t, { login: { remember: { rotationGrace: 0.3 } } })
  await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })
  for (let index = 0; index < 3; index++) {
    t.equal((await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })).json().authenticated, true)
  }
  t.equal((await store.inner.get(cookie.split('.')[1]!))?.rotation, 1)
  await sleep(400)
  t.equal((await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })).json().authenticated, false)
})

t.test('forged, truncated or garbage store cookies: anonymous and cleared, with no store read, no loader call, never a 5xx', async (t) => {
  const { app, cookie, store, loaded } = await remembered(t)
  const [, loginId, , validator] = cookie.split('.') as [string, string, string, string]
  const flip = (text: string): string => text.slice(0, -2) + (text.at(-2) === 'A' ? 'B' : 'A') + text.at(-1)!
  // The last character carries 2 bits that 32 bytes do not use: another spelling of the same validator.
  const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
  const respelled = validator.slice(0, -1) + ALPHABET[ALPHABET.indexOf(validator.at(-1)!) + 1]
  const candidates = [
    `v2.${loginId}.0.${flip(validator)}`,
    `v2.${loginId}.0.${respelled}`,
    `v2.${loginId}.1.${validator}`,
    `v2.${flip(loginId)}.0.${validator}`,
    `v2.${loginId}.0.${validator.slice(0, 20)}`,
    `v2.${loginId}.0`,
    `v2.${loginId}.00.${validator}`,
    `v2.${loginId}.-1.${validator}`,
    `v2.${loginId}.0.${validator}.`,
    `v2.${loginId}.0.${validator}=`,
    `v2..0.${validator}`,
    'v2.',
    `v2.${'A'.repeat(200)}.0.${validator}`,
    `v2.${loginId}.99999999999999999999.${validator}`,
    `v3.${loginId}.0.${validator}`,
    'garbage',
    '',
    `v2.${loginId}.0.${validator}`.slice(0, 40),
    `v2.${loginId}.0.${validator}${'A'.repeat(5000)}`
  ]
  store.reset()
  loaded.length = 0
  for (const value of candidates) {
    const response = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${encodeURIComponent(value)}` } })
    t.ok(response.statusCode < 500, `status ${response.statusCode} for ${JSON.stringify(value)}`)
    t.equal(response.json().authenticated, false, JSON.stringify(value))
    if (value !== '') t.ok(response.cookies.some((item) => item.name === COOKIE && item.value === ''), `cleared: ${JSON.stringify(value)}`)
  }
  await fc.assert(fc.asyncProperty(fc.string({ maxLength: 200 }), fc.nat({ max: cookie.length }), async (noise, at) => {
    const value = cookie.slice(0, at) + noise + cookie.slice(at + noise.length)
    if (value === cookie) return
    const response = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${encodeURIComponent(value)}` } })
    if (response.statusCode >= 500 || response.json().authenticated !== false) throw new Error(`accepted ${JSON.stringify(value)}`)
  }), { numRuns: 300 })
  t.equal(store.total, 0, 'no store call at all')
  t.same(loaded, [], 'no loader call')
})

t.test('a store cookie whose record is gone: anonymous and cleared, no loader call', async (t) => {
  const { app, cookie, store, loaded } = await remembered(t)
  await store.inner.delete(cookie.split('.')[1]!)
  loaded.length = 0
  const response = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })
  t.equal(response.json().authenticated, false)
  t.ok(response.cookies.some((item) => item.name === COOKIE && item.value === ''))
  t.same(loaded, [])
})

t.test('a restore checks sessionVersion and the user: a changed one ends the login', async (t) => {
  const users = makeUsers()
  const { app, cookie, store } = await remembered(t, { users, login: { sessionVersion: (user) => (user as unknown as { version: string }).version } })
  users.get('1')!.version = '2'
  const response = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })
  t.equal(response.json().authenticated, false)
  t.ok(response.cookies.some((item) => item.name === COOKIE && item.value === ''))
  t.equal(await store.inner.get(cookie.split('.')[1]!), null)
})

t.test('refreshEachRequest re-issues the store cookie with a new Max-Age, its value unchanged', async (t) => {
  const { app } = await buildStoreApp({ login: { remember: { refreshEachRequest: true, duration: 3600 } } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const value = jar.get(COOKIE)
  await sleep(1100)
  const response = await jar.inject('/')
  const refreshed = rememberCookieOf(response)!
  t.equal(refreshed.value, value)
  t.equal(refreshed.maxAge, 3600)
})

t.test('with a store, loginRemembered follows the store cookie', async (t) => {
  const { jar } = await remembered(t)
  t.equal((await jar.inject('/')).json().remembered, true)
  jar.set(COOKIE, 'v2.garbage')
  t.equal((await jar.inject('/')).json().remembered, false)
})
