// The benchmark harness, shared by run.js, soak.js and test/bench-smoke.test.ts:
// the scenarios, starting a server process, preparing and checking the
// measured request, and one measured autocannon round.
import { fork } from 'node:child_process'
import { isDeepStrictEqual } from 'node:util'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { BUDGET_TIMEOUTS, CLIENT_HEADERS, CREDENTIALS, EXPECTED_USER } from './common.js'

const SERVER = fileURLToPath(new URL('./server.js', import.meta.url))
const SESSION_COOKIE = 'sessionId'
const SECURE_SESSION_COOKIE = 'session'
const REMEMBER_COOKIE = 'remember_token'

/**
 * The scenarios of issue 6 (and three diagnostics: `hand-flask`,
 * `hand-flask-secure`, `signin-hand-flask`) and issue 13 (`*-timeouts`), in the order each round runs them. `expect` says
 * what the measured request must answer: `hello` ({ hello: 'world' }), `user`
 * (Ann), `signin` ({ ok: true } and a new session cookie) or `restore` (Ann and
 * a new session cookie). Guarded scenarios also check that the same request
 * without credentials is refused, so the guard is really there.
 */
export const SCENARIOS = Object.freeze([
  { id: 'bare', what: 'Fastify `GET /` returning JSON (the floor)', expect: 'hello', prepare: () => get('/') },
  { id: 'hand', what: '@fastify/session, `GET /me` written by hand', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'passport', what: '@fastify/passport + @fastify/session, `GET /me` guarded by `isAuthenticated()`', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'login', what: 'fastify-login + @fastify/session, `GET /me` with `app.requireLogin`', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'hand-flask', what: 'diagnostic: `hand` keeping Flask-Login\'s session keys and sending the same cache headers as `login`', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'passport-secure', what: '@fastify/passport + @fastify/secure-session, `GET /me`', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE) },
  { id: 'login-secure', what: 'fastify-login + @fastify/secure-session, `GET /me`', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE) },
  { id: 'hand-flask-secure', what: 'diagnostic: `hand-flask` over @fastify/secure-session', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE) },
  { id: 'anon-with', what: 'anonymous `GET /public`, no cookie, session + fastify-login', expect: 'hello', prepare: () => get('/public') },
  { id: 'anon-without', what: 'anonymous `GET /public`, no cookie, session without fastify-login', expect: 'hello', prepare: () => get('/public') },
  { id: 'signin-login', what: '`POST /login` creating a session: fastify-login `loginUser`', expect: 'signin', prepare: () => signInRequest() },
  { id: 'signin-passport', what: '`POST /login` creating a session: passport `request.logIn`', expect: 'signin', prepare: () => signInRequest() },
  { id: 'signin-hand', what: '`POST /login` creating a session: `regenerate()` + `set` by hand', expect: 'signin', prepare: () => signInRequest() },
  { id: 'signin-hand-flask', what: 'diagnostic: `POST /login` of `hand-flask`: `regenerate()` + Flask-Login\'s keys by hand', expect: 'signin', prepare: () => signInRequest() },
  { id: 'restore', what: 'fastify-login `GET /me` with only a remember cookie (session restored each time)', expect: 'restore', prepare: (url) => rememberOnly(url) },
  { id: 'login-store', what: '`login` with a `MemoryLoginStore` (one store read per request)', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'login-secure-store', what: '`login-secure` with a `MemoryLoginStore`', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE) },
  { id: 'login-timeouts', what: '`login` with `idleTimeout` (30 min) and `absoluteTimeout` (8 h)', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE, { keepCookie: true }) },
  { id: 'login-secure-timeouts', what: '`login-secure` with `idleTimeout` (30 min) and `absoluteTimeout` (8 h)', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE, { keepCookie: true }) }
])

export const SCENARIO_IDS = Object.freeze(SCENARIOS.map((scenario) => scenario.id))

