// Register-time validation of the options, the environment checks and the
// resolved defaults on app.loginManager.options (SPEC sections 2 and 3).
import t from 'tap'
import { inspect } from 'node:util'
import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin, {
  DEFAULT_EXEMPT_METHODS, DEFAULT_EXPIRED_MESSAGE, DEFAULT_LOGIN_MESSAGE, DEFAULT_MESSAGE_CATEGORY, DEFAULT_NEEDS_REFRESH_MESSAGE,
  DEFAULT_NEXT_FIELD, DEFAULT_REMEMBER_COOKIE_NAME, DEFAULT_REMEMBER_DURATION, FST_LOGIN_INVALID_OPTION,
  MIN_SECRET_LENGTH, type FastifyLoginOptions
} from '../lib/index.js'
import { buildApp, CookieJar, LOGIN_SECRET, SESSION_SECRET } from './helpers.js'

type TestContext = Parameters<Parameters<typeof t.test>[0]>[0]

const SENTINEL = 'SENTINEL-sentinel'
const loader = (): null => null

interface Environment {
  cookie?: boolean
  session?: boolean
}

// Registers fastify-login with `options` and returns the error of ready().
async function registerError (options: unknown, environment: Environment = {}): Promise<Error & { code?: string }> {
  const app = Fastify()
  if (environment.cookie !== false) app.register(fastifyCookie)
  if (environment.session !== false) app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false } })
  app.register(fastifyLogin, options as FastifyLoginOptions)
  try {
    await app.ready()
  } catch (error) {
    return error as Error & { code?: string }
  }
  await app.close()
  throw new Error('ready() succeeded')
}

async function registers (options: unknown): Promise<boolean> {
  const app = Fastify()
  app.register(fastifyCookie)
  app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false } })
  app.register(fastifyLogin, options as FastifyLoginOptions)
  await app.ready()
  await app.close()
  return true
}

function assertHelpful (t: TestContext, error: Error & { code?: string }, code: string, advice: RegExp, label: string): void {
  t.equal(error.code, code, `${label}: code`)
  t.match(error.message, advice, `${label}: the message says what to do`)
  for (const text of [error.message, error.stack ?? '', inspect(error)]) {
    t.notOk(text.includes(LOGIN_SECRET) || text.includes(SENTINEL), `${label}: no secret in the error`)
  }
}

t.test('the environment', async (t) => {
  t.test('fails without a session plugin', async (t) => {
    const error = await registerError({ secret: LOGIN_SECRET, userLoader: loader }, { session: false })
    assertHelpful(t, error, 'FST_LOGIN_MISSING_SESSION', /register @fastify\/session/, 'no session')
  })

  t.test('fails without @fastify/cookie', async (t) => {
    const error = await registerError({ secret: LOGIN_SECRET, userLoader: loader }, { cookie: false, session: false })
    assertHelpful(t, error, 'FST_LOGIN_MISSING_COOKIE', /register it|@fastify\/cookie/, 'no cookie')
  })

  t.test('fails on register, not at the first request', async (t) => {
    const app = Fastify()
    await app.register(fastifyCookie)
    await t.rejects(async () => { await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: loader }) }, { code: 'FST_LOGIN_MISSING_SESSION' })
  })
})

t.test('the secret', async (t) => {
  const cases: Array<[string, unknown]> = [
    ['missing', undefined],
    ['empty', ''],
    ['31 characters', `${SENTINEL}${'x'.repeat(MIN_SECRET_LENGTH - 1 - SENTINEL.length)}`],
    ['a number', 1234567890123456],
    ['a Buffer', Buffer.from(`${SENTINEL}${'x'.repeat(40)}`)],
    ['an empty array', []],
    ['an array with a short entry', [LOGIN_SECRET, `${SENTINEL}-short`]],
    ['an array with a non-string', [LOGIN_SECRET, 42]]
  ]
  for (const [label, secret] of cases) {
    t.test(`fails when ${label}`, async (t) => {
      const error = await registerError({ secret, userLoader: loader })
      assertHelpful(t, error, 'FST_LOGIN_MISSING_SECRET', /`secret`.*32 characters/, label)
    })
  }

  t.test('accepts exactly 32 characters', async (t) => {
    t.ok(await registers({ secret: 'x'.repeat(MIN_SECRET_LENGTH), userLoader: loader }))
  })

  t.test('accepts an array of long secrets', async (t) => {
    t.ok(await registers({ secret: [LOGIN_SECRET, 'y'.repeat(40)], userLoader: loader }))
  })
})

