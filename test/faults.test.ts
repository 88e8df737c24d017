// The user loader under faults: a loader that finds nobody logs the stored id
// out; a loader that throws fails only that request, falls back to nobody,
// keeps the login for when the database is back, and leaks no secrets.
import t from 'tap'
import type { FastifyError, LightMyRequestResponse } from 'fastify'
import type { LoginUser } from '../lib/index.js'
import { buildApp, CookieJar, LOGIN_SECRET, SESSION_SECRET, type BuildOptions } from './helpers.js'

const COOKIE = 'remember_token'
const OLD_SECRET = 'an-older-login-secret-still-in-the-rotation-list'

type Mode = 'ok' | 'null' | 'undefined' | 'throw' | 'throw-sync' | 'reject-empty' | 'throw-sync-empty'

interface SessionView {
  get (key: string): unknown
}

// An app whose loader can be switched between working, finding nobody and
// failing, with a route that shows the session's user id without loading.
async function faultyApp (options: BuildOptions = {}) {
  const calls: string[] = []
  let handled = 0
  const control = { mode: 'ok' as Mode }
  const built = await buildApp({
    ...options,
    login: {
      userLoader: (id: string) => {
        calls.push(id)
        if (control.mode === 'throw-sync') throw new Error('database unavailable')
        if (control.mode === 'throw') return Promise.reject(new Error('database unavailable'))
        // eslint-disable-next-line prefer-promise-reject-errors -- a careless loader, on purpose
        if (control.mode === 'reject-empty') return Promise.reject(undefined)
        // eslint-disable-next-line no-throw-literal -- a careless loader, on purpose
        if (control.mode === 'throw-sync-empty') throw undefined
        if (control.mode === 'null') return null
        if (control.mode === 'undefined') return undefined
        return Promise.resolve((built.users.get(id) ?? null) as unknown as LoginUser | null)
      },
      ...options.login
    }
  })
  const { app } = built
  app.get('/session-user', { config: { login: false } }, async (request) => ({
    userId: (request.session as unknown as SessionView).get('_user_id') ?? null
  }))
  app.addHook('preHandler', async () => { handled++ })
  return {
    ...built,
    calls,
    control,
    handlerRuns: () => handled
  }
}

function cookieSet (response: LightMyRequestResponse, name: string) {
  return response.cookies.find((cookie) => cookie.name === name)
}

function isCleared (response: LightMyRequestResponse, name: string): boolean {
  const cookie = cookieSet(response, name)
  return cookie !== undefined && cookie.value === '' && cookie.maxAge === 0
}

async function sessionUser (jar: CookieJar): Promise<unknown> {
  return (await jar.inject('/session-user')).json().userId
}

t.test('a loader that finds nobody for the session id', async (t) => {
  for (const mode of ['null', 'undefined'] as const) {
    t.test(`returning ${mode}: anonymous, and the id leaves the session`, async (t) => {
      const { app, calls, control } = await faultyApp()
      const jar = new CookieJar(app)
      await jar.inject({ method: 'POST', url: '/login/1' })
      t.equal(await sessionUser(jar), '1', 'control: the session holds the login')
      control.mode = mode
      const response = await jar.inject('/')
      t.equal(response.statusCode, 200)
      t.equal(response.json().authenticated, false)
      t.equal(await sessionUser(jar), null, 'the id is gone from the session')
      control.mode = 'ok'
      calls.length = 0
      t.equal((await jar.inject('/')).json().authenticated, false, 'still anonymous once the user exists again')
      t.same(calls, [], 'no loader call: nothing left to load')
    })
  }
})

t.test('a loader that finds nobody for the session id clears the remember cookie', async (t) => {
  // Flask: the cookie of a user who no longer exists must not linger.
  const { app, control } = await faultyApp()
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  t.ok(jar.get(COOKIE), 'control: remembered')
  control.mode = 'null'
  const response = await jar.inject('/')
  t.equal(response.json().authenticated, false)
  t.ok(isCleared(response, COOKIE), 'the remember cookie is cleared')
  t.equal(jar.get(COOKIE), undefined)
  t.equal(await sessionUser(jar), null)
})

t.test('a loader that finds nobody for the remember cookie id: anonymous and cleared', async (t) => {
  const { app, control } = await faultyApp()
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.delete('sessionId')
  control.mode = 'null'
  const response = await jar.inject('/')
  t.equal(response.json().authenticated, false)
  t.ok(isCleared(response, COOKIE))
  t.equal(await sessionUser(jar), null, 'the id was not written to a session')
})

