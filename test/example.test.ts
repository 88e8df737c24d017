// The example application (example/app.ts, built to dist/example/app.js), in
// process with app.inject and a temporary data folder. The same scenarios run
// in a real browser in e2e.test.ts.
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import type { FastifyInstance, InjectOptions, LightMyRequestResponse } from 'fastify'

import { buildApp, type AppOptions } from '../dist/example/app.js'
import { configFromEnv } from '../dist/example/config.js'
import { describeUserAgent } from '../dist/example/user-agent.js'
import { CookieJar } from './helpers.js'
import { keepAlive } from './keep-alive.js'

const PASSWORD = 'demo-password'
const EXPIRED = 'Your session has expired. Please log in again.'
const FIREFOX = 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0'
const IPHONE = 'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1'

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-login-example-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function start (t: Test, dataDir = tempDir(t), options: Partial<AppOptions> = {}): Promise<{ app: FastifyInstance, dataDir: string }> {
  const app = keepAlive(await buildApp({ ...options, dataDir }))
  t.teardown(() => app.close())
  return { app, dataDir }
}

/** A browser on a device of its own: its cookies, and its User-Agent on every request. */
class Device extends CookieJar {
  readonly #userAgent: string

  constructor (app: FastifyInstance, userAgent: string) {
    super(app)
    this.#userAgent = userAgent
  }

  override inject (options: InjectOptions | string): Promise<LightMyRequestResponse> {
    const request: InjectOptions = typeof options === 'string' ? { url: options } : { ...options }
    request.headers = { 'user-agent': this.#userAgent, ...request.headers }
    return super.inject(request)
  }
}

/** Another user, with demo's password, in the example's database. */
function addUser (t: Test, dataDir: string, username: string): void {
  const db = keepAlive(new Database(join(dataDir, 'example.sqlite')))
  t.teardown(() => db.close())
  keepAlive(db.prepare(`INSERT INTO users (username, display_name, password_hash)
                        SELECT ?, ?, password_hash FROM users WHERE username = 'demo'`)).run(username, `User ${username}`)
}

function csrfTokenOf (response: LightMyRequestResponse): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(response.body)
  if (match?.[1] === undefined) throw new Error(`no CSRF token in the page (status ${response.statusCode})`)
  return match[1]
}

function postForm (jar: CookieJar, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  return jar.inject({
    method: 'POST',
    url,
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html' },
    payload: new URLSearchParams(fields).toString()
  })
}

/** Fills in the login form the way a browser does: GET the form (for its CSRF token), then POST it. */
async function logIn (jar: CookieJar, fields: { username?: string, password?: string, remember?: boolean, next?: string } = {}): Promise<LightMyRequestResponse> {
  const form = await jar.inject({ url: '/login', headers: { accept: 'text/html' } })
  return postForm(jar, '/login', {
    _csrf: csrfTokenOf(form),
    username: fields.username ?? 'demo',
    password: fields.password ?? PASSWORD,
    next: fields.next ?? '/',
    ...(fields.remember === true ? { remember: 'yes' } : {})
  })
}

/** A form on `page`, posted with that page's CSRF token. */
async function submit (jar: CookieJar, page: string, url: string, fields: Record<string, string>): Promise<LightMyRequestResponse> {
  const response = await jar.inject({ url: page, headers: { accept: 'text/html' } })
  return postForm(jar, url, { _csrf: csrfTokenOf(response), ...fields })
}

async function isLoggedIn (jar: CookieJar): Promise<boolean> {
  const response = await jar.inject({ url: '/profile', headers: { accept: 'text/html' } })
  return response.statusCode === 200
}

/** A login as the devices page shows it. */
interface DeviceItem {
  id: string
  current: boolean
  /** The item's text, tags removed, spaces collapsed. */
  text: string
  /** Whether it has a "Sign out" button. */
  signOut: boolean
}

/** The items of a devices page, in page order. */
function devicesOf (response: LightMyRequestResponse): DeviceItem[] {
  return response.body.split('<li class="card device"').slice(1).map((item) => {
    const body = item.slice(0, item.indexOf('</li>'))
    return {
      id: /data-login-id="([^"]+)"/.exec(body)?.[1] ?? '',
      current: body.includes('This device'),
      text: body.slice(body.indexOf('>') + 1).replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim(),
      signOut: body.includes('<button>Sign out</button>')
    }
  })
}

async function devices (jar: CookieJar): Promise<DeviceItem[]> {
  const response = await jar.inject({ url: '/devices', headers: { accept: 'text/html' } })
  if (response.statusCode !== 200) throw new Error(`/devices answered ${response.statusCode}`)
  return devicesOf(response)
}

/** This device's login id, from its devices page. */
async function loginIdOf (jar: CookieJar): Promise<string> {
  const current = (await devices(jar)).find((item) => item.current)
  if (current === undefined) throw new Error('no current device on the page')
  return current.id
}

