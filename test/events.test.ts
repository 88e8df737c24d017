// Lifecycle events: listeners on app.loginManager, and the same payloads on
// node:diagnostics_channel as `fastify-login:<name>`.
import t, { type Test } from 'tap'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { setTimeout } from 'node:timers/promises'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { EVENT_NAMES, MemoryLoginStore, type LoginEventName, type LoginUser } from '../lib/index.js'
import { buildApp, CookieJar, makeUsers, type BuildOptions } from './helpers.js'

interface Payload {
  request?: FastifyRequest
  user?: LoginUser
}

interface Heard {
  /** The request id of each payload. */
  requestIds: string[]
  /** The name of each payload's user, or null without one. */
  users: Array<string | null>
  /** Whether each payload has a `user` key at all. */
  hasUser: boolean[]
}

function record (): { heard: Heard, listener: (payload: Payload) => void } {
  const heard: Heard = { requestIds: [], users: [], hasUser: [] }
  const listener = (payload: Payload): void => {
    heard.requestIds.push(payload.request?.id ?? 'no request')
    heard.hasUser.push('user' in payload)
    heard.users.push(payload.user === undefined ? null : String((payload.user as { name?: unknown }).name))
  }
  return { heard, listener }
}

async function build (t: Test, options: BuildOptions = {}): Promise<{ app: FastifyInstance, jar: CookieJar }> {
  const { app } = await buildApp({ ...options, fastify: { genReqId: nextId } })
  t.teardown(() => app.close())
  return { app, jar: new CookieJar(app) }
}

let counter = 0
function nextId (): string {
  counter++
  return `req-${counter}`
}

/** The id the next request will get. */
function upcomingId (): string {
  return `req-${counter + 1}`
}

const apiKeyOptions = (): BuildOptions => {
  const users = makeUsers()
  return {
    users,
    login: {
      requestLoader: (request) => {
        const user = users.get(String(request.headers['x-api-key']))
        return user === undefined ? null : user as object as LoginUser
      }
    }
  }
}

/** Each event: how to make it fire once on a fresh app, and who the user is. */
interface Scenario {
  options?: () => BuildOptions
  /** Requests that prepare the state; listeners are attached after them. */
  setup?: (jar: CookieJar) => Promise<void>
  trigger: (jar: CookieJar) => Promise<unknown>
  user: string | null
}

const scenarios: Record<LoginEventName, Scenario> = {
  userLoggedIn: {
    trigger: (jar) => jar.inject({ method: 'POST', url: '/login/1' }),
    user: 'Ann'
  },
  userLoggedOut: {
    setup: async (jar) => { await jar.inject({ method: 'POST', url: '/login/2' }) },
    trigger: (jar) => jar.inject({ method: 'POST', url: '/logout' }),
    user: 'Bob'
  },
  userLoadedFromCookie: {
    setup: async (jar) => {
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      jar.restartBrowser()
    },
    trigger: (jar) => jar.inject('/'),
    user: 'Ann'
  },
  userLoadedFromRequest: {
    options: apiKeyOptions,
    trigger: (jar) => jar.inject({ url: '/', headers: { 'x-api-key': '2' } }),
    user: 'Bob'
  },
  userLoginConfirmed: {
    setup: async (jar) => { await jar.inject({ method: 'POST', url: '/login/1?fresh=0' }) },
    trigger: (jar) => jar.inject({ method: 'POST', url: '/confirm' }),
    user: 'Ann'
  },
  userUnauthorized: {
    trigger: (jar) => jar.inject('/protected'),
    user: null
  },
  userNeedsRefresh: {
    setup: async (jar) => { await jar.inject({ method: 'POST', url: '/login/1?fresh=0' }) },
    trigger: (jar) => jar.inject('/fresh'),
    user: null
  },
  userAccessed: {
    setup: async (jar) => { await jar.inject({ method: 'POST', url: '/login/1' }) },
    trigger: (jar) => jar.inject('/'),
    user: null
  },
  sessionProtected: {
    setup: async (jar) => { await jar.inject({ method: 'POST', url: '/login/1' }) },
    trigger: (jar) => jar.inject({ url: '/', headers: { 'user-agent': 'another browser' } }),
    user: null
  },
  sessionExpired: {
    options: () => ({ login: { idleTimeout: 0.05 } }),
    setup: async (jar) => {
      await jar.inject({ method: 'POST', url: '/login/1' })
      await setTimeout(200)
    },
    trigger: (jar) => jar.inject('/'),
    user: null
  },
  loginRevoked: {
    options: () => ({ login: { loginStore: new MemoryLoginStore() } }),
    setup: async (jar) => { await jar.inject({ method: 'POST', url: '/login/1' }) },
    trigger: (jar) => jar.inject({ method: 'POST', url: '/logout' }),
    user: null
  },
  rememberTheft: theftScenario()
}

// A remember cookie used again after it rotated out and its grace window (0 s) passed.
function theftScenario (): Scenario {
  let stolen = ''
  return {
    options: () => ({ login: { loginStore: new MemoryLoginStore(), remember: { rotationGrace: 0 } } }),
    setup: async (jar) => {
      await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
      stolen = jar.get('remember_token')!
      jar.restartBrowser()
      await jar.inject('/')
      await setTimeout(5)
    },
    trigger: (jar) => jar.inject({ url: '/', headers: { cookie: `remember_token=${stolen}` } }),
    user: null
  }
}

t.test('EVENT_NAMES lists the twelve events', async (t) => {
  t.same([...EVENT_NAMES].sort(), Object.keys(scenarios).sort())
})

