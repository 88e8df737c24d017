import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildApp, CookieJar, LOGIN_SECRET, type BuildOptions } from './helpers.js'

const COOKIE = 'remember_token'
const YEAR = 31536000
const SECRET_A = 'secret-a-of-at-least-thirty-two-characters'
const SECRET_B = 'secret-b-of-at-least-thirty-two-characters'

// The raw Set-Cookie header a response sent for `name`, if any.
function setCookie (response: LightMyRequestResponse, name = COOKIE): string | undefined {
  const header = response.headers['set-cookie']
  const list = header === undefined ? [] : Array.isArray(header) ? header : [header]
  return list.find((line) => line.startsWith(`${name}=`))
}

// The attributes of a Set-Cookie header, lower-cased names; flags map to ''.
function attributes (line: string): Map<string, string> {
  const map = new Map<string, string>()
  for (const part of line.split(';').slice(1)) {
    const [name = '', ...value] = part.trim().split('=')
    map.set(name.toLowerCase(), value.join('='))
  }
  return map
}

function valueOf (line: string): string {
  return line.slice(line.indexOf('=') + 1, line.indexOf(';') === -1 ? undefined : line.indexOf(';'))
}

function isClearing (line: string | undefined): boolean {
  if (line === undefined) return false
  const attrs = attributes(line)
  return valueOf(line) === '' && (attrs.get('max-age') === '0' || Date.parse(attrs.get('expires') ?? '') <= Date.now())
}

function maxAgeOf (line: string | undefined): number {
  return Number(attributes(line ?? '').get('max-age'))
}

// The Expires attribute in milliseconds, and the expiry inside the token, in milliseconds.
function expiresOf (line: string | undefined): number {
  return Date.parse(attributes(line ?? '').get('expires') ?? '')
}