/** What the next page `jar` opens shows as flashed messages. */
async function flashesAfter (jar: CookieJar, url: string): Promise<string[]> {
  const response = await jar.inject({ url, headers: { accept: 'text/html' } })
  return [...response.body.matchAll(/<p class="flash [^"]*" role="status">([^<]*)<\/p>/g)].map((match) => match[1] ?? '')
}

t.test('seeded users have scrypt hashes, never the password', async (t) => {
  const { dataDir } = await start(t)
  const db = keepAlive(new Database(join(dataDir, 'example.sqlite'), { readonly: true }))
  t.teardown(() => db.close())
  const rows = keepAlive(db.prepare('SELECT username, password_hash, active FROM users ORDER BY id')).all() as Array<{ username: string, password_hash: string, active: number }>
  t.same(rows.map((row) => [row.username, row.active]), [['demo', 1], ['inactive', 0]])
  for (const row of rows) {
    t.match(row.password_hash, /^scrypt\$16384\$8\$1\$[\w-]+\$[\w-]+$/)
    t.notMatch(row.password_hash, PASSWORD)
  }
})

t.test('secrets are generated once, kept in the data folder and readable by the owner only', async (t) => {
  const dataDir = tempDir(t)
  const first = keepAlive(await buildApp({ dataDir }))
  const jar = new CookieJar(first)
  await logIn(jar, { remember: true })
  await first.close()
  t.equal(statSync(join(dataDir, 'secrets.json')).mode & 0o777, 0o600)
  // A restarted server still accepts the remember cookie signed before the restart.
  const { app: second } = await start(t, dataDir)
  const restarted = new CookieJar(second)
  restarted.set('remember_token', jar.get('remember_token') ?? '')
  t.equal(await isLoggedIn(restarted), true)
})

t.test('an anonymous page view creates no session', async (t) => {
  const { app } = await start(t)
  const response = await app.inject({ url: '/', headers: { accept: 'text/html' } })
  t.equal(response.statusCode, 200)
  t.match(response.body, 'href="/login"')
  t.equal(response.headers['set-cookie'], undefined)
})

t.test('anonymous /profile goes to the login page with next, and the login goes back there', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  const guarded = await jar.inject({ url: '/profile', headers: { accept: 'text/html' } })
  t.equal(guarded.statusCode, 302)
  t.equal(guarded.headers.location, '/login?next=%2Fprofile')
  const form = await jar.inject({ url: '/login?next=%2Fprofile', headers: { accept: 'text/html' } })
  t.match(form.body, 'Please log in to access this page.')
  t.match(form.body, '<input type="hidden" name="next" value="/profile">')
  const login = await postForm(jar, '/login', { _csrf: csrfTokenOf(form), username: 'demo', password: PASSWORD, next: '/profile' })
  t.equal(login.statusCode, 303)
  t.equal(login.headers.location, '/profile')
  const profile = await jar.inject({ url: '/profile', headers: { accept: 'text/html' } })
  t.equal(profile.statusCode, 200)
  t.match(profile.body, 'Welcome, Demo User!')
  t.match(profile.body, 'fresh: you typed your password')
})

t.test('a wrong password re-renders the form with a message and logs nobody in', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  const response = await logIn(jar, { password: 'not-the-password' })
  t.equal(response.statusCode, 401)
  t.match(response.body, 'Wrong username or password.')
  t.match(response.body, 'name="username" value="demo"')
  t.equal(await isLoggedIn(jar), false)
})

t.test('an unknown username gets the same message as a wrong password', async (t) => {
  const { app } = await start(t)
  const response = await logIn(new CookieJar(app), { username: 'nobody' })
  t.equal(response.statusCode, 401)
  t.match(response.body, 'Wrong username or password.')
})

t.test('an inactive user with the right password is refused with a clear message', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  const response = await logIn(jar, { username: 'inactive' })
  t.equal(response.statusCode, 401)
  t.match(response.body, 'This account is disabled.')
  t.equal(await isLoggedIn(jar), false)
})

t.test('user input is escaped in the page', async (t) => {
  const { app } = await start(t)
  const response = await logIn(new CookieJar(app), { username: '"><script>alert(1)</script>' })
  t.notMatch(response.body, '<script>')
  t.match(response.body, 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"')
})

t.test('login without the CSRF token is refused', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  await jar.inject({ url: '/login', headers: { accept: 'text/html' } })
  const response = await postForm(jar, '/login', { username: 'demo', password: PASSWORD })
  t.equal(response.statusCode, 403)
  t.match(response.body, 'This form has expired.')
  t.equal(await isLoggedIn(jar), false)
})

t.test('a CSRF token from before the login does not work after it', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  const form = await jar.inject({ url: '/login', headers: { accept: 'text/html' } })
  const before = csrfTokenOf(form)
  t.equal((await postForm(jar, '/login', { _csrf: before, username: 'demo', password: PASSWORD })).statusCode, 303)
  t.equal((await postForm(jar, '/logout', { _csrf: before })).statusCode, 403)
  t.equal(await isLoggedIn(jar), true)
})