t.test('a throwing loader fails the request through the error handler', async (t) => {
  for (const mode of ['throw', 'throw-sync'] as const) {
    for (const source of ['session', 'remember cookie'] as const) {
      t.test(`${mode}, ${source}`, async (t) => {
        const { app, control, handlerRuns } = await faultyApp()
        const seen: FastifyError[] = []
        app.setErrorHandler(async (error: FastifyError, _request, reply) => {
          seen.push(error)
          return reply.code(503).send({ handled: true })
        })
        const jar = new CookieJar(app)
        await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
        if (source === 'remember cookie') jar.delete('sessionId')
        const before = handlerRuns()
        await jar.inject('/session-user')
        t.equal(handlerRuns(), before + 1, 'control: the counter sees handled requests')
        control.mode = mode
        const response = await jar.inject('/')
        t.equal(response.statusCode, 503)
        t.same(response.json(), { handled: true })
        t.equal(seen.length, 1)
        t.equal(seen[0]?.message, 'database unavailable', 'the loader\'s own error')
        t.equal(handlerRuns(), before + 1, 'the route never runs')
      })
    }
  }
})

t.test('a loader that throws or rejects without an Error still fails the request', async (t) => {
  for (const [mode, verb] of [['reject-empty', 'rejects'], ['throw-sync-empty', 'throws']] as const) {
    for (const source of ['session', 'remember cookie'] as const) {
      t.test(`${verb} undefined, ${source}`, async (t) => {
        const { app, control, handlerRuns } = await faultyApp()
        const jar = new CookieJar(app)
        await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
        if (source === 'remember cookie') jar.delete('sessionId')
        const before = handlerRuns()
        control.mode = mode
        const response = await jar.inject('/')
        t.equal(response.statusCode, 500)
        t.equal(response.json().code, 'FST_LOGIN_LOADER_FAILED')
        t.match(response.json().message, /threw or rejected with undefined/)
        t.equal(handlerRuns(), before, 'the route never runs')
      })
    }
  }
  const careless = {
    // eslint-disable-next-line prefer-promise-reject-errors -- a careless loader, on purpose
    rejects: async () => await Promise.reject(null),
    // eslint-disable-next-line no-throw-literal -- a careless loader, on purpose
    throws: () => { throw null }
  }
  for (const [verb, requestLoader] of Object.entries(careless)) {
    t.test(`requestLoader ${verb} null`, async (t) => {
      const { app } = await buildApp({ login: { requestLoader } })
      const response = await app.inject('/')
      t.equal(response.statusCode, 500)
      t.equal(response.json().code, 'FST_LOGIN_LOADER_FAILED')
      t.match(response.json().message, /threw or rejected with null/)
    })
  }
  t.test('requestLoader rejects with a string: its type is named, not its value', async (t) => {
    // eslint-disable-next-line prefer-promise-reject-errors -- a careless loader, on purpose
    const { app } = await buildApp({ login: { requestLoader: async () => await Promise.reject('token sk_live_123 refused') } })
    const response = await app.inject('/')
    t.equal(response.statusCode, 500)
    t.equal(response.json().code, 'FST_LOGIN_LOADER_FAILED')
    t.match(response.json().message, /threw or rejected with a value of type string\)$/)
    t.notMatch(response.body, /sk_live_123/, 'what the loader rejected with may be a secret: it is not shown')
  })
})

t.test('a sessionVersion that throws after an asynchronous loader fails the request', async (t) => {
  let versionStoreDown = false
  const { app, handlerRuns } = await faultyApp({
    login: {
      sessionVersion: () => {
        if (versionStoreDown) throw new Error('version store down')
        return '1'
      }
    }
  })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.equal((await jar.inject('/')).json().user, 'Ann', 'loaded through the asynchronous loader')
  const before = handlerRuns()
  versionStoreDown = true
  const response = await jar.inject('/')
  t.equal(response.statusCode, 500)
  t.equal(response.json().message, 'version store down')
  t.equal(handlerRuns(), before, 'the route never runs')
})

t.test('with the default error handler a throwing loader gives a 500', async (t) => {
  const { app, control } = await faultyApp()
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  control.mode = 'throw'
  const response = await jar.inject('/protected')
  t.equal(response.statusCode, 500)
  t.equal(response.json().statusCode, 500)
  t.notMatch(response.body, /Ann/, 'no user data in the error')
})

t.test('a throwing loader never falls back to another user', async (t) => {
  const requestLoaderCalls: string[] = []
  const { app, users, calls, control } = await faultyApp({
    login: {
      requestLoader: (request) => {
        requestLoaderCalls.push(request.url)
        return users.get('2') as unknown as LoginUser
      }
    }
  })
  // A session of Ann and a remember cookie of Bob, in one browser.
  const bob = new CookieJar(app)
  await bob.inject({ method: 'POST', url: '/login/2?remember=1' })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  jar.cookies.set(COOKIE, bob.cookies.get(COOKIE)!)
  calls.length = 0
  requestLoaderCalls.length = 0
  control.mode = 'throw'
  const response = await jar.inject('/')
  t.equal(response.statusCode, 500)
  t.notMatch(response.body, /Bob|Ann/)
  t.same(calls, ['1'], 'only the session user was asked for')
  t.same(requestLoaderCalls, [], 'the request loader is not a fallback')

  const cookieOnly = bob.clone()
  cookieOnly.delete('sessionId')
  calls.length = 0
  const restore = await cookieOnly.inject('/')
  t.equal(restore.statusCode, 500)
  t.same(calls, ['2'])
  t.same(requestLoaderCalls, [], 'not after a failed cookie restore either')
})