function tokenExpiryOf (line: string | undefined): number {
  return Number(valueOf(line ?? '').split('.')[2]) * 1000
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

// Logs user 1 in with `remember` and returns the jar and the cookie value.
async function rememberedLogin (options: BuildOptions = {}, url = '/login/1?remember=1') {
  const built = await buildApp(options)
  const jar = new CookieJar(built.app)
  const response = await jar.inject({ method: 'POST', url })
  const line = setCookie(response)
  return { ...built, jar, response, line, value: line === undefined ? '' : valueOf(line) }
}

t.test('remember login sets remember_token with safe defaults', async (t) => {
  const { line } = await rememberedLogin()
  t.ok(line, 'remember_token is set')
  const attrs = attributes(line!)
  t.ok(attrs.has('httponly'), 'HttpOnly')
  t.equal(attrs.get('samesite')?.toLowerCase(), 'lax')
  t.equal(attrs.get('path'), '/')
  t.notOk(attrs.has('domain'), 'host-only cookie')
  t.notOk(attrs.has('secure'), 'not Secure over plain HTTP')
  // Signing and writing may straddle a second boundary.
  t.ok(Math.abs(maxAgeOf(line) - YEAR) <= 1, `Max-Age ${maxAgeOf(line)} is 365 days`)
})

// Flask: test_remember_me_uses_custom_cookie_parameters (cookie.expires)
t.test('the remember cookie has Expires too, at the expiry inside the token', async (t) => {
  const { line } = await rememberedLogin()
  const expires = expiresOf(line)
  t.equal(expires, tokenExpiryOf(line), 'Expires is the token\'s own expiry')
  t.ok(Math.abs(expires - (Date.now() + YEAR * 1000)) <= 10_000, 'a year from now')
})

// Flask: test_remember_me_custom_duration_uses_custom_cookie, test_remember_me_accepts_duration_as_int
t.test('a per-login duration sets Expires that far ahead', async (t) => {
  const { line } = await rememberedLogin({}, '/login/1?remember=1&duration=3600')
  t.equal(expiresOf(line), tokenExpiryOf(line))
  t.ok(Math.abs(expiresOf(line) - (Date.now() + 3600 * 1000)) <= 10_000)
})

t.test('the clearing cookie of a logout has Max-Age=0 and an Expires in the past', async (t) => {
  const { jar } = await rememberedLogin()
  const line = setCookie(await jar.inject({ method: 'POST', url: '/logout' }))
  t.equal(valueOf(line!), '')
  t.equal(maxAgeOf(line), 0)
  t.ok(expiresOf(line) < Date.now())
})

t.test('login without remember sets no remember cookie', async (t) => {
  const { line } = await rememberedLogin({}, '/login/1')
  t.equal(line, undefined)
})

t.test('remember cookie is Secure over HTTPS with secure auto', async (t) => {
  const { app } = await buildApp({ fastify: { trustProxy: true } })
  const response = await app.inject({ method: 'POST', url: '/login/1?remember=1', headers: { 'x-forwarded-proto': 'https' } })
  t.ok(attributes(setCookie(response)!).has('secure'))
})

t.test('custom remember options shape the cookie', async (t) => {
  const { response } = await rememberedLogin({
    login: {
      remember: { cookieName: 'keep_me', duration: 7200, domain: 'example.test', path: '/', secure: true, httpOnly: false, sameSite: 'strict' }
    }
  })
  t.equal(setCookie(response), undefined, 'the default name is not used')
  const custom = setCookie(response, 'keep_me')
  t.ok(custom, 'the custom name is used')
  const attrs = attributes(custom!)
  t.equal(attrs.get('domain'), 'example.test')
  t.equal(attrs.get('path'), '/')
  t.ok(attrs.has('secure'), 'Secure even over HTTP')
  t.notOk(attrs.has('httponly'), 'readable by scripts when httpOnly is false')
  t.equal(attrs.get('samesite')?.toLowerCase(), 'strict')
  t.ok(Math.abs(maxAgeOf(custom) - 7200) <= 1)
})

t.test('a custom cookie name is what restores the user', async (t) => {
  const { jar } = await rememberedLogin({ login: { remember: { cookieName: 'keep_me' } } })
  jar.restartBrowser()
  t.equal((await jar.inject('/')).json().user, 'Ann')
})

t.test('secure false never marks the cookie Secure, even over HTTPS', async (t) => {
  const { app } = await buildApp({ fastify: { trustProxy: true }, login: { remember: { secure: false } } })
  const response = await app.inject({ method: 'POST', url: '/login/1?remember=1', headers: { 'x-forwarded-proto': 'https' } })
  t.notOk(attributes(setCookie(response)!).has('secure'))
})

t.test('sameSite false omits the attribute', async (t) => {
  const { line } = await rememberedLogin({ login: { remember: { sameSite: false } } })
  t.notOk(attributes(line!).has('samesite'))
})

t.test('a per-login duration overrides the default', async (t) => {
  const { line } = await rememberedLogin({}, '/login/1?remember=1&duration=3600')
  t.ok(Math.abs(maxAgeOf(line) - 3600) <= 1, `Max-Age ${maxAgeOf(line)}`)
})

t.test('the session login is fresh and remembered right after a remember login', async (t) => {
  // Flask: test_authentication_is_fresh, test_login_user_remembered
  const { jar } = await rememberedLogin()
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: true })
})

t.test('after the browser restarts the cookie restores the user, not fresh', async (t) => {
  // Flask: test_remember_me, test_remember_me_is_unfresh, test_user_loaded_from_cookie_fired
  const { app, jar, loaded } = await rememberedLogin()
  const heard: string[] = []
  app.loginManager.on('userLoadedFromCookie', ({ user }) => { heard.push(String((user as { name?: unknown }).name)) })
  jar.restartBrowser()
  t.notOk(jar.get('sessionId'), 'the session cookie is gone')
  loaded.length = 0
  const response = await jar.inject('/')
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  t.same(heard, ['Ann'])
  t.same(loaded, ['1'])
})

t.test('a cookie restore puts the user into the session', async (t) => {
  const { jar } = await rememberedLogin()
  jar.restartBrowser()
  await jar.inject('/')
  jar.delete(COOKIE)
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false })
})

t.test('a response whose user came from the cookie varies on Cookie', async (t) => {
  const { jar } = await rememberedLogin()
  jar.restartBrowser()
  const response = await jar.inject('/')
  t.match(String(response.headers.vary), /\bcookie\b/i)
})

t.test('a remember restore works for a non-ASCII user id, with a printable ASCII cookie', async (t) => {
  // Flask: UnicodeCookieUserIDTestCase
  const { jar, line, value } = await rememberedLogin({}, `/login/${encodeURIComponent('ü')}?remember=1`)
  t.ok(line)
  t.match(value, /^[\x21-\x7e]+$/, 'printable ASCII')
  t.notMatch(value, /%/, 'no percent-encoding needed')
  jar.restartBrowser()
  t.same((await jar.inject('/')).json(), { user: 'Üna', authenticated: true, fresh: false, remembered: true })
})

