// Session fixation: loginUser and logoutUser give the session a new id, the
// old id is destroyed in the store and stops authenticating, and the rest of
// the session (a cart, flashed messages) carries over. Flask-Login has no
// equivalent; this is one of fastify-login's beyond-Flask guarantees.
import t from 'tap'
import type { FastifyInstance, FastifyRequest, LightMyRequestResponse } from 'fastify'
import { buildApp, CookieJar, type BuildOptions } from './helpers.js'

const SESSION_COOKIE = 'sessionId'

type Callback = (error?: Error | null) => void

/** A store for @fastify/session that keeps JSON copies in a Map, as a real store would. */
class MapStore {
  readonly data = new Map<string, string>()
  readonly destroyed: string[] = []
  failDestroy = false

  set (id: string, session: unknown, callback: Callback): void {
    this.data.set(id, JSON.stringify(session))
    callback()
  }

  get (id: string, callback: (error: Error | null, session?: unknown) => void): void {
    const raw = this.data.get(id)
    callback(null, raw === undefined ? null : JSON.parse(raw))
  }

  destroy (id: string, callback: Callback): void {
    if (this.failDestroy) {
      callback(new Error('store is down'))
      return
    }
    this.data.delete(id)
    this.destroyed.push(id)
    callback()
  }

  /** The stored session data of `id`, without its cookie. */
  read (id: string): Record<string, unknown> | undefined {
    const raw = this.data.get(id)
    if (raw === undefined) return undefined
    const { cookie: _cookie, ...rest } = JSON.parse(raw) as Record<string, unknown>
    return rest
  }
}

interface PlainSession {
  get (key: string): unknown
  set (key: string, value: unknown): void
}

function sessionOf (request: FastifyRequest): PlainSession {
  return (request as unknown as { session: PlainSession }).session
}

// Anonymous routes that keep a cart in the session, and flash/read messages.
function addCartRoutes (app: FastifyInstance): void {
  app.post<{ Params: { item: string } }>('/cart/:item', { config: { login: 'optional' } }, async (request) => {
    const session = sessionOf(request)
    const cart = (session.get('cart') as string[] | undefined) ?? []
    session.set('cart', [...cart, request.params.item])
    return { ok: true }
  })
  app.get('/cart', { config: { login: 'optional' } }, async (request) => ({ cart: sessionOf(request).get('cart') ?? null }))
}

async function setup (options: BuildOptions = {}) {
  const store = new MapStore()
  const built = await buildApp({ ...options, session: { store, ...options.session } })
  addCartRoutes(built.app)
  return { ...built, store, jar: new CookieJar(built.app) }
}

// The session id inside the signed cookie value `<id>.<signature>`.
function idOf (cookieValue: string | undefined): string {
  if (cookieValue === undefined) throw new Error('no session cookie')
  return cookieValue.slice(0, cookieValue.lastIndexOf('.'))
}

function replay (app: FastifyInstance, url: string, cookieValue: string): Promise<LightMyRequestResponse> {
  return app.inject({ url, headers: { cookie: `${SESSION_COOKIE}=${encodeURIComponent(cookieValue)}` } })
}

t.test('login gives the session a new id and destroys the old one in the store', async (t) => {
  const { jar, store } = await setup()
  await jar.inject({ method: 'POST', url: '/cart/apple' })
  const before = idOf(jar.get(SESSION_COOKIE))
  t.ok(store.data.has(before), 'the anonymous session is stored')
  await jar.inject({ method: 'POST', url: '/login/1' })
  const after = idOf(jar.get(SESSION_COOKIE))
  t.not(after, before, 'a new session id')
  t.notOk(store.data.has(before), 'the old id is gone from the store')
  t.ok(store.destroyed.includes(before), 'the old id was destroyed')
  t.equal(store.read(after)?._user_id, '1', 'the login lives under the new id')
})

t.test('the pre-login session cookie no longer authenticates', async (t) => {
  const { app, jar } = await setup()
  await jar.inject({ method: 'POST', url: '/cart/apple' })
  const planted = jar.get(SESSION_COOKIE)!
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.equal((await jar.inject('/')).json().user, 'Ann', 'the victim is logged in')
  t.same((await replay(app, '/', planted)).json(), { user: null, authenticated: false, fresh: false, remembered: false })
  t.equal((await replay(app, '/protected', planted)).statusCode, 401)
})