t.test('an array secret signs with the first entry and verifies with all', async (t) => {
  const oldSecret = 'old-secret-of-at-least-32-characters-long'
  const newSecret = 'new-secret-of-at-least-32-characters-long'

  t.test('remember-me works with an array secret', async (t) => {
    const { app } = await buildApp({ login: { secret: [newSecret, oldSecret] } })
    const jar = new CookieJar(app)
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    jar.restartBrowser()
    t.match((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, remembered: true })
  })

  t.test('a cookie signed with the old secret is accepted after rotation, not after removal', async (t) => {
    const before = (await buildApp({ login: { secret: oldSecret } })).app
    const jar = new CookieJar(before)
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    const cookie = jar.get('remember_token')
    t.ok(cookie)

    const rotated = (await buildApp({ login: { secret: [newSecret, oldSecret] } })).app
    const rotatedJar = new CookieJar(rotated)
    rotatedJar.set('remember_token', cookie as string)
    t.equal((await rotatedJar.inject('/')).json().user, 'Ann')

    const removed = (await buildApp({ login: { secret: [newSecret] } })).app
    const removedJar = new CookieJar(removed)
    removedJar.set('remember_token', cookie as string)
    t.equal((await removedJar.inject('/')).json().authenticated, false)
  })
})

t.test('the loaders', async (t) => {
  t.test('fails without userLoader and requestLoader', async (t) => {
    const error = await registerError({ secret: LOGIN_SECRET })
    assertHelpful(t, error, 'FST_LOGIN_MISSING_LOADER', /userLoader/, 'no loader')
  })

  t.test('accepts a requestLoader alone', async (t) => {
    t.ok(await registers({ secret: LOGIN_SECRET, requestLoader: loader }))
  })

  for (const name of ['userLoader', 'requestLoader']) {
    for (const value of ['load', 42, {}, null]) {
      t.test(`fails when ${name} is ${JSON.stringify(value)}`, async (t) => {
        const error = await registerError({ secret: LOGIN_SECRET, userLoader: loader, [name]: value })
        assertHelpful(t, error, 'FST_LOGIN_INVALID_OPTION', new RegExp(`\`${name}\` must be a function`), name)
        t.ok(error instanceof FST_LOGIN_INVALID_OPTION, 'an instance of the exported error class')
      })
    }
  }
})