// A cookie that must be ignored: anonymous, no loader call, cleared.
async function assertRejected (t: Test, cookie: string, options: BuildOptions = {}): Promise<void> {
  const { app, loaded } = await buildApp(options)
  const response = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${cookie}` } })
  t.ok(response.statusCode < 500, `status ${response.statusCode}`)
  t.equal(response.json().authenticated, false)
  t.same(loaded, [], 'the loader is not called')
  t.ok(isClearing(setCookie(response)), 'the cookie is cleared')
}

t.test('a tampered user id is ignored and cleared', async (t) => {
  const { value } = await rememberedLogin()
  const parts = value.split('.')
  parts[1] = Buffer.from('2').toString('base64url')
  await assertRejected(t, parts.join('.'))
})

t.test('a tampered expiry is ignored and cleared', async (t) => {
  const { value } = await rememberedLogin()
  const parts = value.split('.')
  parts[2] = String(Number(parts[2]) + 1000)
  await assertRejected(t, parts.join('.'))
})

t.test('a tampered MAC is ignored and cleared', async (t) => {
  const { value } = await rememberedLogin()
  const last = value.at(-2) === 'A' ? 'B' : 'A'
  await assertRejected(t, value.slice(0, -2) + last + value.slice(-1))
})

t.test('a truncated cookie is ignored and cleared', async (t) => {
  const { value } = await rememberedLogin()
  await assertRejected(t, value.slice(0, -5))
})

t.test('a garbage cookie is ignored and cleared', async (t) => {
  await assertRejected(t, 'foo')
  await assertRejected(t, '1|0e9e6e9855fbe6df7906ec47')
  await assertRejected(t, 'v1.....')
  await assertRejected(t, encodeURIComponent('\u0000ü;'))
  await assertRejected(t, 'x'.repeat(5000))
})

t.test('a cookie signed with another secret is ignored and cleared', async (t) => {
  const { value } = await rememberedLogin({ login: { secret: SECRET_A } })
  await assertRejected(t, value)
})

t.test('an expired cookie is ignored and cleared', async (t) => {
  const { value, app } = await rememberedLogin({ login: { remember: { duration: 1 } } })
  const fresh = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${value}` } })
  t.equal(fresh.json().authenticated, true, 'valid before it expires')
  await sleep(2100)
  await assertRejected(t, value, { login: { remember: { duration: 1 } } })
})

t.test('a rejected cookie is cleared with its Path and Domain', async (t) => {
  const { app } = await buildApp({ login: { remember: { path: '/a', domain: 'example.test' } } })
  app.get('/a/who', async (request) => ({ authenticated: request.isAuthenticated() }))
  const response = await app.inject({ url: '/a/who', headers: { cookie: `${COOKIE}=garbage` } })
  const line = setCookie(response)
  t.ok(isClearing(line))
  t.equal(attributes(line!).get('path'), '/a')
  t.equal(attributes(line!).get('domain'), 'example.test')
})

t.test('a cookie of a user the loader no longer finds is cleared', async (t) => {
  const { jar, users } = await rememberedLogin()
  jar.restartBrowser()
  users.delete('1')
  const response = await jar.inject('/')
  t.equal(response.json().authenticated, false)
  t.ok(isClearing(setCookie(response)))
})

t.test('logoutUser clears the remember cookie', async (t) => {
  // Flask: test_logout_stays_logged_out_with_remember_me
  const { jar } = await rememberedLogin()
  const response = await jar.inject({ method: 'POST', url: '/logout' })
  t.ok(isClearing(setCookie(response)))
  jar.restartBrowser()
  t.equal((await jar.inject('/')).json().authenticated, false)
})

t.test('a login without remember clears an earlier remember cookie', async (t) => {
  const { jar } = await rememberedLogin()
  const response = await jar.inject({ method: 'POST', url: '/login/2' })
  t.ok(isClearing(setCookie(response)))
  jar.restartBrowser()
  t.equal((await jar.inject('/')).json().authenticated, false)
})

