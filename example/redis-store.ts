// Sessions and logins in Redis, for several instances of the app behind a
// load balancer: connect-redis's RedisStore for @fastify/session, and
// fastify-login's RedisLoginStore, over one node-redis client. app.ts uses
// them when REDIS_URL is set (the SQLite stores of session-store.ts and
// login-store.ts otherwise).
//
// What happens when Redis is gone: the client gives up on commands at once
// (`disableOfflineQueue`) instead of holding requests until Redis is back,
// reconnects in the background, and reports the outage once in the log. A
// request that needs its session or its login record fails with a 503
// (SessionStoreUnavailable, or fastify-login's FST_LOGIN_STORE_FAILED), never
// as an anonymous visitor or as somebody else. Anonymous pages, and routes
// with `config.login: false` (see app.ts), are served as usual.
import type { FastifyBaseLogger, Session } from 'fastify'
import type { SessionStore } from '@fastify/session'
import { RedisStore } from 'connect-redis'
import { RedisLoginStore } from 'fastify-login/redis'
import { createClient } from 'redis'

/** Redis keys of this app start with this: several apps can share one Redis. */
export const KEY_PREFIX = 'fastify-login-example:'
/** Sessions are under `fastify-login-example:session:`; logins under `fastify-login-example:{tag}:`. */
const SESSION_KEY_PREFIX = `${KEY_PREFIX}session:`

/** The `code` of the error a request fails with while Redis is unavailable. */
export const SESSION_STORE_UNAVAILABLE = 'SESSION_STORE_UNAVAILABLE'

/** The error given to @fastify/session when Redis fails: a 503 for the error handler. */
export class SessionStoreUnavailable extends Error {
  readonly code = SESSION_STORE_UNAVAILABLE
  readonly statusCode = 503

  constructor (cause: unknown) {
    super('the session store (Redis) is unavailable', { cause })
    this.name = 'SessionStoreUnavailable'
  }
}

/**
 * connect-redis's store, with every Redis failure turned into
 * SessionStoreUnavailable. The callbacks are called once, outside the store's
 * try/catch (connect-redis calls them inside it, so an exception thrown
 * further down the request would reach the callback a second time).
 */
export class ExampleRedisStore implements SessionStore {
  readonly #store: RedisStore

  constructor (store: RedisStore) {
    this.#store = store
  }

  get (sessionId: string, callback: (error: Error | null, session?: Session | null) => void): void {
    settle(this.#store.get(sessionId), callback)
  }

  set (sessionId: string, session: Session, callback: (error?: Error | null) => void): void {
    settle(this.#store.set(sessionId, session), callback)
  }

  destroy (sessionId: string, callback: (error?: Error | null) => void): void {
    settle(this.#store.destroy(sessionId), callback)
  }
}

/** `work`: connect-redis without a callback, which rejects on failure. */
function settle<T> (work: Promise<T>, callback: (error: Error | null, value?: T | null) => void): void {
  work.then(
    (value) => { callback(null, value ?? null) },
    (error: unknown) => { callback(new SessionStoreUnavailable(error)) }
  )
}

/** The stores over one Redis connection. */
export interface RedisStores {
  /** For @fastify/session. */
  readonly sessionStore: ExampleRedisStore
  /** For fastify-login's `loginStore` option. */
  readonly loginStore: RedisLoginStore
  /** Closes the connection (after the pending commands), and stops reconnecting while Redis is down. */
  close (): Promise<void>
}

/**
 * Connects to Redis (waiting until it answers) and returns the stores; their
 * `close()` (for the app's onClose hook) closes the connection.
 * `url`: `redis://[[user]:password@]host[:port][/db]`, or `rediss://` for TLS.
 */
export async function openRedisStores (url: string, log: FastifyBaseLogger): Promise<RedisStores> {
  const client = createClient({
    url,
    // Fail a command at once while disconnected, rather than queueing it
    // (and the request waiting for it) until Redis is back.
    disableOfflineQueue: true,
    // A Redis that accepts the connection but does not answer: give up after 2 s.
    commandOptions: { timeout: 2000 },
    // Retry every 50 ms, 100 ms, ... up to every second; never give up.
    socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 1000) }
  })

  // Without an 'error' listener a lost connection would crash the process.
  // The client emits one error per reconnection attempt: log the first only.
  let down = false
  client.on('error', (error) => {
    if (down) return
    down = true
    log.error({ err: error }, 'Redis is unavailable: requests with a session or a login fail with 503 until it is back')
  })
  client.on('ready', () => {
    if (!down) return
    down = false
    log.info('Redis is available again')
  })

  await client.connect()
  return {
    // Without a cookie expiry (the example's session cookies have none),
    // a session lives one day after its last request, as in session-store.ts.
    sessionStore: new ExampleRedisStore(new RedisStore({ client, prefix: SESSION_KEY_PREFIX, ttl: 24 * 60 * 60 })),
    // Login records expire in Redis by themselves, with their login.
    loginStore: new RedisLoginStore({ client, prefix: KEY_PREFIX }),
    close: async () => { await client.close() }
  }
}