t.test('invalid options fail ready() with FST_LOGIN_INVALID_OPTION', async (t) => {
  const cases: Array<[string, Partial<Record<keyof FastifyLoginOptions, unknown>>, RegExp]> = [
    ['sessionProtection "medium"', { sessionProtection: 'medium' }, /`sessionProtection` must be 'basic', 'strong' or false/],
    ['sessionProtection true', { sessionProtection: true }, /sessionProtection/],
    ['sessionProtection "Strong"', { sessionProtection: 'Strong' }, /sessionProtection/],
    ['sessionProtection null', { sessionProtection: null }, /sessionProtection/],
    ['remember.duration 0', { remember: { duration: 0 } }, /`remember\.duration` must be a positive, finite number of seconds/],
    ['remember.duration -1', { remember: { duration: -1 } }, /remember\.duration/],
    ['remember.duration Infinity', { remember: { duration: Infinity } }, /remember\.duration/],
    ['remember.duration NaN', { remember: { duration: NaN } }, /remember\.duration/],
    ['remember.duration "3600"', { remember: { duration: '3600' } }, /remember\.duration/],
    ['remember.duration just over 100 years', { remember: { duration: 3155760001 } }, /`remember\.duration` must be .*at most 3155760000 \(100 years\)/],
    ['remember.duration 1e13', { remember: { duration: 1e13 } }, /at most 3155760000/],
    ['remember.duration Number.MAX_VALUE', { remember: { duration: Number.MAX_VALUE } }, /at most 3155760000/],
    ['remember.sameSite none with the default secure', { remember: { sameSite: 'none' } }, /sameSite.*none.*needs `remember\.secure: true`/],
    ['remember.sameSite none with secure auto', { remember: { sameSite: 'none', secure: 'auto' } }, /remember\.secure: true/],
    ['remember.sameSite none with secure false', { remember: { sameSite: 'none', secure: false } }, /remember\.secure: true/],
    ['remember.sameSite "None"', { remember: { sameSite: 'None' } }, /remember\.sameSite/],
    ['remember.secure "yes"', { remember: { secure: 'yes' } }, /remember\.secure/],
    ['remember.httpOnly "no"', { remember: { httpOnly: 'no' } }, /remember\.httpOnly/],
    ['remember.cookieName ""', { remember: { cookieName: '' } }, /remember\.cookieName/],
    ['remember a string', { remember: 'forever' }, /`remember` must be an object/],
    ['forceHostForRedirects with a path', { forceHostForRedirects: 'good.com/login' }, /`forceHostForRedirects` must be a host name/],
    ['forceHostForRedirects with userinfo', { forceHostForRedirects: 'user@good.com' }, /forceHostForRedirects/],
    ['forceHostForRedirects a URL', { forceHostForRedirects: 'https://good.com' }, /forceHostForRedirects/],
    ['forceHostForRedirects with a bad port', { forceHostForRedirects: 'good.com:99999' }, /forceHostForRedirects/],
    ['forceHostForRedirects with a query', { forceHostForRedirects: 'good.com?x=1' }, /forceHostForRedirects/],
    ['forceHostForRedirects with a fragment', { forceHostForRedirects: 'good.com#top' }, /forceHostForRedirects/],
    ['forceHostForRedirects with a space', { forceHostForRedirects: 'good .com' }, /forceHostForRedirects/],
    ['forceHostForRedirects ""', { forceHostForRedirects: '' }, /forceHostForRedirects/],
    ['forceHostForRedirects a number', { forceHostForRedirects: 42 }, /forceHostForRedirects/],
    ['exemptMethods a string', { exemptMethods: 'OPTIONS' }, /`exemptMethods` must be an array/],
    ['exemptMethods with a number', { exemptMethods: ['OPTIONS', 1] }, /exemptMethods/],
    ['loginView a number', { loginView: 42 }, /loginView/],
    ['loginView ""', { loginView: '' }, /loginView/],
    ['refreshView an object', { refreshView: {} }, /refreshView/],
    ['loginMessage a number', { loginMessage: 42 }, /`loginMessage` must be a string or false/],
    ['needsRefreshMessage true', { needsRefreshMessage: true }, /needsRefreshMessage/],
    ['loginMessageCategory ""', { loginMessageCategory: '' }, /loginMessageCategory/],
    ['nextField ""', { nextField: '' }, /nextField/],
    ['useSessionForNext "true"', { useSessionForNext: 'true' }, /useSessionForNext/],
    ['regenerateSession 1', { regenerateSession: 1 }, /regenerateSession/],
    ['loginRequiredByDefault "yes"', { loginRequiredByDefault: 'yes' }, /loginRequiredByDefault/],
    ['freshMaxAge 0', { freshMaxAge: 0 }, /freshMaxAge/],
    ['freshMaxAge NaN', { freshMaxAge: NaN }, /freshMaxAge/],
    ['anonymousUser an object', { anonymousUser: {} }, /`anonymousUser` must be a function/],
    ['getUserId a string', { getUserId: 'id' }, /getUserId/],
    ['localize a string', { localize: 'de' }, /localize/],
    ['unauthorizedHandler a string', { unauthorizedHandler: '/login' }, /unauthorizedHandler/],
    ['needsRefreshHandler a number', { needsRefreshHandler: 1 }, /needsRefreshHandler/],
    ['sessionIdentifier a string', { sessionIdentifier: 'ip' }, /sessionIdentifier/],
    ['sessionVersion a number', { sessionVersion: 1 }, /sessionVersion/]
  ]
  for (const [label, extra, advice] of cases) {
    t.test(label, async (t) => {
      const error = await registerError({ secret: LOGIN_SECRET, userLoader: loader, ...extra })
      assertHelpful(t, error, 'FST_LOGIN_INVALID_OPTION', advice, label)
    })
  }

  t.test("accepts sameSite 'none' with secure true", async (t) => {
    t.ok(await registers({ secret: LOGIN_SECRET, userLoader: loader, remember: { sameSite: 'none', secure: true } }))
  })

  t.test('accepts a remember.duration of 100 years', async (t) => {
    t.ok(await registers({ secret: LOGIN_SECRET, userLoader: loader, remember: { duration: 100 * 365.25 * 24 * 3600 } }))
  })

  t.test('accepts a host with a port for forceHostForRedirects', async (t) => {
    t.ok(await registers({ secret: LOGIN_SECRET, userLoader: loader, forceHostForRedirects: 'good.com:8443' }))
  })
})