t.test("a planted session's CSRF token does not work after the remember cookie restores the login", async (t) => {
  const { app } = await start(t)
  const victim = new CookieJar(app)
  await logIn(victim, { remember: true })
  victim.restartBrowser()
  // The attacker's own anonymous session (a login form gives it a CSRF secret), planted in the victim's browser.
  const attacker = new CookieJar(app)
  const token = csrfTokenOf(await attacker.inject({ url: '/login', headers: { accept: 'text/html' } }))
  victim.set('session', attacker.get('session') ?? '')
  t.equal(await isLoggedIn(victim), true, 'the remember cookie restored the login into that session')
  t.equal((await postForm(victim, '/logout', { _csrf: token })).statusCode, 403, "a cross-site logout with the attacker's token fails")
  t.equal(await isLoggedIn(victim), true)
})

t.test('a next that leaves the site is replaced by /', async (t) => {
  const { app } = await start(t)
  for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example']) {
    const response = await logIn(new CookieJar(app), { next })
    t.equal(response.headers.location, '/', next)
  }
})

t.test('logout needs the CSRF token, then ends the login and clears the remember cookie', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  await logIn(jar, { remember: true })
  const oldSession = jar.get('session')
  t.equal((await postForm(jar, '/logout', {})).statusCode, 403)
  t.equal(await isLoggedIn(jar), true)

  const logout = await submit(jar, '/', '/logout', {})
  t.equal(logout.statusCode, 303)
  t.equal(jar.get('remember_token'), undefined)
  t.equal(await isLoggedIn(jar), false)
  const home = await jar.inject({ url: '/', headers: { accept: 'text/html' } })
  t.match(home.body, 'You have been logged out.')

  // The session cookie from before the logout is worth nothing now.
  const replay = new CookieJar(app)
  replay.set('session', oldSession ?? '')
  t.equal(await isLoggedIn(replay), false)
})

t.test('a remembered login is not fresh: settings ask for the password again', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  await logIn(jar, { remember: true })
  jar.restartBrowser()
  t.equal(jar.get('session'), undefined)

  const profile = await jar.inject({ url: '/profile', headers: { accept: 'text/html' } })
  t.equal(profile.statusCode, 200)
  t.match(profile.body, 'not fresh: restored from the remember-me cookie')

  const settings = await jar.inject({ url: '/settings', headers: { accept: 'text/html' } })
  t.equal(settings.statusCode, 302)
  t.equal(settings.headers.location, '/reauthenticate?next=%2Fsettings')

  const wrong = await submit(jar, '/reauthenticate?next=%2Fsettings', '/reauthenticate', { password: 'nope', next: '/settings' })
  t.equal(wrong.statusCode, 401)
  t.match(wrong.body, 'Wrong password.')

  const confirmed = await submit(jar, '/reauthenticate?next=%2Fsettings', '/reauthenticate', { password: PASSWORD, next: '/settings' })
  t.equal(confirmed.statusCode, 303)
  t.equal(confirmed.headers.location, '/settings')
  t.equal((await jar.inject({ url: '/settings', headers: { accept: 'text/html' } })).statusCode, 200)
})

t.test('without remember me, a browser restart ends the login', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  await logIn(jar)
  t.equal(jar.get('remember_token'), undefined)
  jar.restartBrowser()
  t.equal(await isLoggedIn(jar), false)
})

t.test('changing the password logs out every other session and remember cookie, and keeps this one', async (t) => {
  const { app } = await start(t)
  const here = new CookieJar(app)
  const elsewhere = new CookieJar(app)
  await logIn(here, { remember: true })
  await logIn(elsewhere, { remember: true })
  const oldRememberCookie = elsewhere.get('remember_token') ?? ''

  const change = await submit(here, '/settings', '/settings', { action: 'change-password', currentPassword: PASSWORD, newPassword: 'a-new-password' })
  t.equal(change.statusCode, 303)
  const settings = await here.inject({ url: '/settings', headers: { accept: 'text/html' } })
  t.equal(settings.statusCode, 200)
  t.match(settings.body, 'Your password was changed.')
  t.same((await devices(here)).map((item) => item.current), [true], 'the other login left the devices page at once')
  // This browser keeps a remember cookie that works under the new version.
  here.restartBrowser()
  t.equal(await isLoggedIn(here), true)

  t.equal(await isLoggedIn(elsewhere), false)
  t.equal(elsewhere.get('remember_token'), undefined)
  const cookieOnly = new CookieJar(app)
  cookieOnly.set('remember_token', oldRememberCookie)
  t.equal(await isLoggedIn(cookieOnly), false)

  t.equal((await logIn(new CookieJar(app))).statusCode, 401, 'the old password no longer works')
  t.equal((await logIn(new CookieJar(app), { password: 'a-new-password' })).statusCode, 303)
})

