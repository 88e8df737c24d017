// Several instances, one login (issues 5 and 12): the example application as
// separate processes (`node dist/example/server.js`) sharing one real Redis for
// sessions and logins and one SQLite file for users, driven over HTTP with fetch.
// Redis is started here on a free port, without persistence, in a temporary
// folder; without `redis-server` the tests are skipped (and fail under CI).
import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { createClient } from 'redis'
import t, { type Test } from 'tap'
import { EXAMPLE_SERVER } from './example-build.js'
import { childEnv } from './child-env.js'
import { freePort } from './free-port.js'
import { Browser } from './fetch-browser.js'
import { keepAlive } from './keep-alive.js'
import { requireProgram } from './programs.js'
import { RedisServer, stopProcess, tempDir } from './redis-server.js'
import { buildApp } from '../dist/example/app.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PASSWORD = 'demo-password'
const SESSION_COOKIE = 'session'
const REMEMBER_COOKIE = 'remember_token'
const BROWSER = 'Mozilla/5.0 (redis.test) Browser/1'
const OTHER_BROWSER = 'Mozilla/5.0 (redis.test) Another/2'
const UNAVAILABLE = 'Logins are unavailable for a moment'
/** Users added next to the seeded `demo`, all with its password. */
const EXTRA_USERS = 40

/** How many clients are connected to the Redis on `port` (this query's own connection included). */
function connectedClients (port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    socket.once('error', reject)
    socket.once('connect', () => socket.write('INFO clients\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      const match = /connected_clients:(\d+)/.exec(reply)
      if (match?.[1] !== undefined && reply.endsWith('\r\n')) {
        socket.destroy()
        resolve(Number(match[1]))
      }
    })
  })
}

interface Instance {
  readonly name: string
  readonly base: string
  readonly child: ChildProcess
  /** Everything the process wrote to stdout and stderr so far. */
  readonly output: { stdout: string, stderr: string }
}

/** `node dist/example/server.js` as its own process; resolves once it listens. */
async function startInstance (t: Test, name: string, env: Record<string, string>): Promise<Instance> {
  const port = await freePort()
  const child = spawn(process.execPath, [EXAMPLE_SERVER], {
    cwd: ROOT, env: childEnv({ ...env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' }), stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => stopProcess(child))
  const base = `http://127.0.0.1:${port}`
  const output = { stdout: '', stderr: '' }
  child.stdout.on('data', (chunk: Buffer) => { output.stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output.stderr += chunk.toString() })
  await new Promise<void>((resolve, reject) => {
    const timer = setInterval(() => {
      if (output.stdout.includes(`${base}/`)) {
        clearInterval(timer)
        resolve()
      } else if (child.exitCode !== null) {
        clearInterval(timer)
        reject(new Error(`instance ${name} exited with code ${child.exitCode}:\n${output.stdout}${output.stderr}`))
      }
    }, 20)
  })
  return { name, base, child, output }
}

function csrfTokenOf (page: string): string {
  const match = /name="_csrf" value="([^"]+)"/.exec(page)
  if (match?.[1] === undefined) throw new Error('no CSRF token in the page')
  return match[1]
}

/** GET the login form on `formFrom`, POST it to `postTo` (by default the same instance). */
async function logIn (browser: Browser, formFrom: Instance, { username = 'demo', remember = false, postTo = formFrom } = {}): Promise<void> {
  const form = await browser.request(formFrom.base, '/login')
  const token = csrfTokenOf(await form.text())
  const response = await browser.request(postTo.base, '/login', {
    method: 'POST',
    form: { _csrf: token, username, password: PASSWORD, next: '/', ...(remember ? { remember: 'yes' } : {}) }
  })
  await response.arrayBuffer()
  if (response.status !== 303) throw new Error(`login of ${username} on ${postTo.name} answered ${response.status}`)
}

/** A form on `page` of `instance`, posted with that page's CSRF token. */
async function submit (browser: Browser, instance: Instance, page: string, path: string, fields: Record<string, string>): Promise<Response> {
  const token = csrfTokenOf(await (await browser.request(instance.base, page)).text())
  const response = await browser.request(instance.base, path, { method: 'POST', form: { _csrf: token, ...fields } })
  await response.arrayBuffer()
  return response
}

interface ProfileView {
  status: number
  /** The username on the profile page; null when the browser was sent to the login page. */
  user: string | null
  fresh: boolean | null
  remembered: boolean | null
}

/** What /profile shows this browser on `instance`. */
async function profile (browser: Browser, instance: Instance): Promise<ProfileView> {
  const response = await browser.request(instance.base, '/profile')
  const page = await response.text()
  if (response.status !== 200) {
    return { status: response.status, user: null, fresh: null, remembered: null }
  }
  const user = /<dt>Username<\/dt><dd>([^<]*)<\/dd>/.exec(page)?.[1] ?? null
  const state = /id="login-state">([^<]*)</.exec(page)?.[1] ?? ''
  const remembered = /<dt>Remember-me cookie<\/dt><dd>([^<]*)<\/dd>/.exec(page)?.[1]
  return { status: 200, user, fresh: state.startsWith('fresh'), remembered: remembered === 'yes' }
}

/** Sent to the login page: what an anonymous visitor of /profile gets. */
const ANONYMOUS = { status: 302, user: null, fresh: null, remembered: null }

/** The logins /devices lists to this browser on `instance`: their ids, and which one is this browser's. */
async function devices (browser: Browser, instance: Instance): Promise<Array<{ id: string, current: boolean }>> {
  const response = await browser.request(instance.base, '/devices')
  const page = await response.text()
  if (response.status !== 200) throw new Error(`/devices on ${instance.name} answered ${response.status}`)
  return page.split('<li class="card device"').slice(1).map((item) => ({
    id: /data-login-id="([^"]+)"/.exec(item)?.[1] ?? '',
    current: item.slice(0, item.indexOf('</li>')).includes('This device')
  }))
}