t.test('session data set before login survives into the new session', async (t) => {
  const { jar, store } = await setup()
  await jar.inject({ method: 'POST', url: '/cart/apple' })
  await jar.inject({ method: 'POST', url: '/cart/pear' })
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.same((await jar.inject('/cart')).json(), { cart: ['apple', 'pear'] })
  t.same(store.read(idOf(jar.get(SESSION_COOKIE)))?.cart, ['apple', 'pear'])
})

t.test('flashed messages set before login survive login', async (t) => {
  const { app, jar } = await setup({ flash: true })
  app.post('/flash', { config: { login: 'optional' } }, async (request) => {
    request.flash('info', 'saved your draft')
    return { ok: true }
  })
  app.get('/messages', { config: { login: 'optional' } }, async (_request, reply) => ({ info: reply.flash('info') }))
  await jar.inject({ method: 'POST', url: '/flash' })
  const before = idOf(jar.get(SESSION_COOKIE))
  await jar.inject({ method: 'POST', url: '/login/1' })
  t.not(idOf(jar.get(SESSION_COOKIE)), before, 'the id was rotated')
  t.same((await jar.inject('/messages')).json(), { info: ['saved your draft'] })
})

t.test('a login on a request without a session cookie stores one session', async (t) => {
  const { jar, store } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1' })
  const id = idOf(jar.get(SESSION_COOKIE))
  t.same([...store.data.keys()], [id], 'only the session the cookie names is stored')
  t.equal((await jar.inject('/')).json().user, 'Ann')
})

t.test('logout gives the session a new id and destroys the logged-in one', async (t) => {
  const { jar, store } = await setup()
  await jar.inject({ method: 'POST', url: '/cart/apple' })
  await jar.inject({ method: 'POST', url: '/login/1' })
  const loggedIn = idOf(jar.get(SESSION_COOKIE))
  await jar.inject({ method: 'POST', url: '/logout' })
  const after = idOf(jar.get(SESSION_COOKIE))
  t.not(after, loggedIn, 'a new session id')
  t.notOk(store.data.has(loggedIn), 'the logged-in id is gone from the store')
  t.ok(store.destroyed.includes(loggedIn))
  t.equal(store.read(after)?._user_id, undefined, 'the new session holds no login')
})

t.test('a session cookie replayed after logout is anonymous', async (t) => {
  const { app, jar } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1' })
  const copied = jar.get(SESSION_COOKIE)!
  t.equal((await replay(app, '/', copied)).json().user, 'Ann', 'the copy works before logout')
  await jar.inject({ method: 'POST', url: '/logout' })
  t.same((await replay(app, '/', copied)).json(), { user: null, authenticated: false, fresh: false, remembered: false })
  t.equal((await replay(app, '/protected', copied)).statusCode, 401)
})

t.test('session data survives logout', async (t) => {
  const { jar } = await setup()
  await jar.inject({ method: 'POST', url: '/cart/apple' })
  await jar.inject({ method: 'POST', url: '/login/1' })
  await jar.inject({ method: 'POST', url: '/logout' })
  t.same((await jar.inject('/cart')).json(), { cart: ['apple'] })
  t.equal((await jar.inject('/')).json().authenticated, false)
})

t.test('logging in as another user rotates the id again', async (t) => {
  const { app, jar, store } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1' })
  const asAnn = jar.get(SESSION_COOKIE)!
  await jar.inject({ method: 'POST', url: '/login/2' })
  t.not(idOf(jar.get(SESSION_COOKIE)), idOf(asAnn))
  t.notOk(store.data.has(idOf(asAnn)))
  t.equal((await jar.inject('/')).json().user, 'Bob')
  t.equal((await replay(app, '/', asAnn)).json().authenticated, false, "Ann's session id is dead")
})