t.test('a password change needs the current password and a long enough new one', async (t) => {
  const { app } = await start(t)
  const jar = new CookieJar(app)
  await logIn(jar)
  await submit(jar, '/settings', '/settings', { action: 'change-password', currentPassword: 'wrong', newPassword: 'a-new-password' })
  t.match((await jar.inject({ url: '/settings', headers: { accept: 'text/html' } })).body, 'Your current password is not correct.')
  await submit(jar, '/settings', '/settings', { action: 'change-password', currentPassword: PASSWORD, newPassword: 'short' })
  t.match((await jar.inject({ url: '/settings', headers: { accept: 'text/html' } })).body, 'The new password needs 8 to 200 characters.')
  t.equal((await logIn(new CookieJar(app))).statusCode, 303, 'the password is unchanged')
})

t.test('/api/me answers 401 JSON without a valid API key and the user with one', async (t) => {
  const { app, dataDir } = await start(t)
  const anonymous = await app.inject({ url: '/api/me', headers: { accept: 'text/html' } })
  t.equal(anonymous.statusCode, 401)
  t.equal(anonymous.headers['www-authenticate'], 'Bearer')
  t.equal(anonymous.json().error, 'Unauthorized')

  const jar = new CookieJar(app)
  await logIn(jar)
  const created = await submit(jar, '/settings', '/settings', { action: 'create-api-key' })
  const key = /id="new-api-key">([^<]+)</.exec(created.body)?.[1] ?? ''
  t.match(key, /^flk_[\w-]{32}$/)

  const withKey = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${key}` } })
  t.equal(withKey.statusCode, 200)
  t.same(withKey.json(), { id: 1, username: 'demo', displayName: 'Demo User' })
  t.equal(withKey.headers['set-cookie'], undefined, 'an API request creates no session')

  const wrongKey = await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${key}x` } })
  t.equal(wrongKey.statusCode, 401)

  // Keys open the API only, not the pages.
  const page = await app.inject({ url: '/profile', headers: { authorization: `Bearer ${key}`, accept: 'text/html' } })
  t.equal(page.statusCode, 302)

  // Only a hash of the key is stored.
  const db = keepAlive(new Database(join(dataDir, 'example.sqlite'), { readonly: true }))
  t.teardown(() => db.close())
  const stored = keepAlive(db.prepare('SELECT key_hash FROM api_keys')).all() as Array<{ key_hash: string }>
  t.equal(stored.length, 1)
  t.not(stored[0]?.key_hash, key)

  // A revoked key stops working.
  const settings = await jar.inject({ url: '/settings', headers: { accept: 'text/html' } })
  const keyId = /name="keyId" value="(\d+)"/.exec(settings.body)?.[1] ?? ''
  await postForm(jar, '/settings', { _csrf: csrfTokenOf(settings), action: 'revoke-api-key', keyId })
  t.equal((await app.inject({ url: '/api/me', headers: { authorization: `Bearer ${key}` } })).statusCode, 401)
})

t.test('sessions live in SQLite and expire', async (t) => {
  const { app, dataDir } = await start(t)
  const jar = new CookieJar(app)
  await logIn(jar)
  const db = keepAlive(new Database(join(dataDir, 'example.sqlite')))
  t.teardown(() => db.close())
  const rows = keepAlive(db.prepare('SELECT expires_at FROM sessions')).all() as Array<{ expires_at: number }>
  t.equal(rows.length, 1, 'only the logged-in session is stored (the pre-login one was destroyed)')
  t.ok((rows[0]?.expires_at ?? 0) > Date.now(), 'with an expiry in the future')

  keepAlive(db.prepare('UPDATE sessions SET expires_at = ?')).run(Date.now() - 1)
  t.equal(await isLoggedIn(jar), false, 'an expired session is not loaded')
})

interface SessionStore {
  set (id: string, session: object, callback: (error?: Error) => void): void
  get (id: string, callback: (error: Error | null, session?: object | null) => void): void
  destroy (id: string, callback: (error?: Error) => void): void
  deleteExpired (): number
  close (): void
}
type StoreClass = new (db: Database.Database, options?: { ttl?: number, cleanupInterval?: number }) => SessionStore

async function openStore (t: Test, options: { ttl?: number, cleanupInterval?: number }): Promise<{ store: SessionStore, db: Database.Database }> {
  // A computed specifier: the built module, typed by StoreClass above (looser
  // than its own types, so that sessions without a cookie can be stored too).
  const module = await import(String(new URL('../dist/example/session-store.js', import.meta.url))) as { SqliteSessionStore: StoreClass }
  const db = keepAlive(new Database(':memory:'))
  db.exec('CREATE TABLE sessions (id TEXT PRIMARY KEY, data TEXT NOT NULL, expires_at INTEGER NOT NULL)')
  const store = keepAlive(new module.SqliteSessionStore(db, options))
  t.teardown(() => {
    store.close()
    db.close()
  })
  return { store, db }
}