t.test('app.loginManager.options', async (t) => {
  t.test('shows the defaults of SPEC section 3', async (t) => {
    const { app } = await buildApp({ routes: false })
    t.strictSame({ ...app.loginManager.options, remember: { ...app.loginManager.options.remember } }, {
      loginView: undefined,
      loginMessage: 'Please log in to access this page.',
      loginMessageCategory: 'message',
      refreshView: undefined,
      needsRefreshMessage: 'Please reauthenticate to access this page.',
      needsRefreshMessageCategory: 'message',
      sessionProtection: 'basic',
      useSessionForNext: false,
      nextField: 'next',
      exemptMethods: ['OPTIONS'],
      forceHostForRedirects: undefined,
      remember: {
        cookieName: 'remember_token',
        duration: 31536000,
        domain: undefined,
        path: '/',
        secure: 'auto',
        httpOnly: true,
        sameSite: 'lax',
        refreshEachRequest: false,
        rotationGrace: 60
      },
      freshMaxAge: undefined,
      regenerateSession: true,
      loginRequiredByDefault: false,
      dropOnLogin: ['_csrf'],
      idleTimeout: undefined,
      absoluteTimeout: undefined,
      expiredMessage: 'Your session has expired. Please log in again.',
      expiredMessageCategory: 'message',
      loginDisabled: false
    })
  })

  t.test('the exported default constants match', async (t) => {
    const { app } = await buildApp({ routes: false })
    const { options } = app.loginManager
    t.equal(options.loginMessage, DEFAULT_LOGIN_MESSAGE)
    t.equal(options.needsRefreshMessage, DEFAULT_NEEDS_REFRESH_MESSAGE)
    t.equal(options.expiredMessage, DEFAULT_EXPIRED_MESSAGE)
    t.equal(options.loginMessageCategory, DEFAULT_MESSAGE_CATEGORY)
    t.equal(options.nextField, DEFAULT_NEXT_FIELD)
    t.strictSame([...options.exemptMethods], [...DEFAULT_EXEMPT_METHODS])
    t.equal(options.remember.cookieName, DEFAULT_REMEMBER_COOKIE_NAME)
    t.equal(options.remember.duration, DEFAULT_REMEMBER_DURATION)
    t.equal(MIN_SECRET_LENGTH, 32)
  })

  t.test('shows the values given, with remember defaults filled in', async (t) => {
    const { app } = await buildApp({
      routes: false,
      login: {
        loginView: '/signin',
        sessionProtection: 'strong',
        exemptMethods: ['options', 'head'],
        remember: { duration: 3600, sameSite: 'strict' },
        freshMaxAge: 600
      }
    })
    const { options } = app.loginManager
    t.equal(options.loginView, '/signin')
    t.equal(options.sessionProtection, 'strong')
    t.strictSame([...options.exemptMethods], ['OPTIONS', 'HEAD'])
    t.match(options.remember, { duration: 3600, sameSite: 'strict', cookieName: 'remember_token', httpOnly: true, path: '/' })
    t.equal(options.freshMaxAge, 600)
  })

  t.test('is frozen', async (t) => {
    const { app } = await buildApp({ routes: false })
    const { options } = app.loginManager
    t.ok(Object.isFrozen(options))
    t.ok(Object.isFrozen(options.remember))
    t.ok(Object.isFrozen(options.exemptMethods))
  })

  t.test('does not expose the secret', async (t) => {
    const { app } = await buildApp({ routes: false, login: { secret: [LOGIN_SECRET, `${SENTINEL}-${'z'.repeat(32)}`] } })
    const { options } = app.loginManager
    t.notOk('secret' in options)
    t.notOk('secrets' in options)
    for (const text of [JSON.stringify(options), inspect(options, { depth: null, showHidden: true }), inspect(app.loginManager, { depth: null, showHidden: true })]) {
      t.notOk(text.includes(LOGIN_SECRET) || text.includes(SENTINEL))
    }
  })
})

t.test("the caller's options object is not mutated", async (t) => {
  const remember = { duration: 3600 }
  const exemptMethods = ['options']
  const secret = [LOGIN_SECRET]
  const options = { secret, userLoader: loader, remember, exemptMethods, loginView: '/login' }
  const snapshot = { ...options, remember: { ...remember }, exemptMethods: [...exemptMethods], secret: [...secret] }
  for (const value of [options, remember, exemptMethods, secret]) Object.freeze(value)
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false } })
  await app.register(fastifyLogin, options)
  await app.ready()
  t.strictSame(options, snapshot)
  t.equal(options.remember, remember)
  t.equal(app.loginManager.options.remember.path, '/', 'defaults live in the resolved copy')
  t.not(app.loginManager.options.exemptMethods, exemptMethods)
  await app.close()
})