t.test('a remember-cookie restore rotates the session id', async (t) => {
  const { app, jar, store } = await setup()
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const remember = jar.get('remember_token')!
  // A second browser with an anonymous session (and a cart) and the remember cookie.
  const other = new CookieJar(app)
  await other.inject({ method: 'POST', url: '/cart/apple' })
  const anonymous = other.get(SESSION_COOKIE)!
  other.set('remember_token', remember)
  const restored = await other.inject('/')
  t.same(restored.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
  const after = idOf(other.get(SESSION_COOKIE))
  t.not(after, idOf(anonymous), 'a new session id')
  t.notOk(store.data.has(idOf(anonymous)), 'the anonymous id is gone from the store')
  t.equal(store.read(after)?._user_id, '1')
  t.same((await other.inject('/cart')).json(), { cart: ['apple'] }, 'the cart survives')
  t.equal((await replay(app, '/', anonymous)).json().authenticated, false, 'the old id does not authenticate')
})

t.test('a store that cannot destroy the old id fails the login', async (t) => {
  const { app, jar, store } = await setup()
  await jar.inject({ method: 'POST', url: '/cart/apple' })
  const planted = jar.get(SESSION_COOKIE)!
  store.failDestroy = true
  t.equal((await jar.inject({ method: 'POST', url: '/login/1' })).statusCode, 500)
  store.failDestroy = false
  t.equal(store.read(idOf(planted))?._user_id, undefined, 'the old session holds no login')
  t.equal((await replay(app, '/', planted)).json().authenticated, false)
})

t.test('regenerateSession: false', async (t) => {
  // One browser's walk through the app; returns what it saw and the session ids it had.
  async function walk (regenerateSession: boolean) {
    const { jar, store } = await setup({ login: { regenerateSession } })
    const bodies: unknown[] = []
    const ids: string[] = []
    const step = async (method: 'GET' | 'POST', url: string) => {
      bodies.push((await jar.inject({ method, url })).json())
      ids.push(idOf(jar.get(SESSION_COOKIE)))
    }
    await step('POST', '/cart/apple')
    await step('POST', '/login/1')
    await step('GET', '/')
    await step('GET', '/cart')
    await step('POST', '/logout')
    await step('GET', '/')
    await step('GET', '/cart')
    return { bodies, ids, store }
  }

  t.test('keeps the session id through login and logout', async (t) => {
    const { ids, store } = await walk(false)
    t.equal(new Set(ids).size, 1, 'one id throughout')
    t.same(store.destroyed, [], 'nothing destroyed')
  })

  t.test('changes nothing else', async (t) => {
    const rotating = await walk(true)
    const keeping = await walk(false)
    t.same(keeping.bodies, rotating.bodies, 'every response is the same')
    t.equal(new Set(rotating.ids).size, 3, 'the default rotates at login and at logout')
    const last = (run: typeof rotating) => run.store.read(run.ids.at(-1)!)
    t.same(last(keeping), last(rotating), 'the final session holds the same data')
  })

  t.test('the pre-login cookie then authenticates: the risk the default removes', async (t) => {
    const { app, jar } = await setup({ login: { regenerateSession: false } })
    await jar.inject({ method: 'POST', url: '/cart/apple' })
    const planted = jar.get(SESSION_COOKIE)!
    await jar.inject({ method: 'POST', url: '/login/1' })
    t.equal((await replay(app, '/', planted)).json().user, 'Ann')
  })

  t.test('a remember-cookie restore writes the login into the session it came with', async (t) => {
    const { app, jar, store } = await setup({ login: { regenerateSession: false } })
    await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
    const other = new CookieJar(app)
    await other.inject({ method: 'POST', url: '/cart/apple' })
    const anonymous = idOf(other.get(SESSION_COOKIE))
    other.set('remember_token', jar.get('remember_token')!)
    t.same((await other.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
    t.equal(idOf(other.get(SESSION_COOKIE)), anonymous, 'the same session id')
    t.same(store.destroyed, [], 'nothing destroyed')
    t.match(store.read(anonymous), { cart: ['apple'], _user_id: '1', _fresh: false }, 'the login beside the cart')
    other.delete('remember_token')
    t.same((await other.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false }, 'the session now holds the login')
  })

  t.end()
})