function call<T> (method: (callback: (error?: Error | null, value?: T) => void) => void): Promise<T | undefined> {
  return new Promise((resolve, reject) => method((error, value) => error ? reject(error) : resolve(value)))
}

t.test('the session store keeps a session until its idle timeout, then forgets it', async (t) => {
  const { store, db } = await openStore(t, { ttl: 60_000 })
  await call((done) => store.set('a', { cookie: { expires: null }, cart: [1] }, done))
  t.same(await call((done) => store.get('a', done)), { cookie: { expires: null }, cart: [1] })
  const row = keepAlive(db.prepare('SELECT expires_at FROM sessions')).get() as { expires_at: number }
  t.ok(Math.abs(row.expires_at - (Date.now() + 60_000)) < 5_000, 'expires ttl from now')

  keepAlive(db.prepare('UPDATE sessions SET expires_at = ?')).run(Date.now() - 1)
  t.equal(await call((done) => store.get('a', done)), null, 'an expired session is not returned')
  t.equal(store.deleteExpired(), 1)
  t.equal((keepAlive(db.prepare('SELECT count(*) AS n FROM sessions')).get() as { n: number }).n, 0)
})

t.test('the session store uses the expiry of a persistent session cookie', async (t) => {
  const { store, db } = await openStore(t, {})
  const expires = new Date(Date.now() + 5 * 60_000)
  await call((done) => store.set('p', { cookie: { expires: expires.toISOString() } }, done))
  t.equal((keepAlive(db.prepare('SELECT expires_at FROM sessions')).get() as { expires_at: number }).expires_at, expires.getTime())
})

t.test('the session store destroys sessions, and deletes expired ones periodically', async (t) => {
  const { store, db } = await openStore(t, { ttl: 60_000, cleanupInterval: 20 })
  await call((done) => store.set('gone', {}, done))
  await call((done) => store.set('old', {}, done))
  await call((done) => store.set('kept', {}, done))
  await call((done) => store.destroy('gone', done))
  t.equal(await call((done) => store.get('gone', done)), null)
  keepAlive(db.prepare('UPDATE sessions SET expires_at = ? WHERE id = ?')).run(Date.now() - 1, 'old')
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.same(keepAlive(db.prepare('SELECT id FROM sessions')).all(), [{ id: 'kept' }])
})

t.test('the devices page lists each login with where and when, this one marked', async (t) => {
  const { app } = await start(t)
  const laptop = new Device(app, FIREFOX)
  const phone = new Device(app, IPHONE)
  await logIn(laptop, { remember: true })
  await logIn(phone)

  const anonymous = await app.inject({ url: '/devices', headers: { accept: 'text/html' } })
  t.equal(anonymous.statusCode, 302)
  t.equal(anonymous.headers.location, '/login?next=%2Fdevices')

  const seenByLaptop = await devices(laptop)
  t.equal(seenByLaptop.length, 2)
  const [newest, oldest] = seenByLaptop
  t.match(newest, { current: false, signOut: true, text: /^Safari 17 on iPhone Address 127\.0\.0\.1 Logged in \d{4}-\d\d-\d\d \d\d:\d\d UTC Last seen \d{4}-.* Remember me no: until the browser closes Sign out$/ }, 'the phone, newest first')
  t.match(oldest, { current: true, signOut: false, text: /^Firefox 128 on Linux This device Address 127\.0\.0\.1 .* Last seen now Remember me yes, until \d{4}-/ }, 'this laptop')
  t.not(newest?.id, oldest?.id)

  const seenByPhone = await devices(phone)
  t.same(seenByPhone.map((item) => [item.id, item.current]), [[newest?.id, true], [oldest?.id, false]], 'the phone sees the same logins, itself marked')
  t.match((await phone.inject({ url: '/devices', headers: { accept: 'text/html' } })).body, 'title="Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X)', 'the whole User-Agent in the title')
})

t.test('the devices page escapes what the client sent', async (t) => {
  const { app } = await start(t)
  const odd = new Device(app, '"><script>alert(1)</script>')
  await logIn(odd)
  const page = await odd.inject({ url: '/devices', headers: { accept: 'text/html' } })
  t.notMatch(page.body, '<script>')
  t.match(page.body, '&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;')
})

t.test('a User-Agent in a few words', async (t) => {
  const cases: Array<[string, string]> = [
    [FIREFOX, 'Firefox 128 on Linux'],
    [IPHONE, 'Safari 17 on iPhone'],
    ['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87', 'Edge 126 on Windows'],
    ['Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36', 'Chrome 126 on macOS'],
    ['Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.122 Mobile Safari/537.36', 'Chrome 126 on Android'],
    ['Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.0.0 Safari/537.36', 'Chrome 131 on Linux'],
    ['curl/8.5.0', 'curl/8.5.0'],
    ['', 'Unknown browser'],
    ['x'.repeat(100), `${'x'.repeat(59)}…`]
  ]
  for (const [userAgent, described] of cases) t.equal(describeUserAgent(userAgent), described, described)
})