/** The username /api/me answers with the browser's session; null for a 401. */
async function apiMe (browser: Browser, instance: Instance): Promise<{ status: number, username: string | null }> {
  const response = await browser.request(instance.base, '/api/me', { accept: 'application/json' })
  const body = await response.json() as { username?: string }
  return { status: response.status, username: body.username ?? null }
}

if (requireProgram(t, 'redis-server', 'the several-instances tests') !== null) {
  const redis = new RedisServer(await freePort(), tempDir(t, 'redis'))
  await redis.start()
  t.teardown(() => redis.stop())

  const dataDir = tempDir(t, 'data')
  const shared = {
    DATA_DIR: dataDir,
    REDIS_URL: redis.url,
    SESSION_SECRET: 'session secret shared by every instance, 32+ chars',
    LOGIN_SECRET: 'login secret shared by every instance, also 32+ chars'
  }
  // A and B start together on the new data folder (both may seed it), then
  // more users are added, with demo's password hash.
  const [a, b] = await Promise.all([startInstance(t, 'A', shared), startInstance(t, 'B', shared)])
  const db = keepAlive(new Database(join(dataDir, 'example.sqlite')))
  const addUser = keepAlive(db.prepare(`INSERT INTO users (username, display_name, password_hash)
                              SELECT ?, ?, password_hash FROM users WHERE username = 'demo'`))
  for (let i = 1; i <= EXTRA_USERS; i++) addUser.run(`user${i}`, `User ${i}`)
  db.close()
  const [strongA, strongB] = await Promise.all([
    startInstance(t, 'strong A', { ...shared, SESSION_PROTECTION: 'strong' }),
    startInstance(t, 'strong B', { ...shared, SESSION_PROTECTION: 'strong' })
  ])
  const instances = [a, b, strongA, strongB]

  t.test('a login on A is a fresh login on B', async (t) => {
    const browser = new Browser(BROWSER)
    await logIn(browser, a)
    t.same(await profile(browser, b), { status: 200, user: 'demo', fresh: true, remembered: false })
    t.same(await apiMe(browser, b), { status: 200, username: 'demo' })
    t.same(await profile(browser, a), { status: 200, user: 'demo', fresh: true, remembered: false })
  })

  t.test('the login form of A can be posted to B (the CSRF secret is in the shared session)', async (t) => {
    const browser = new Browser(BROWSER)
    await logIn(browser, a, { postTo: b })
    t.same(await apiMe(browser, a), { status: 200, username: 'demo' })
  })

  t.test('the remember cookie of a login on A restores it on B, not fresh, and A then sees that session', async (t) => {
    const browser = new Browser(BROWSER)
    await logIn(browser, a, { remember: true })
    t.ok(browser.cookies.has(REMEMBER_COOKIE))
    browser.cookies.delete(SESSION_COOKIE) // the browser was closed
    t.same(await profile(browser, b), { status: 200, user: 'demo', fresh: false, remembered: true })
    t.ok(browser.cookies.has(SESSION_COOKIE), 'B started a new session')
    const restored = browser.copy()
    restored.cookies.delete(REMEMBER_COOKIE)
    t.same(await profile(restored, a), { status: 200, user: 'demo', fresh: false, remembered: false }, 'the restored session alone is enough on A')
  })

  t.test('a logout on B logs out on A, and the old session cookie is dead on both', async (t) => {
    const browser = new Browser(BROWSER)
    await logIn(browser, a)
    const before = browser.copy()
    const response = await submit(browser, b, '/', '/logout', {})
    t.equal(response.status, 303)
    t.same(await profile(browser, a), ANONYMOUS)
    t.same(await profile(before.copy(), a), ANONYMOUS, 'the cookie from before the logout, on A')
    t.same(await profile(before.copy(), b), ANONYMOUS, 'the cookie from before the logout, on B')
    t.same(await apiMe(before.copy(), a), { status: 401, username: null })
  })

  t.test('a password change through A logs the user out on B: session and remember cookie', async (t) => {
    const username = 'user1'
    const laptop = new Browser(BROWSER)
    await logIn(laptop, a, { username, remember: true })
    const phone = new Browser(OTHER_BROWSER)
    await logIn(phone, b, { username, remember: true })
    const phoneRememberOnly = phone.copy()
    phoneRememberOnly.cookies.delete(SESSION_COOKIE)
    t.same(await profile(phone.copy(), b), { status: 200, user: username, fresh: true, remembered: true }, 'logged in before the change')

    const change = await submit(laptop, a, '/settings', '/settings', {
      action: 'change-password', currentPassword: PASSWORD, newPassword: 'a new password for user1'
    })
    t.equal(change.status, 303)

    t.same(await profile(phone, b), ANONYMOUS, 'the session on B')
    t.notOk(phone.cookies.has(REMEMBER_COOKIE), 'the remember cookie is cleared with it')
    t.same(await profile(phoneRememberOnly, b), ANONYMOUS, 'the remember cookie alone, on B')
    t.notOk(phoneRememberOnly.cookies.has(REMEMBER_COOKIE))
    t.same(await profile(laptop, b), { status: 200, user: username, fresh: true, remembered: true }, 'the browser that changed it stays logged in, on B too')
  })

  t.test('logins are in Redis: a device signed out on A is anonymous on B at its next request', async (t) => {
    const username = 'user2'
    const laptop = new Browser(BROWSER)
    await logIn(laptop, a, { username })
    const phone = new Browser(OTHER_BROWSER)
    await logIn(phone, b, { username, remember: true })
    const phoneRememberOnly = phone.copy()
    phoneRememberOnly.cookies.delete(SESSION_COOKIE)

    const onA = await devices(laptop, a)
    t.same(await devices(laptop, b), onA, 'both instances list the same logins')
    t.equal(onA.length, 2)
    const laptopLogin = onA.find((device) => device.current)?.id ?? ''
    const phoneLogin = onA.find((device) => !device.current)?.id ?? ''
    t.same(await devices(phone, b), [{ id: phoneLogin, current: true }, { id: laptopLogin, current: false }], 'the phone sees itself on B')

    // The records are Redis hashes (fastify-login/redis's layout under the
    // example's prefix); the SQLite file has no logins table.
    const redisClient = await createClient({ url: redis.url }).connect()
    t.teardown(() => redisClient.close())
    const keyOf = (id: string): string => `fastify-login-example:{${id.slice(0, 8)}}:login:${id}`
    t.equal(await redisClient.exists([keyOf(laptopLogin), keyOf(phoneLogin)]), 2, 'both logins are in Redis')
    const sqlite = keepAlive(new Database(join(dataDir, 'example.sqlite'), { readonly: true }))
    t.teardown(() => sqlite.close())
    t.same(keepAlive(sqlite.prepare("SELECT count(*) AS count FROM sqlite_master WHERE name = 'logins'")).get(), { count: 0 })

    const signOut = await submit(laptop, a, '/devices', '/devices', { action: 'sign-out', loginId: phoneLogin })
    t.equal(signOut.status, 303)
    t.equal(await redisClient.exists(keyOf(phoneLogin)), 0, 'the record left Redis')

    t.same(await profile(phone, b), ANONYMOUS, 'the phone on B')
    t.notOk(phone.cookies.has(REMEMBER_COOKIE), 'its remember cookie is cleared')
    t.same(await profile(phoneRememberOnly, a), ANONYMOUS, 'its remember cookie alone, on A')
    t.same(await devices(laptop, b), [{ id: laptopLogin, current: true }], 'the laptop is the only device left, on B too')
  })

  t.test('basic session protection: another client makes the login not fresh, on either instance', async (t) => {
    for (const [loginOn, usedOn] of [[a, b], [b, a]] as const) {
      const browser = new Browser(BROWSER)
      await logIn(browser, loginOn)
      const thief = browser.copy()
      thief.userAgent = OTHER_BROWSER
      t.same(await profile(thief, usedOn), { status: 200, user: 'demo', fresh: false, remembered: false }, `login on ${loginOn.name}, other client on ${usedOn.name}`)
      // The session in Redis was marked not fresh: the owner sees it too, on the other instance.
      t.same(await profile(browser, loginOn), { status: 200, user: 'demo', fresh: false, remembered: false }, `owner on ${loginOn.name}`)
    }
  })

  t.test('strong session protection: another client logs the session out, on either instance', async (t) => {
    for (const [loginOn, usedOn] of [[strongA, strongB], [strongB, strongA]] as const) {
      const browser = new Browser(BROWSER)
      await logIn(browser, loginOn, { remember: true })
      const thief = browser.copy()
      thief.userAgent = OTHER_BROWSER
      t.same(await profile(thief, usedOn), ANONYMOUS, `login on ${loginOn.name}, other client on ${usedOn.name}`)
      t.notOk(thief.cookies.has(REMEMBER_COOKIE), 'the remember cookie is cleared')
      // The login was removed from the session in Redis: the owner's session cookie is anonymous on the first instance.
      browser.cookies.delete(REMEMBER_COOKIE)
      t.same(await profile(browser, loginOn), ANONYMOUS, `owner's session on ${loginOn.name}`)
    }
  })

  t.test('many users at once over both instances: every response names its own user', async (t) => {
    const users = Array.from({ length: EXTRA_USERS }, (_, i) => `user${i + 1}`).filter((name) => name !== 'user1')
    const browsers = await Promise.all(users.map(async (username, i) => {
      const browser = new Browser(BROWSER)
      await logIn(browser, i % 2 === 0 ? a : b, { username })
      return { username, browser }
    }))
    const requests = browsers.flatMap(({ username, browser }, i) => Array.from({ length: 12 }, async (_, j) => {
      const instance = (i + j) % 2 === 0 ? a : b
      const answer = j % 3 === 0 ? (await profile(browser, instance)).user : (await apiMe(browser, instance)).username
      return { username, answer }
    }))
    const results = await Promise.all(requests)
    const wrong = results.filter(({ username, answer }) => answer !== username)
    t.equal(results.length, users.length * 12)
    t.same(wrong, [], 'no response named another user or nobody')
  })

  t.test('closing the app closes its Redis connection', async (t) => {
    const before = await connectedClients(redis.port)
    const app = keepAlive(await buildApp({ dataDir, redisUrl: redis.url, sessionSecret: shared.SESSION_SECRET, loginSecret: shared.LOGIN_SECRET }))
    t.equal(await connectedClients(redis.port), before + 1, 'one connection while it runs')
    await app.close()
    let after = await connectedClients(redis.port)
    for (let i = 0; i < 20 && after !== before; i++) {
      await sleep(25) // Redis notices the closed socket a moment later
      after = await connectedClients(redis.port)
    }
    t.equal(after, before, 'none after close')
  })

  t.test('Redis stopped and started again', async (t) => {
    // An app in this process, closed while Redis is down.
    const inProcess = keepAlive(await buildApp({ dataDir, redisUrl: redis.url, sessionSecret: shared.SESSION_SECRET, loginSecret: shared.LOGIN_SECRET }))
    t.teardown(() => inProcess.close())

    const user = new Browser(BROWSER)
    await logIn(user, a)
    const remembered = new Browser(BROWSER)
    await logIn(remembered, b, { remember: true })
    const rememberOnly = remembered.copy()
    rememberOnly.cookies.delete(SESSION_COOKIE)
    const anonymous = new Browser(BROWSER)

    // Guarded requests in flight while Redis stops: each one is the user, or
    // a 503 that says why (never the login page, a 401 or another user).
    // Ten clients keep requesting until Redis is stopped and the outage has
    // been seen (at most 400 requests each), so the timing cannot miss it.
    const results: Array<{ status: number, right: boolean }> = []
    let stopped = false
    const client = async (worker: number): Promise<void> => {
      for (let i = 0; i < 400; i++) {
        if (stopped && results.some((result) => result.status === 503)) return
        const instance = (worker + i) % 2 === 0 ? a : b
        const html = (worker + i) % 3 === 0
        const response = await user.copy().request(instance.base, html ? '/profile' : '/api/me', { accept: html ? 'text/html' : 'application/json' })
        const body = await response.text()
        const right = response.status === 200
          ? (html ? body.includes('<dt>Username</dt><dd>demo</dd>') : (JSON.parse(body) as { username: string }).username === 'demo')
          : response.status === 503 && body.includes(UNAVAILABLE)
        results.push({ status: response.status, right })
      }
    }
    const traffic = Promise.all(Array.from({ length: 10 }, (_, worker) => client(worker)))
    await sleep(25)
    await redis.stop()
    stopped = true
    await traffic
    const statuses = [...new Set(results.map((result) => result.status))].sort()
    t.same(results.filter((result) => !result.right), [], `every answer is the user or a 503 (statuses seen: ${statuses.join(', ')})`)
    t.ok(results.some((result) => result.status === 503), 'some requests met the stopped Redis')

    await t.test('while Redis is down', async (t) => {
      for (const instance of [a, b]) {
        const started = performance.now()
        const page = await user.copy().request(instance.base, '/profile')
        t.equal(page.status, 503, `/profile with a session on ${instance.name}`)
        t.ok(performance.now() - started < 1000, 'at once: the request does not wait for Redis to come back')
        t.equal(page.headers.get('retry-after'), '5')
        t.match(await page.text(), UNAVAILABLE)
        t.same(page.headers.getSetCookie(), [], 'no cookie is set or cleared')
        const api = await user.copy().request(instance.base, '/api/me', { accept: 'application/json' })
        t.equal(api.status, 503, `/api/me with a session on ${instance.name}`)
        t.match(await api.json(), { error: UNAVAILABLE })
        const restore = await rememberOnly.copy().request(instance.base, '/profile')
        t.equal(restore.status, 503, `/profile with a remember cookie only on ${instance.name}`)
        await restore.arrayBuffer()
        const loginForm = await anonymous.copy().request(instance.base, '/login')
        t.equal(loginForm.status, 503, 'the login form needs a session (its CSRF secret)')
        await loginForm.arrayBuffer()

        // What needs no session keeps working, with or without a session cookie.
        for (const browser of [anonymous, user]) {
          const health = await browser.copy().request(instance.base, '/health', { accept: 'application/json' })
          t.same([health.status, await health.json()], [200, { ok: true }], `/health on ${instance.name}`)
          const css = await browser.copy().request(instance.base, '/style.css', { accept: 'text/css' })
          t.equal(css.status, 200, `/style.css on ${instance.name}`)
          await css.arrayBuffer()
        }
        const home = await anonymous.copy().request(instance.base, '/')
        t.equal(home.status, 200, `an anonymous home page on ${instance.name}`)
        await home.arrayBuffer()
      }

      const started = performance.now()
      await inProcess.close()
      t.ok(performance.now() - started < 1000, 'an app closes at once, without waiting for Redis')
    })

    for (const instance of [a, b]) {
      t.equal(instance.child.exitCode, null, `${instance.name} is still running`)
      t.equal(instance.output.stderr, '', `${instance.name} wrote nothing to stderr (no unhandled rejection)`)
      const outage = instance.output.stdout.split('\n').filter((line) => line.includes('Redis is unavailable'))
      t.equal(outage.length, 1, `${instance.name} logged the outage once`)
    }

    await redis.start()
    await t.test('after Redis is back, on the same port', async (t) => {
      // The apps reconnect on their own within a second or so.
      for (const instance of [a, b]) {
        let status = 0
        for (let i = 0; i < 50 && status !== 302; i++) {
          if (i > 0) await sleep(100)
          status = (await profile(new Browser(BROWSER), instance)).status
        }
        t.equal(status, 302, `${instance.name} answers again`)
      }
      const fresh = new Browser(BROWSER)
      await logIn(fresh, b, { postTo: a })
      t.same(await profile(fresh, b), { status: 200, user: 'demo', fresh: true, remembered: false }, 'a new login works, across instances')

      // Redis kept nothing: the sessions from before are gone...
      t.same(await profile(user.copy(), a), ANONYMOUS, 'a session from before the outage is gone')
      // ...and so are the login records, which remember cookies name: they
      // log nobody in any more (with persistence, both would have survived).
      const cookieOnly = rememberOnly.copy()
      t.same(await profile(cookieOnly, a), ANONYMOUS, 'a remember cookie from before the outage logs nobody in')
      t.notOk(cookieOnly.cookies.has(REMEMBER_COOKIE), 'and is cleared')
    })

    for (const instance of instances) {
      t.equal(instance.child.exitCode, null, `${instance.name} is still running`)
      t.equal(instance.output.stderr, '', `${instance.name} wrote nothing to stderr`)
    }
  })
}