/** Diagnostic variants, run only when BENCH_SCENARIOS names them. */
export const EXTRA_SCENARIOS = Object.freeze([
  { id: 'login-noprotect', what: '`login` with `sessionProtection: false`', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'login-secure-noprotect', what: '`login-secure` with `sessionProtection: false`', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE) },
  { id: 'login-b64', what: '`login` with the identifier in base64url (86 characters, not 128)', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'login-secure-b64', what: '`login-secure` with the identifier in base64url', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE) },
  { id: 'hand-flask-noheaders', what: '`hand-flask` without the cache headers', expect: 'user', prepare: (url) => me(url, SESSION_COOKIE) },
  { id: 'hand-flask-secure-noheaders', what: '`hand-flask-secure` without the cache headers', expect: 'user', prepare: (url) => me(url, SECURE_SESSION_COOKIE) }
])

/**
 * A positive number from the environment variable `name`, or `fallback` when
 * it is unset or empty; `integer` also requires a whole number (a count).
 */
export function envNumber (name, fallback, { integer = false } = {}) {
  const raw = process.env[name]
  if (raw === undefined || raw === '') return fallback
  const value = Number(raw)
  if (!(integer ? Number.isInteger(value) : Number.isFinite(value)) || value <= 0) {
    throw new Error(`${name} must be a positive ${integer ? 'integer' : 'number'}, got ${raw}`)
  }
  return value
}

export function scenarioById (id) {
  const scenario = [...SCENARIOS, ...EXTRA_SCENARIOS].find((candidate) => candidate.id === id)
  if (scenario === undefined) throw new Error(`unknown scenario ${id}; known: ${SCENARIO_IDS.join(', ')}`)
  return scenario
}

function get (path, headers = {}) {
  return { method: 'GET', path, headers }
}

function signInRequest (extra = {}) {
  return {
    method: 'POST',
    path: '/login',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ...CREDENTIALS, ...extra })
  }
}

/** Sends `request` once; the body is parsed as JSON when it can be. */
export async function probe (url, request) {
  const response = await fetch(url + request.path, {
    method: request.method,
    headers: { ...CLIENT_HEADERS, ...request.headers },
    body: request.body
  })
  const text = await response.text()
  let body = text
  try { body = JSON.parse(text) } catch {}
  const cookies = new Map()
  for (const header of response.headers.getSetCookie()) {
    const pair = header.split(';')[0]
    const name = pair.slice(0, pair.indexOf('='))
    cookies.set(name, pair)
  }
  return { status: response.status, body, cookies }
}

/** Logs Ann in once and returns the cookies the response set, as `name=value` pairs. */
async function signIn (url, extra) {
  const response = await probe(url, signInRequest(extra))
  if (response.status !== 200) throw new Error(`sign-in failed with ${response.status}: ${JSON.stringify(response.body)}`)
  return response.cookies
}

/** `GET /me` as Ann; with `keepCookie`, the load keeps the session cookie up to date (see `cannon`). */
async function me (url, cookieName, { keepCookie = false } = {}) {
  const cookies = await signIn(url)
  const cookie = cookies.get(cookieName)
  if (cookie === undefined) throw new Error(`sign-in set no ${cookieName} cookie (got ${[...cookies.keys()].join(', ') || 'none'})`)
  return { ...get('/me', { cookie }), anonymous: get('/me'), ...(keepCookie ? { keepCookie: cookieName } : {}) }
}

async function rememberOnly (url) {
  const cookies = await signIn(url, { remember: true })
  const cookie = cookies.get(REMEMBER_COOKIE)
  if (cookie === undefined) throw new Error('sign-in with remember set no remember cookie')
  return { ...get('/me', { cookie }), anonymous: get('/me') }
}

function fail (scenario, what, response) {
  throw new Error(`${scenario.id}: ${what}; got ${response.status} ${JSON.stringify(response.body)}`)
}

/**
 * Checks the measured request before it is timed: status, body, cookies, and
 * that the guard refuses the same request without credentials. Throws.
 */
export async function checkScenario (scenario, url, request) {
  const response = await probe(url, request)
  if (response.status !== 200) fail(scenario, 'the measured request must answer 200', response)
  const expected = scenario.expect === 'hello' ? { hello: 'world' } : scenario.expect === 'signin' ? { ok: true } : EXPECTED_USER
  if (!isDeepStrictEqual(response.body, expected)) fail(scenario, `the body must be ${JSON.stringify(expected)}`, response)
  if (scenario.expect === 'signin' || scenario.expect === 'restore') {
    if (![...response.cookies.keys()].some((name) => name === SESSION_COOKIE)) fail(scenario, 'a new session cookie must be set', response)
  } else if (response.cookies.size > 0) {
    fail(scenario, `no cookie may be set (got ${[...response.cookies.keys()].join(', ')})`, response)
  }
  if (request.anonymous !== undefined) {
    const refused = await probe(url, request.anonymous)
    if (refused.status !== 401) fail(scenario, 'the same request without credentials must be refused with 401', refused)
  }
  return response
}