t.test('signing out another device needs the CSRF token, then ends that login and its remember cookie', async (t) => {
  const { app } = await start(t)
  const laptop = new Device(app, FIREFOX)
  const phone = new Device(app, IPHONE)
  await logIn(laptop)
  await logIn(phone, { remember: true })
  const phoneLogin = await loginIdOf(phone)
  const phoneCopy = phone.clone()

  t.equal((await postForm(laptop, '/devices', { action: 'sign-out', loginId: phoneLogin })).statusCode, 403, 'no CSRF token')
  t.equal(await isLoggedIn(phone), true)

  const signOut = await submit(laptop, '/devices', '/devices', { action: 'sign-out', loginId: phoneLogin })
  t.equal(signOut.statusCode, 303)
  t.equal(signOut.headers.location, '/devices')
  t.same(await flashesAfter(laptop, '/devices'), ['The device was signed out.'])
  t.same((await devices(laptop)).map((item) => item.current), [true], 'only this device is left')

  t.equal(await isLoggedIn(phone), false, 'the phone is anonymous at its next request')
  t.equal(phone.get('remember_token'), undefined, 'and its remember cookie is cleared')
  phoneCopy.delete('session')
  t.equal(await isLoggedIn(phoneCopy), false, 'a copy of its remember cookie logs nobody in')
  t.equal(await isLoggedIn(laptop), true)

  await submit(laptop, '/devices', '/devices', { action: 'sign-out', loginId: phoneLogin })
  t.same(await flashesAfter(laptop, '/devices'), ['That device was not found: it may have signed out already.'], 'twice')
})

t.test('"Sign out all other devices" ends every other login and keeps this one', async (t) => {
  const { app } = await start(t)
  const laptop = new Device(app, FIREFOX)
  const others = [new Device(app, IPHONE), new Device(app, FIREFOX), new Device(app, IPHONE)]
  await logIn(laptop, { remember: true })
  for (const [index, device] of others.entries()) await logIn(device, { remember: index === 0 })
  t.equal((await devices(laptop)).length, 4)
  const page = await laptop.inject({ url: '/devices', headers: { accept: 'text/html' } })
  t.match(page.body, '<button>Sign out all other devices</button>')

  t.equal((await postForm(laptop, '/devices', { action: 'sign-out-others' })).statusCode, 403, 'no CSRF token')
  t.equal(await isLoggedIn(others[0]!), true)

  const response = await submit(laptop, '/devices', '/devices', { action: 'sign-out-others' })
  t.equal(response.statusCode, 303)
  t.same(await flashesAfter(laptop, '/devices'), ['Signed out 3 other devices.'])
  for (const device of others) t.equal(await isLoggedIn(device), false)
  t.equal(await isLoggedIn(laptop), true)
  const left = await laptop.inject({ url: '/devices', headers: { accept: 'text/html' } })
  t.same(devicesOf(left).map((item) => item.current), [true])
  t.notMatch(left.body, 'Sign out all other devices', 'no button without other devices')

  await submit(laptop, '/devices', '/devices', { action: 'sign-out-others' })
  t.same(await flashesAfter(laptop, '/devices'), ['No other device was signed in.'])
})

t.test("another user's login id is refused", async (t) => {
  const { app, dataDir } = await start(t)
  addUser(t, dataDir, 'other')
  const demo = new Device(app, FIREFOX)
  const other = new Device(app, IPHONE)
  await logIn(demo)
  await logIn(other, { username: 'other' })
  const otherLogin = await loginIdOf(other)
  t.same((await devices(demo)).map((item) => item.id).includes(otherLogin), false, "demo's page does not list it")

  for (const loginId of [otherLogin, '', 'not-a-login-id', otherLogin + 'x']) {
    const response = await submit(demo, '/devices', '/devices', { action: 'sign-out', loginId })
    t.equal(response.headers.location, '/devices')
    t.same(await flashesAfter(demo, '/devices'), ['That device was not found: it may have signed out already.'], JSON.stringify(loginId))
  }
  t.equal(await isLoggedIn(other), true, 'the other user stays logged in')
  t.equal(await isLoggedIn(demo), true)
  t.equal((await devices(other)).length, 1)
})

t.test('signing out this device from the devices page logs this browser out', async (t) => {
  const { app } = await start(t)
  const laptop = new Device(app, FIREFOX)
  await logIn(laptop, { remember: true })
  const response = await submit(laptop, '/devices', '/devices', { action: 'sign-out', loginId: await loginIdOf(laptop) })
  t.equal(response.headers.location, '/')
  t.same(await flashesAfter(laptop, '/'), ['You have been logged out.'])
  t.equal(laptop.get('remember_token'), undefined)
  t.equal(await isLoggedIn(laptop), false)
})

