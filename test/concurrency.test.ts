// No cross-request leakage: thousands of interleaved requests as dozens of
// users, with a loader and a handler that yield at random points; every
// response must name the user of its own credentials.
import t from 'tap'
import type { LoginUser } from '../lib/index.js'
import { buildApp, CookieJar, User } from './helpers.js'

const USERS = 40
const REQUESTS = 2500
const COOKIE = 'remember_token'

function pause (): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * 6)))
}

interface Client {
  /** The user this client's credentials belong to; null for anonymous. */
  expected: string | null
  cookie: string | undefined
  kind: 'session' | 'session+remember' | 'remember' | 'anonymous' | 'bad remember'
}

async function setup () {
  const users = new Map<string, User>()
  for (let i = 1; i <= USERS; i++) users.set(String(i), new User(String(i), `user-${i}`))
  const loaderMismatches: string[] = []
  const { app } = await buildApp({
    users,
    login: {
      userLoader: async (id, request) => {
        await pause()
        // The request handed to the loader is the one whose credentials name `id`.
        if (request.headers['x-client'] !== id) loaderMismatches.push(`${String(request.headers['x-client'])} loaded ${id}`)
        return (users.get(id) ?? null) as unknown as LoginUser | null
      }
    }
  })
  app.get('/whoami', { config: { login: 'optional' } }, async (request) => {
    await pause()
    const first = request.isAuthenticated() ? (request.user as unknown as User).name : null
    await pause()
    const second = request.isAuthenticated() ? (request.user as unknown as User).name : null
    return { user: first, again: second, client: request.headers['x-client'] ?? null }
  })

  const clients: Client[] = []
  for (let i = 1; i <= USERS; i++) {
    const jar = new CookieJar(app)
    const id = String(i)
    const headers = { 'x-client': id }
    if (i <= USERS / 2) {
      // Half log in with a session only, a quarter with a session and a remember cookie.
      const remember = i > USERS / 4
      await jar.inject({ method: 'POST', url: `/login/${id}${remember ? '?remember=1' : ''}`, headers })
      clients.push({ expected: `user-${i}`, cookie: jar.header('/whoami'), kind: remember ? 'session+remember' : 'session' })
    } else {
      // The rest hold only a remember cookie (a restarted browser).
      await jar.inject({ method: 'POST', url: `/login/${id}?remember=1`, headers })
      clients.push({ expected: `user-${i}`, cookie: `${COOKIE}=${encodeURIComponent(jar.get(COOKIE)!)}`, kind: 'remember' })
    }
  }
  for (let i = 0; i < 10; i++) clients.push({ expected: null, cookie: undefined, kind: 'anonymous' })
  clients.push({ expected: null, cookie: `${COOKIE}=v1.MQ.9999999999.60..${'A'.repeat(43)}`, kind: 'bad remember' })
  return { app, clients, loaderMismatches }
}

t.test('every concurrent response names its own user', async (t) => {
  const { app, clients, loaderMismatches } = await setup()
  t.equal(clients.filter((client) => client.kind === 'remember').length, USERS / 2, 'control: remember-only clients')
  const plan = Array.from({ length: REQUESTS }, (_, n) => clients[Math.floor(Math.random() * clients.length)] ?? clients[n % clients.length]!)
  const started = Date.now()
  const responses = await Promise.all(plan.map((client) => app.inject({
    url: '/whoami',
    headers: {
      'x-client': client.expected === null ? 'anonymous' : client.expected.slice('user-'.length),
      ...(client.cookie === undefined ? {} : { cookie: client.cookie })
    }
  })))
  t.comment(`${REQUESTS} requests in ${Date.now() - started} ms`)

  const wrong: string[] = []
  responses.forEach((response, n) => {
    const client = plan[n]!
    if (response.statusCode !== 200) {
      wrong.push(`${client.kind} ${String(client.expected)}: status ${response.statusCode}`)
      return
    }
    const body = response.json() as { user: string | null, again: string | null }
    if (body.user !== client.expected || body.again !== client.expected) {
      wrong.push(`${client.kind} ${String(client.expected)}: got ${String(body.user)} then ${String(body.again)}`)
    }
  })
  t.same(wrong.slice(0, 20), [], `all ${REQUESTS} responses name their own user`)
  t.same(loaderMismatches.slice(0, 20), [], 'the loader was always asked for the id of its own request')
  const kinds = new Set(plan.map((client) => client.kind))
  t.same([...kinds].sort(), ['anonymous', 'bad remember', 'remember', 'session', 'session+remember'], 'control: every kind was sent')
})

t.test('remember-only restores in parallel each land in their own session', async (t) => {
  const { app, clients } = await setup()
  const remembered = clients.filter((client) => client.kind === 'remember')
  const restores = await Promise.all(remembered.map((client) => app.inject({
    url: '/whoami',
    headers: { 'x-client': client.expected!.slice('user-'.length), cookie: client.cookie! }
  })))
  // Each restore created a session; follow up with that session alone.
  const followUps = await Promise.all(restores.map((response, n) => {
    const session = response.cookies.find((cookie) => cookie.name === 'sessionId')
    return app.inject({
      url: '/whoami',
      headers: {
        'x-client': remembered[n]!.expected!.slice('user-'.length),
        cookie: session === undefined ? '' : `sessionId=${encodeURIComponent(session.value)}`
      }
    })
  }))
  t.same(followUps.map((response) => response.json().user), remembered.map((client) => client.expected))
})