t.test('a throwing loader keeps the session login and the remember cookie', async (t) => {
  const { app, control } = await faultyApp()
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const session = jar.get('sessionId')
  const remember = jar.get(COOKIE)
  control.mode = 'throw'
  const failed = await jar.inject('/')
  t.equal(failed.statusCode, 500)
  t.equal(cookieSet(failed, COOKIE), undefined, 'the remember cookie is not touched')
  t.notOk(isCleared(failed, 'sessionId'), 'the session cookie is not cleared')
  t.equal(jar.get('sessionId'), session)
  t.equal(jar.get(COOKIE), remember)
  control.mode = 'ok'
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: true },
    'the same fresh session login works once the database is back')
})

t.test('a throwing loader keeps a remember cookie that had no session', async (t) => {
  const { app, control } = await faultyApp()
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  jar.delete('sessionId')
  control.mode = 'throw'
  const failed = await jar.inject('/')
  t.equal(failed.statusCode, 500)
  t.equal(cookieSet(failed, COOKIE), undefined, 'not cleared')
  t.equal(await sessionUser(jar), null, 'no login written')
  control.mode = 'ok'
  const restored = await jar.inject('/')
  t.equal(restored.json().user, 'Ann', 'restored once the database is back')
  t.equal(restored.json().fresh, false)
})

t.test('neither logs nor error responses contain cookie values or secrets', async (t) => {
  const lines: string[] = []
  const stream = { write (line: string) { lines.push(line) } }
  const { app, control } = await faultyApp({
    fastify: { logger: { level: 'trace', stream } },
    login: { secret: [LOGIN_SECRET, OLD_SECRET] }
  })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const session = jar.get('sessionId')!
  const remember = jar.get(COOKIE)!
  control.mode = 'throw'
  const bodies: string[] = []
  bodies.push((await jar.inject('/')).body)
  bodies.push((await jar.inject('/protected')).body)
  const cookieOnly = jar.clone()
  cookieOnly.delete('sessionId')
  bodies.push((await cookieOnly.inject('/')).body)
  control.mode = 'throw-sync'
  bodies.push((await jar.inject('/')).body)
  await app.close()

  t.ok(lines.some((line) => line.includes('database unavailable')), 'control: the failures are logged')
  t.ok(bodies.every((body) => body.includes('"statusCode":500')), 'control: every request failed')
  const needles: Record<string, string> = {
    'the remember cookie': remember,
    'the encoded remember cookie': encodeURIComponent(remember),
    'the remember MAC': remember.slice(remember.lastIndexOf('.') + 1),
    'the session cookie': session,
    'the encoded session cookie': encodeURIComponent(session),
    'the session id': session.slice(0, session.lastIndexOf('.')),
    'the login secret': LOGIN_SECRET,
    'the older login secret': OLD_SECRET,
    'the session secret': SESSION_SECRET
  }
  for (const [name, needle] of Object.entries(needles)) {
    t.notOk(lines.some((line) => line.includes(needle)), `no log line contains ${name}`)
    t.notOk(bodies.some((body) => body.includes(needle)), `no error body contains ${name}`)
  }
})

t.test('a loader that finds nobody logs nothing secret either', async (t) => {
  const lines: string[] = []
  const stream = { write (line: string) { lines.push(line) } }
  const { app, control } = await faultyApp({ fastify: { logger: { level: 'trace', stream } } })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const remember = jar.get(COOKIE)!
  control.mode = 'null'
  const response = await jar.inject('/')
  t.equal(response.json().authenticated, false)
  await app.close()
  t.ok(lines.length > 0, 'control: requests were logged')
  t.notOk(lines.some((line) => line.includes(remember) || line.includes(encodeURIComponent(remember))))
  t.notOk(lines.some((line) => line.includes(LOGIN_SECRET)))
})

t.test('Ann is anonymous, not someone else, after her user is deleted', async (t) => {
  const { app, users } = await faultyApp()
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  users.delete('1')
  const response = await jar.inject('/')
  t.same(response.json(), { user: null, authenticated: false, fresh: false, remembered: false })
  t.equal((await jar.inject('/protected')).statusCode, 401)
})
