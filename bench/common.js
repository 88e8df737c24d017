// What every benchmark server shares: the users, the secrets, the password
// check and the request headers, so scenarios differ only in their plugins.

export const SESSION_SECRET = 'bench-session-secret-of-at-least-32-characters'
export const LOGIN_SECRET = 'bench-login-secret-of-at-least-32-characters!'
export const SECURE_SESSION_KEY = Buffer.alloc(32, 9)

/** Sessions the memory store keeps; the oldest are evicted beyond this. */
export const STORE_CAPACITY = 10_000

/**
 * The map behind @fastify/session's memory store, capped like a production
 * store with expiry: the sign-in and restore servers create a session per
 * request, and an unbounded store would turn their numbers into the garbage
 * collector's cost of an ever larger heap (which depends on how many requests
 * a server happened to serve). Sessions are stored as objects, as the default
 * store does.
 */
export class BoundedMap extends Map {
  set (key, value) {
    super.set(key, value)
    if (this.size > STORE_CAPACITY) this.delete(this.keys().next().value)
    return this
  }
}

/** The options of @fastify/session (plain HTTP on 127.0.0.1), without the store. */
export const SESSION_OPTIONS = Object.freeze({
  secret: SESSION_SECRET,
  cookie: { secure: false },
  rolling: false,
  saveUninitialized: false
})

/**
 * Issue 13's timeouts as an application would set them (OWASP's upper
 * figures for a low-risk application: 30 minutes idle, 8 hours overall):
 * the activity time is then written at most once a minute.
 */
export const TIMEOUTS = Object.freeze({ idleTimeout: 30 * 60, absoluteTimeout: 8 * 60 * 60 })

/** The write budget's timeouts: an idle timeout of 20 s writes the activity time at most every 2 s. */
export const BUDGET_TIMEOUTS = Object.freeze({ idleTimeout: 20, absoluteTimeout: 8 * 60 * 60 })

/** The options of @fastify/secure-session (it has no rolling or saveUninitialized). */
export const SECURE_SESSION_OPTIONS = Object.freeze({
  key: SECURE_SESSION_KEY,
  cookie: { path: '/', httpOnly: true }
})

export class User {
  constructor (id, name, password) {
    this.id = id
    this.name = name
    this.password = password
  }
}

/** A thousand users; user '1' is Ann, who every scenario logs in as. */
export const users = new Map()
export const usersByName = new Map()
for (let index = 1; index <= 1000; index++) {
  const user = index === 1 ? new User('1', 'Ann', 'ann-password') : new User(String(index), `user${index}`, `password${index}`)
  users.set(user.id, user)
  usersByName.set(user.name, user)
}

/** The loader every scenario uses: asynchronous, as a database would be. */
export async function findUser (id) {
  return users.get(id) ?? null
}

/**
 * The credential check of every sign-in: a plain comparison, so the benchmark
 * measures the session work and not a password hash (which would dominate).
 */
export function checkCredentials (body) {
  const user = usersByName.get(body?.username)
  return user !== undefined && user.password === body?.password ? user : null
}

/** The user as every `/me` answers it. */
export function publicUser (user) {
  return { id: user.id, name: user.name }
}

export const CREDENTIALS = Object.freeze({ username: 'Ann', password: 'ann-password' })
export const EXPECTED_USER = Object.freeze({ id: '1', name: 'Ann' })

/** Sent with every request, so session protection sees one client throughout. */
export const CLIENT_HEADERS = Object.freeze({ 'user-agent': 'fastify-login-bench' })
