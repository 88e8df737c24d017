// Shared test helpers: an app builder with a small user table, and a cookie
// jar that stores and sends cookies the way a browser does.
import Fastify, { type FastifyInstance, type FastifyRequest, type InjectOptions, type LightMyRequestResponse } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifySecureSession from '@fastify/secure-session'
import fastifyFlash from '@fastify/flash'
import fastifyLogin, { UserMixin, type FastifyLoginOptions } from '../lib/index.js'

export const SESSION_SECRET = 'session-secret-of-at-least-32-characters!'
export const LOGIN_SECRET = 'login-secret-of-at-least-32-characters!!'
export const SECURE_SESSION_KEY = Buffer.alloc(32, 7)

export class User extends UserMixin {
  declare id: string
  name: string
  active: boolean
  version: string

  constructor (id: string, name: string, active = true) {
    super()
    this.id = id
    this.name = name
    this.active = active
    this.version = '1'
  }

  override get isActive (): boolean { return this.active }
}

export function makeUsers (): Map<string, User> {
  return new Map([
    ['1', new User('1', 'Ann')],
    ['2', new User('2', 'Bob')],
    ['3', new User('3', 'Cid', false)],
    ['ü', new User('ü', 'Üna')]
  ])
}

export interface BuildOptions {
  /** Options for fastify-login; `secret` and `userLoader` have defaults. */
  login?: Partial<FastifyLoginOptions>
  /** Which session plugin to register. Default `'session'` (@fastify/session). */
  sessionPlugin?: 'session' | 'secure-session'
  /** Extra @fastify/session options. */
  session?: Record<string, unknown>
  /** Register @fastify/flash. Default false. */
  flash?: boolean
  /** Fastify server options. */
  fastify?: Record<string, unknown>
  users?: Map<string, User>
  /** Add the standard routes (/, /login/:id, /logout, /protected, /fresh). Default true. */
  routes?: boolean
}

export interface TestApp {
  app: FastifyInstance
  users: Map<string, User>
  /** Ids the user loader was called with, in order. */
  loaded: string[]
}

/**
 * Builds an app with @fastify/cookie, a session plugin and fastify-login, plus
 * standard routes: GET / (who am I), POST /login/:id (?remember=1&fresh=0&force=1),
 * POST /logout, GET /protected (requireLogin), GET /fresh (requireFreshLogin),
 * POST /confirm (confirmLogin).
 */
export async function buildApp (options: BuildOptions = {}): Promise<TestApp> {
  const users = options.users ?? makeUsers()
  const loaded: string[] = []
  const app = Fastify({ ...options.fastify })
  await app.register(fastifyCookie)
  if (options.sessionPlugin === 'secure-session') {
    await app.register(fastifySecureSession, { key: SECURE_SESSION_KEY, cookie: { path: '/', httpOnly: true } })
  } else {
    await app.register(fastifySession, {
      secret: SESSION_SECRET,
      cookie: { secure: false },
      saveUninitialized: false,
      ...options.session
    })
  }
  if (options.flash === true) await app.register(fastifyFlash)
  await app.register(fastifyLogin, {
    secret: LOGIN_SECRET,
    userLoader: (id: string) => {
      loaded.push(id)
      return users.get(id) ?? null
    },
    ...options.login
  } as FastifyLoginOptions)
  if (options.routes !== false) addStandardRoutes(app, users)
  return { app, users, loaded }
}

function addStandardRoutes (app: FastifyInstance, users: Map<string, User>): void {
  app.get('/', { config: { login: 'optional' } }, async (request) => ({
    user: request.isAuthenticated() ? (request.user as User).name : null,
    authenticated: request.isAuthenticated(),
    fresh: request.loginFresh,
    remembered: request.loginRemembered
  }))
  app.post<{ Params: { id: string }, Querystring: Record<string, string> }>('/login/:id', { config: { login: 'optional' } }, async (request) => {
    const user = users.get(request.params.id)
    if (user === undefined) return { ok: false }
    const query = request.query
    const ok = await request.loginUser(user, {
      remember: query.remember === '1',
      fresh: query.fresh !== '0',
      force: query.force === '1',
      ...(query.duration === undefined ? {} : { duration: Number(query.duration) })
    })
    return { ok }
  })
  app.post('/logout', { config: { login: 'optional' } }, async (request) => ({ ok: await request.logoutUser() }))
  app.post('/confirm', { config: { login: 'optional' } }, async (request) => {
    await request.confirmLogin()
    return { fresh: request.loginFresh }
  })
  app.get('/protected', { preHandler: app.requireLogin }, async (request) => ({ user: (request.user as User).name }))
  app.get('/fresh', { preHandler: app.requireFreshLogin }, async (request) => ({ user: (request.user as User).name }))
}