/**
 * The environment of a server: a benchmark server runs plain, without the
 * coverage collection or loaders a test runner puts in NODE_OPTIONS.
 */
function serverEnvironment () {
  const env = { ...process.env }
  delete env.NODE_OPTIONS
  delete env.NODE_V8_COVERAGE
  return env
}

/**
 * Starts `bench/server.js <scenario>` as a child process; resolves once it
 * listens. `execPath` runs Node through another program (valgrind, for
 * bench/instructions.js): `execArgv` then holds that program's arguments,
 * Node's path and Node's own flags.
 */
export async function startServer (scenarioId, { execArgv = [], execPath = process.execPath } = {}) {
  const child = fork(SERVER, [scenarioId, '0'], { execArgv, execPath, env: serverEnvironment(), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const pending = new Map()
  let nextId = 0
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const port = await new Promise((resolve, reject) => {
    child.once('message', (message) => {
      if (message?.type === 'ready') resolve(message.port)
      else reject(new Error(`${scenarioId}: unexpected first message ${JSON.stringify(message)}`))
    })
    exited.then(({ code, signal }) => reject(new Error(`${scenarioId}: server exited (${code ?? signal}) before listening`)))
  })
  child.on('message', (message) => {
    if (message?.type !== 'stats') return
    pending.get(message.id)?.(message)
    pending.delete(message.id)
  })
  return {
    scenario: scenarioId,
    pid: child.pid,
    url: `http://127.0.0.1:${port}`,
    /** `{ cpu (µs, user + system), rss, heapUsed (bytes), completed }`; `gc` collects first (needs --expose-gc). */
    stats ({ gc = false } = {}) {
      return new Promise((resolve, reject) => {
        const id = nextId++
        pending.set(id, resolve)
        child.send({ type: 'stats', id, gc }, (error) => { if (error) reject(error) })
      })
    },
    async close () {
      if (child.exitCode !== null || child.signalCode !== null) return
      if (child.connected) child.disconnect()
      const timer = setTimeout(() => child.kill(), 5000)
      await exited
      clearTimeout(timer)
    }
  }
}

/**
 * Issue 13's write budget: a run of requests inside one activity interval
 * (min(60 s, idleTimeout / 10): 2 s on the `login-write-budget` server)
 * makes at most one session write, counted by the server's store.
 */
export const WRITE_BUDGET = Object.freeze({
  scenario: 'login-write-budget',
  intervalSeconds: Math.min(60, BUDGET_TIMEOUTS.idleTimeout / 10),
  runSeconds: 1,
  limit: 1
})

/**
 * Runs the write budget on a `login-write-budget` server: signs in, waits
 * until the activity time is due, then sends requests one after another for
 * `runSeconds` (well inside one interval). The first of them writes the
 * activity time; none of the others may write. Resolves
 * `{ requests, writes, seconds }`; throws when a request is not answered 200.
 */
export async function runWriteBudget (server, { runSeconds = WRITE_BUDGET.runSeconds } = {}) {
  const request = await me(server.url, SESSION_COOKIE)
  await checkScenario({ id: WRITE_BUDGET.scenario, expect: 'user' }, server.url, request)
  await new Promise((resolve) => setTimeout(resolve, WRITE_BUDGET.intervalSeconds * 1000 + 100))
  const before = await server.stats()
  const started = process.hrtime.bigint()
  const result = await cannon(server.url, request, { connections: 1, duration: runSeconds })
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const after = await server.stats()
  if (result.non2xx > 0 || result.errors > 0 || result['2xx'] === 0) {
    throw new Error(`${WRITE_BUDGET.scenario}: ${result.non2xx} non-2xx responses, ${result.errors} errors`)
  }
  return { requests: after.completed - before.completed, writes: after.sessionWrites - before.sessionWrites, seconds }
}

/** True when a run of `scenarios` includes issue 13's (the default run does): the write budget is then run too. */
export function wantsWriteBudget (scenarios) {
  return scenarios.some((scenario) => scenario.id.endsWith('-timeouts'))
}

/** The write budget as a Markdown table. */
export function renderWriteBudget ({ requests, writes, seconds }) {
  const { intervalSeconds, limit } = WRITE_BUDGET
  return [
    '| run | requests | seconds | session writes (store.set) | limit | result |',
    '|---|--:|--:|--:|--:|---|',
    `| \`${WRITE_BUDGET.scenario}\`: one connection, starting when the activity time is due, inside one ${intervalSeconds} s interval | ${requests} | ${seconds.toFixed(2)} | ${writes} | ≤ ${limit} | ${writes <= limit ? 'met' : '**missed**'} |`
  ].join('\n')
}

/** Prepares and checks the measured request of `scenario` on a running server. */
export async function prepareScenario (scenario, server) {
  const request = await scenario.prepare(server.url)
  await checkScenario(scenario, server.url, request)
  return request
}

/**
 * The request as autocannon's `requests`, sending the newest `name` cookie
 * any response set, as a browser's tabs share their cookies: the session
 * cookie of @fastify/secure-session changes whenever the session does (the
 * activity time of `idleTimeout`, once a minute). Replaying the cookie of
 * the sign-in instead would find the activity time due on every request.
 * autocannon builds each connection's request bytes once; they are rebuilt
 * here only when the cookie changes (rebuilding them for every request, as
 * `setupRequest` would, slows the client enough to change the server's
 * numbers).
 */
function keepingCookie (request, headers, name) {
  let newest = headers.cookie
  return [{
    method: request.method,
    path: request.path,
    headers,
    body: request.body,
    // `this`: the connection's own copy of the request, with its built bytes.
    onResponse (status, body, context, responseHeaders) {
      const set = [responseHeaders['set-cookie'] ?? []].flat().find((value) => value.startsWith(`${name}=`))
      if (set !== undefined) newest = set.split(';')[0]
      const sent = this.sentCookie ?? headers.cookie
      if (newest === sent) return
      this.requestBuffer = Buffer.from(this.requestBuffer.toString('latin1').replace(sent, newest), 'latin1')
      this.sentCookie = newest
    }
  }]
}

/** Runs autocannon against `request`: for `duration` seconds, or for `amount` requests when given. */
export async function cannon (url, request, { connections = 10, duration = 3, amount } = {}) {
  const headers = { ...CLIENT_HEADERS, ...request.headers }
  const options = {
    url: url + request.path,
    method: request.method,
    headers,
    body: request.body,
    connections,
    pipelining: 1
  }
  if (request.keepCookie !== undefined) options.requests = keepingCookie(request, headers, request.keepCookie)
  if (amount !== undefined) options.amount = amount
  else options.duration = duration
  // Several requests, sent in turn on every connection (each login its own session).
  if (request.requests !== undefined) options.requests = request.requests.map((item) => ({ ...item, headers: { ...CLIENT_HEADERS, ...item.headers } }))
  return autocannon(options)
}

/**
 * One measured round: server stats before and after an autocannon run.
 * Throws when any response was not a 2xx or the server counted a different
 * number of successful requests (a round of 401s measures nothing).
 */
export async function measure (scenario, server, request, load) {
  const { connections = 10, amount } = load
  const before = await server.stats()
  const started = process.hrtime.bigint()
  const result = await cannon(server.url, request, load)
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const after = await server.stats()
  const completed = after.completed - before.completed
  if (result.non2xx > 0 || result.errors > 0 || result.timeouts > 0) {
    throw new Error(`${scenario.id}: ${result.non2xx} non-2xx responses, ${result.errors} errors, ${result.timeouts} timeouts`)
  }
  // A timed run stops with up to one request per connection in flight: the
  // server completes those, autocannon does not count them.
  const inFlight = amount === undefined ? connections : 0
  if (result['2xx'] === 0 || completed < result['2xx'] || completed > result['2xx'] + inFlight) {
    throw new Error(`${scenario.id}: the server completed ${completed} requests but autocannon saw ${result['2xx']} 2xx responses`)
  }
  return {
    cpuPerRequest: (after.cpu - before.cpu) / completed,
    requestsPerSecond: completed / seconds,
    p99: result.latency.p99,
    completed,
    rss: after.rss,
    heapUsed: after.heapUsed
  }
}