for (const name of EVENT_NAMES) {
  const scenario = scenarios[name]

  t.test(`${name} fires once with its payload`, async (t) => {
    const { app, jar } = await build(t, scenario.options?.())
    await scenario.setup?.(jar)
    const { heard, listener } = record()
    app.loginManager.on(name, listener)
    const id = upcomingId()
    await scenario.trigger(jar)
    t.same(heard.requestIds, [id], 'the request of the event')
    t.same(heard.users, [scenario.user])
    t.same(heard.hasUser, [scenario.user !== null], scenario.user === null ? 'no user key' : 'a user key')
  })

  t.test(`${name} is published on diagnostics_channel fastify-login:${name}`, async (t) => {
    const { jar } = await build(t, scenario.options?.())
    await scenario.setup?.(jar)
    const { heard, listener } = record()
    const onMessage = (message: unknown): void => { listener(message as Payload) }
    subscribe(`fastify-login:${name}`, onMessage)
    t.teardown(() => { unsubscribe(`fastify-login:${name}`, onMessage) })
    const id = upcomingId()
    await scenario.trigger(jar)
    t.same(heard.requestIds, [id])
    t.same(heard.users, [scenario.user])
  })
}

t.test('userLoggedOut fires when nobody is logged in', async (t) => {
  // Flask: test_logout_without_current_user
  const { app, jar } = await build(t)
  const { heard, listener } = record()
  app.loginManager.on('userLoggedOut', listener)
  await jar.inject({ method: 'POST', url: '/logout' })
  t.equal(heard.requestIds.length, 1, 'fires for an anonymous logout too')
})

t.test('userAccessed fires only when a loader is consulted', async (t) => {
  const { app, jar } = await build(t)
  const { heard, listener } = record()
  app.loginManager.on('userAccessed', listener)
  await jar.inject('/')
  t.equal(heard.requestIds.length, 0, 'not for an anonymous request')
  await jar.inject({ method: 'POST', url: '/login/1' })
  await jar.inject('/')
  await jar.inject('/')
  t.equal(heard.requestIds.length, 2, 'once per request that loads the user')
})

t.test('userAccessed fires for a requestLoader too', async (t) => {
  const { app, jar } = await build(t, apiKeyOptions())
  const { heard, listener } = record()
  app.loginManager.on('userAccessed', listener)
  await jar.inject({ url: '/', headers: { 'x-api-key': '9' } })
  t.equal(heard.requestIds.length, 1)
})

t.test('sessionProtected does not fire for a request from the same client', async (t) => {
  const { app, jar } = await build(t)
  await jar.inject({ method: 'POST', url: '/login/1' })
  const { heard, listener } = record()
  app.loginManager.on('sessionProtected', listener)
  await jar.inject('/')
  t.equal(heard.requestIds.length, 0)
})

t.test('once fires a single time', async (t) => {
  const { app, jar } = await build(t)
  const { heard, listener } = record()
  app.loginManager.once('userLoggedIn', listener)
  await jar.inject({ method: 'POST', url: '/login/1' })
  await jar.inject({ method: 'POST', url: '/login/2' })
  t.same(heard.users, ['Ann'])
})

t.test('off removes a listener', async (t) => {
  const { app, jar } = await build(t)
  const kept = record()
  const removed = record()
  app.loginManager.on('userLoggedIn', removed.listener)
  app.loginManager.on('userLoggedIn', kept.listener)
  await jar.inject({ method: 'POST', url: '/login/1' })
  app.loginManager.off('userLoggedIn', removed.listener)
  await jar.inject({ method: 'POST', url: '/login/2' })
  t.same(removed.heard.users, ['Ann'])
  t.same(kept.heard.users, ['Ann', 'Bob'])
})

t.test('off removes a once listener before it fires', async (t) => {
  const { app, jar } = await build(t)
  const { heard, listener } = record()
  app.loginManager.once('userLoggedIn', listener)
  app.loginManager.off('userLoggedIn', listener)
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.same(heard.users, [])
})

t.test('off with a listener that is not registered changes nothing', async (t) => {
  const { app, jar } = await build(t)
  const kept = record()
  const stranger = record()
  app.loginManager.off('userLoggedIn', stranger.listener)
  app.loginManager.on('userLoggedIn', kept.listener)
  app.loginManager.off('userLoggedIn', stranger.listener)
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.same(kept.heard.users, ['Ann'])
  t.same(stranger.heard.users, [])
})

t.test('a listener that is not a function throws a TypeError at once', async (t) => {
  const { app } = await build(t)
  const manager = app.loginManager as unknown as Record<'on' | 'once', (event: string, listener: unknown) => unknown>
  for (const method of ['on', 'once'] as const) {
    t.throws(() => manager[method]('userLoggedIn', 'log it'), new TypeError('An event listener must be a function'), method)
  }
})

t.test('on, once and off return the manager', async (t) => {
  const { app } = await build(t)
  const listener = (): void => {}
  t.equal(app.loginManager.on('userLoggedIn', listener), app.loginManager)
  t.equal(app.loginManager.once('userLoggedIn', listener), app.loginManager)
  t.equal(app.loginManager.off('userLoggedIn', listener), app.loginManager)
})

t.test('an unknown event name throws', async (t) => {
  const { app } = await build(t)
  const manager = app.loginManager as unknown as Record<'on' | 'once' | 'off', (event: string, listener: () => void) => unknown>
  for (const method of ['on', 'once', 'off'] as const) {
    t.throws(() => manager[method]('userLoggedIN', () => {}), { message: /userLoggedIN/ }, method)
  }
})

t.test('listeners of one app do not hear another app', async (t) => {
  const first = await build(t)
  const second = await build(t)
  const { heard, listener } = record()
  first.app.loginManager.on('userLoggedIn', listener)
  await second.jar.inject({ method: 'POST', url: '/login/1' })
  t.equal(heard.requestIds.length, 0)
})