t.test('without refreshEachRequest the cookie is not re-issued', async (t) => {
  const { jar } = await rememberedLogin()
  const response = await jar.inject('/')
  t.equal(response.json().remembered, true)
  t.equal(setCookie(response), undefined)
  jar.restartBrowser()
  t.equal(setCookie(await jar.inject('/')), undefined, 'not on a restore either')
})

t.test('refreshEachRequest re-issues the cookie with a later expiry', async (t) => {
  // Flask: test_remember_me_refresh_every_request
  const { jar, value } = await rememberedLogin({ login: { remember: { refreshEachRequest: true } } }, '/login/1?remember=1&duration=600')
  await sleep(1100)
  const response = await jar.inject('/')
  const line = setCookie(response)
  t.ok(line, 're-issued on a request that carries it')
  t.ok(Number(valueOf(line!).split('.')[2]) > Number(value.split('.')[2]), 'the expiry moved forward')
  t.ok(Math.abs(maxAgeOf(line) - 600) <= 1, 'the login\'s own duration is kept')
  t.equal(expiresOf(line), tokenExpiryOf(line), 'Expires is the new expiry')
  t.ok(expiresOf(line) > Number(value.split('.')[2]) * 1000, 'and later than the first')
  jar.restartBrowser()
  t.ok(setCookie(await jar.inject('/')), 're-issued on a restore too')
})

t.test('refreshEachRequest does not issue a cookie to a login without one', async (t) => {
  const { jar } = await rememberedLogin({ login: { remember: { refreshEachRequest: true } } }, '/login/1')
  t.equal(setCookie(await jar.inject('/')), undefined)
})

t.test('refreshEachRequest does not re-issue a remember cookie of another user than the session\'s', async (t) => {
  const { app, value } = await rememberedLogin({ login: { remember: { refreshEachRequest: true } } }, '/login/2?remember=1')
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  jar.set(COOKIE, value)
  const response = await jar.inject('/')
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: true, remembered: true }, 'the session\'s login wins')
  t.equal(setCookie(response), undefined, 'Bob\'s cookie is not extended on Ann\'s requests')
})

t.test('a cookie signed with an older secret still verifies and is re-issued under the new one', async (t) => {
  const { value } = await rememberedLogin({ login: { secret: SECRET_A } })
  const { app } = await buildApp({ login: { secret: [SECRET_B, SECRET_A] } })
  const response = await app.inject({ url: '/', headers: { cookie: `${COOKIE}=${value}` } })
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  const line = setCookie(response)
  t.ok(line, 're-issued')
  const reissued = valueOf(line!)
  t.not(reissued, value)
  t.equal(reissued.split('.')[2], value.split('.')[2], 'the expiry is kept')
  t.equal(expiresOf(line), tokenExpiryOf(line), 'and so is Expires')
  const { app: onlyB } = await buildApp({ login: { secret: SECRET_B } })
  const again = await onlyB.inject({ url: '/', headers: { cookie: `${COOKIE}=${reissued}` } })
  t.equal(again.json().user, 'Ann', 'the re-issued cookie verifies under the new secret alone')
})

t.test('dropping the old secret rejects its cookies', async (t) => {
  const { value } = await rememberedLogin({ login: { secret: SECRET_A } })
  await assertRejected(t, value, { login: { secret: [SECRET_B] } })
})

t.test('the remember cookie is not signed with the raw secret as the only key', async (t) => {
  const { value } = await rememberedLogin({ login: { secret: LOGIN_SECRET } })
  const { createHmac } = await import('node:crypto')
  const payload = value.split('.').slice(0, 5).join('.')
  const naive = createHmac('sha256', LOGIN_SECRET).update(payload).digest('base64url')
  t.not(value.split('.')[5], naive)
})

t.test('a sessionVersion change rejects the cookie', async (t) => {
  const { jar, users } = await rememberedLogin({ login: { sessionVersion: (user) => String((user as { version?: unknown }).version) } })
  jar.restartBrowser()
  users.get('1')!.version = '2'
  const response = await jar.inject('/')
  t.equal(response.json().authenticated, false)
  t.ok(isClearing(setCookie(response)))
})

t.test('an unchanged sessionVersion keeps the cookie valid', async (t) => {
  const { jar } = await rememberedLogin({ login: { sessionVersion: (user) => String((user as { version?: unknown }).version) } })
  jar.restartBrowser()
  t.equal((await jar.inject('/')).json().user, 'Ann')
})