t.test('signing devices out needs a fresh login: after a remember-me restore, the password first', async (t) => {
  const { app } = await start(t)
  const laptop = new Device(app, FIREFOX)
  const phone = new Device(app, IPHONE)
  await logIn(laptop, { remember: true })
  await logIn(phone)
  laptop.restartBrowser() // or a copied remember cookie

  const page = await laptop.inject({ url: '/devices', headers: { accept: 'text/html' } })
  t.equal(page.statusCode, 200, 'the list needs a login only')
  t.match(page.body, 'Signing a device out asks for your password first.')
  const token = csrfTokenOf(page)
  const refused = await postForm(laptop, '/devices', { _csrf: token, action: 'sign-out-others' })
  t.equal(refused.statusCode, 302)
  t.equal(refused.headers.location, '/reauthenticate?next=%2Fdevices')
  const phoneLogin = devicesOf(page).find((item) => !item.current)?.id ?? ''
  t.equal((await postForm(laptop, '/devices', { _csrf: token, action: 'sign-out', loginId: phoneLogin })).statusCode, 302)
  t.equal(await isLoggedIn(phone), true, 'nothing was signed out')

  const confirmed = await submit(laptop, '/reauthenticate?next=%2Fdevices', '/reauthenticate', { password: PASSWORD, next: '/devices' })
  t.equal(confirmed.headers.location, '/devices')
  t.notMatch((await laptop.inject({ url: '/devices', headers: { accept: 'text/html' } })).body, 'asks for your password')
  await submit(laptop, '/devices', '/devices', { action: 'sign-out-others' })
  t.equal(await isLoggedIn(phone), false)
})

t.test('a stolen remember-me cookie used after the owner\'s was replaced signs that login out everywhere, and is logged', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk: Buffer, _encoding, done) { lines.push(chunk.toString()); done() } })
  const { app } = await start(t, tempDir(t), { logger: { level: 'warn', stream } })
  const owner = new Device(app, FIREFOX)
  await logIn(owner, { remember: true })
  const login = await loginIdOf(owner)
  const stolen = owner.get('remember_token') ?? ''
  // The owner's browser is restarted twice: each restore replaces the cookie.
  for (let i = 0; i < 2; i++) {
    owner.restartBrowser()
    t.equal(await isLoggedIn(owner), true)
  }
  t.not(owner.get('remember_token'), stolen)

  const thief = new Device(app, IPHONE)
  thief.set('remember_token', stolen)
  t.equal(await isLoggedIn(thief), false, 'the thief is not let in')
  owner.restartBrowser()
  t.equal(await isLoggedIn(owner), false, 'the login is over for the owner too: the password is needed again')
  const other = new Device(app, IPHONE)
  await logIn(other)
  t.notOk((await devices(other)).some((item) => item.id === login), 'and it left the devices page')

  const warnings = lines.filter((line) => line.includes('remember-me cookie was used again'))
  t.equal(warnings.length, 1, 'logged once')
  t.notMatch(warnings.join(''), stolen.slice(0, 20), 'without the cookie')
})

t.test('logins are rows of the SQLite file, next to the sessions: a restart logs nobody out', async (t) => {
  const dataDir = tempDir(t)
  const first = keepAlive(await buildApp({ dataDir }))
  const laptop = new Device(first, FIREFOX)
  await logIn(laptop)
  const loginId = await loginIdOf(laptop)
  await first.close()

  const db = keepAlive(new Database(join(dataDir, 'example.sqlite'), { readonly: true }))
  t.teardown(() => db.close())
  t.same(keepAlive(db.prepare('SELECT id, user_id, remembered FROM logins')).all(), [{ id: loginId, user_id: '1', remembered: 0 }])

  const { app: second } = await start(t, dataDir)
  const again = new Device(second, FIREFOX)
  for (const [name, cookie] of laptop.cookies) again.cookies.set(name, cookie)
  t.equal(await isLoggedIn(again), true, 'the same session, after the restart')
  t.equal(await loginIdOf(again), loginId, 'the same login')
})