interface StoredCookie {
  value: string
  path: string
  domain: string | undefined
  expires: number | undefined
  httpOnly: boolean
  secure: boolean
  sameSite: string | undefined
}

/** Keeps cookies between `inject` calls like a browser: honours Max-Age, Expires, Path and deletion. */
/** The session of either plugin, read and written through what both have. */
export interface PlainSession {
  get (key: string): unknown
  set (key: string, value: unknown): void
}

export function sessionOf (request: FastifyRequest): PlainSession {
  return (request as unknown as { session: PlainSession }).session
}

export class CookieJar {
  readonly cookies = new Map<string, StoredCookie>()

  constructor (private readonly app: FastifyInstance) {}

  /** Stores the Set-Cookie headers of a response. */
  store (response: LightMyRequestResponse): void {
    for (const cookie of response.cookies as Array<{ name: string, value: string, path?: string, domain?: string, maxAge?: number, expires?: Date, httpOnly?: boolean, secure?: boolean, sameSite?: string }>) {
      let expires: number | undefined
      if (typeof cookie.maxAge === 'number') expires = Date.now() + cookie.maxAge * 1000
      else if (cookie.expires !== undefined) expires = cookie.expires.getTime()
      if (expires !== undefined && expires <= Date.now()) {
        this.cookies.delete(cookie.name)
        continue
      }
      this.cookies.set(cookie.name, {
        value: cookie.value,
        path: cookie.path ?? '/',
        domain: cookie.domain,
        expires,
        httpOnly: cookie.httpOnly === true,
        secure: cookie.secure === true,
        sameSite: cookie.sameSite
      })
    }
  }

  /** The Cookie header a browser would send for `path`. */
  header (path = '/'): string {
    const now = Date.now()
    const pairs: string[] = []
    for (const [name, cookie] of this.cookies) {
      if (cookie.expires !== undefined && cookie.expires <= now) continue
      if (!path.startsWith(cookie.path)) continue
      pairs.push(`${name}=${encodeURIComponent(cookie.value)}`)
    }
    return pairs.join('; ')
  }

  get (name: string): string | undefined {
    return this.cookies.get(name)?.value
  }

  set (name: string, value: string): void {
    this.cookies.set(name, { value, path: '/', domain: undefined, expires: undefined, httpOnly: true, secure: false, sameSite: undefined })
  }

  delete (name: string): void {
    this.cookies.delete(name)
  }

  /** Drops cookies without an expiry: what closing the browser does. */
  restartBrowser (): void {
    for (const [name, cookie] of this.cookies) if (cookie.expires === undefined) this.cookies.delete(name)
  }

  /** A copy of this jar (a second tab sharing nothing afterwards). */
  clone (): CookieJar {
    const copy = new CookieJar(this.app)
    for (const [name, cookie] of this.cookies) copy.cookies.set(name, { ...cookie })
    return copy
  }

  /** `app.inject` with this jar's cookies; stores the response's cookies. */
  async inject (options: InjectOptions | string): Promise<LightMyRequestResponse> {
    const request: InjectOptions = typeof options === 'string' ? { url: options } : { ...options }
    const url = request.url
    const path = typeof url === 'string' ? url.split('?')[0] ?? '/' : '/'
    const header = this.header(path)
    request.headers = { ...request.headers }
    if (header !== '' && request.headers.cookie === undefined) request.headers.cookie = header
    const response = await this.app.inject(request)
    this.store(response)
    return response
  }
}
