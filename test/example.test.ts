// The example application (example/app.ts, built to dist/example/app.js), in
// process with app.inject and a temporary data folder. The same scenarios run
// in a real browser in e2e.test.ts.
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import t, { type Test } from 'tap'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import './example-build.js'
import { buildApp } from '../dist/example/app.js'
import { CookieJar } from './helpers.js'
import { keepAlive } from './keep-alive.js'

const PASSWORD = 'demo-password'

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-login-example-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

async function start (t: Test, dataDir = tempDir(t)): Promise<{ app: FastifyInstance, dataDir: string }> {
  const app = keepAlive(await buildApp({ dataDir }))
  t.teardown(() => app.close())
  return { app, dataDir }
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