t.test('a failing login store answers 503, and logs nobody out', async (t) => {
  const { app, dataDir } = await start(t)
  const laptop = new Device(app, FIREFOX)
  const phone = new Device(app, IPHONE)
  await logIn(laptop)
  await logIn(phone, { remember: true })
  phone.restartBrowser() // only its remember cookie
  const db = keepAlive(new Database(join(dataDir, 'example.sqlite')))
  t.teardown(() => db.close())
  db.exec('ALTER TABLE logins RENAME TO logins_away') // every query of the login store fails now

  for (const [device, url] of [[laptop, '/profile'], [laptop, '/devices'], [phone, '/profile']] as const) {
    const response = await device.inject({ url, headers: { accept: 'text/html' } })
    t.equal(response.statusCode, 503, url)
    t.match(response.body, 'Logins are unavailable for a moment.')
    t.equal(response.headers['retry-after'], '5')
    t.equal(response.headers['set-cookie'], undefined, 'no cookie is set or cleared')
  }
  const api = await laptop.inject({ url: '/api/me', headers: { accept: 'application/json' } })
  t.equal(api.statusCode, 503)
  t.same(api.json(), { error: 'Logins are unavailable for a moment. Try again in a few seconds.' })
  t.equal((await app.inject('/health')).statusCode, 200, 'what loads no user still works')

  db.exec('ALTER TABLE logins_away RENAME TO logins')
  t.equal(await isLoggedIn(laptop), true, 'the session login is still there')
  t.equal(await isLoggedIn(phone), true, 'the remember cookie still logs in')
})

t.test('IDLE_TIMEOUT: a session login ends after that long without a request; remember me logs back in, not fresh', async (t) => {
  const { app } = await start(t, tempDir(t), { idleTimeout: 2 })
  const active = new Device(app, FIREFOX)
  const idle = new Device(app, FIREFOX)
  const home = new Device(app, FIREFOX)
  const remembered = new Device(app, IPHONE)
  for (const device of [idle, home]) {
    await logIn(device)
    await device.inject({ url: '/', headers: { accept: 'text/html' } }) // the redirect, and its "Welcome" flash
  }
  await logIn(remembered, { remember: true })
  const rememberedLogin = await loginIdOf(remembered)
  await logIn(active)

  // Requests 0.8 s apart keep a login going (the activity time is written
  // every 0.2 s, a tenth of the timeout: it may end up to that much early).
  for (let i = 0; i < 3; i++) {
    await sleep(800)
    t.equal(await isLoggedIn(active), true, `active after ${(i + 1) * 0.8} s`)
  }
  await sleep(800) // the others: 3.2 s or more without a request

  const guarded = await idle.inject({ url: '/profile', headers: { accept: 'text/html' } })
  t.equal(guarded.statusCode, 302)
  t.equal(guarded.headers.location, '/login?next=%2Fprofile')
  t.same(await flashesAfter(idle, '/login?next=%2Fprofile'), [EXPIRED], 'the login page says why')

  t.same(await flashesAfter(home, '/'), [EXPIRED], 'so does a page for everybody')
  t.same(await flashesAfter(home, '/'), [], 'once')
  t.equal(await isLoggedIn(home), false)

  const restored = await remembered.inject({ url: '/profile', headers: { accept: 'text/html' } })
  t.equal(restored.statusCode, 200, 'the remember cookie logs it back in')
  t.match(restored.body, 'not fresh: restored from the remember-me cookie')
  t.equal(await loginIdOf(remembered), rememberedLogin, 'as the same device')
  const settings = await remembered.inject({ url: '/settings', headers: { accept: 'text/html' } })
  t.equal(settings.headers.location, '/reauthenticate?next=%2Fsettings', 'settings ask for the password again')
})

t.test('ABSOLUTE_TIMEOUT: a session login ends that long after the login, however active', async (t) => {
  const { app } = await start(t, tempDir(t), { absoluteTimeout: 3 })
  const laptop = new Device(app, FIREFOX)
  await logIn(laptop)
  for (let i = 0; i < 2; i++) {
    await sleep(1000)
    t.equal(await isLoggedIn(laptop), true, `after ${i + 1} s`)
  }
  await sleep(2000)
  t.equal(await isLoggedIn(laptop), false, 'after 4 s')
  t.same(await flashesAfter(laptop, '/login?next=%2Fprofile'), [EXPIRED])
})

t.test('IDLE_TIMEOUT and ABSOLUTE_TIMEOUT are seconds, fractions allowed, 0 for none', async (t) => {
  t.match(configFromEnv({}), { idleTimeout: 1800, absoluteTimeout: 28800 }, 'the defaults')
  t.match(configFromEnv({ IDLE_TIMEOUT: '0.5', ABSOLUTE_TIMEOUT: '3600' }), { idleTimeout: 0.5, absoluteTimeout: 3600 })
  const none = configFromEnv({ IDLE_TIMEOUT: '0', ABSOLUTE_TIMEOUT: '0' })
  t.same([none.idleTimeout, none.absoluteTimeout], [undefined, undefined])
  for (const value of ['-1', 'abc', '1e3', '30m', ' 5', '.5', 'Infinity']) {
    t.throws(() => configFromEnv({ IDLE_TIMEOUT: value }), { message: `IDLE_TIMEOUT must be a number of seconds (fractions allowed, 0 for none), not ${value}` })
  }
  t.throws(() => configFromEnv({ ABSOLUTE_TIMEOUT: 'soon' }), { message: /^ABSOLUTE_TIMEOUT must be/ })
})
