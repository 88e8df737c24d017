// Helpers for the login-store tests: a store that counts and can fail, an
// app with device routes, and a clock that can be moved forward.
import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { LoginRecord, LoginRecordChanges, LoginRecordExpected, LoginStore } from '../lib/index.js'
import { MemoryLoginStore } from '../lib/index.js'
import { buildApp, type BuildOptions, type TestApp } from './helpers.js'

export type StoreMethod = 'create' | 'get' | 'update' | 'delete' | 'list'

/** Wraps a store: counts each method's calls, and fails them on demand. */
export class ControlledStore implements LoginStore {
  readonly calls: Record<StoreMethod, number> = { create: 0, get: 0, update: 0, delete: 0, list: 0 }
  /** Methods that reject (with an error whose message must never reach a client). */
  readonly failing = new Set<StoreMethod>()
  /** Methods that throw synchronously instead. */
  readonly throwing = new Set<StoreMethod>()
  readonly createId?: (userId: string) => string

  constructor (readonly inner: LoginStore = new MemoryLoginStore()) {
    if (inner.createId !== undefined) this.createId = (userId) => inner.createId!(userId)
  }

  get total (): number {
    return Object.values(this.calls).reduce((sum, count) => sum + count, 0)
  }

  reset (): void {
    for (const method of Object.keys(this.calls) as StoreMethod[]) this.calls[method] = 0
  }

  #enter (method: StoreMethod): void {
    this.calls[method]++
    if (this.throwing.has(method)) throw new Error(`store secret detail: ${method} threw`)
  }

  #result<T> (method: StoreMethod, work: () => Promise<T>): Promise<T> {
    if (this.failing.has(method)) return Promise.reject(new Error(`store secret detail: ${method} is down`))
    return work()
  }

  create (record: LoginRecord): Promise<void> {
    this.#enter('create')
    return this.#result('create', () => this.inner.create(record))
  }

  get (id: string): Promise<LoginRecord | null> {
    this.#enter('get')
    return this.#result('get', () => this.inner.get(id))
  }

  update (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges): Promise<boolean> {
    this.#enter('update')
    return this.#result('update', () => this.inner.update(id, expected, changes))
  }

  delete (id: string): Promise<LoginRecord | null> {
    this.#enter('delete')
    return this.#result('delete', () => this.inner.delete(id))
  }

  list (userId: string): Promise<LoginRecord[]> {
    this.#enter('list')
    return this.#result('list', () => this.inner.list(userId))
  }
}

export interface StoreApp extends TestApp {
  store: ControlledStore
}

interface WithSession {
  session: { get (key: string): unknown }
}

/**
 * `buildApp` with a login store and device routes: GET /devices (listLogins
 * and loginId), POST /revoke/:id, POST /revoke-others, GET /session-login
 * (the session's login keys, without loading a user).
 */
export async function buildStoreApp (options: BuildOptions & { store?: ControlledStore } = {}): Promise<StoreApp> {
  const store = options.store ?? new ControlledStore()
  const built = await buildApp({ ...options, login: { loginStore: store, ...options.login } })
  addDeviceRoutes(built.app)
  return { ...built, store }
}

export function addDeviceRoutes (app: FastifyInstance): void {
  app.get('/devices', { config: { login: 'optional' } }, async (request) => ({
    loginId: request.loginId,
    logins: await request.listLogins()
  }))
  app.post<{ Params: { id: string } }>('/revoke/:id', { config: { login: 'optional' } }, async (request) => ({
    revoked: await request.revokeLogin(request.params.id),
    authenticated: request.isAuthenticated()
  }))
  app.post('/revoke-others', { config: { login: 'optional' } }, async (request) => ({ revoked: await request.revokeOtherLogins() }))
  app.get('/session-login', { config: { login: false } }, async (request: FastifyRequest) => {
    const session = (request as unknown as WithSession).session
    return { userId: session.get('_user_id') ?? null, loginId: session.get('_login_id') ?? null }
  })
}

/** A clock for one test: `advance(ms)` moves `Date.now()` forward until the test ends. */
export function useClock (t: { teardown: (fn: () => void) => void }): { advance: (ms: number) => void } {
  const real = Date.now
  let offset = 0
  Date.now = () => real() + offset
  t.teardown(() => { Date.now = real })
  return { advance (ms) { offset += ms } }
}

/**
 * An @fastify/session store that outlives one app, so that a second app (with
 * a login store) finds the first one's sessions. It keeps copies, as a real
 * store keeps serialised sessions.
 */
export function sessionStoreOutliving (): SessionStore {
  const sessions = new Map<string, unknown>()
  return {
    get (id, callback) { callback(null, sessions.get(id)) },
    set (id, session, callback) { sessions.set(id, JSON.parse(JSON.stringify(session))); callback() },
    destroy (id, callback) { sessions.delete(id); callback() }
  }
}

interface SessionStore {
  get (id: string, callback: (error: null, session?: unknown) => void): void
  set (id: string, session: unknown, callback: (error?: null) => void): void
  destroy (id: string, callback: (error?: null) => void): void
}

export function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}
