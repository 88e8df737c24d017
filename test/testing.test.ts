import { connect, type IncomingHttpHeaders } from 'node:http2'
import t from 'tap'
import Fastify, { type FastifyInstance } from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin from '../lib/index.js'
import { loginAs } from '../lib/testing.js'
import { buildApp, LOGIN_SECRET, SESSION_SECRET } from './helpers.js'

const TICKET_HEADER = 'x-fastify-login-test-ticket'
const MODES = ['basic', 'strong', false] as const
const PLUGINS = ['session', 'secure-session'] as const

// Any object with an id works as a user; the app's loader returns its own User '1' (Ann).
const ann = { id: '1', name: 'Ann' }

for (const sessionPlugin of PLUGINS) {
  for (const sessionProtection of MODES) {
    const label = `${sessionPlugin}, sessionProtection ${String(sessionProtection)}`

    t.test(`loginAs logs in a fresh user (${label})`, async (t) => {
      const { app } = await buildApp({ sessionPlugin, login: { sessionProtection } })
      const cookie = await loginAs(app, ann)
      const who = await app.inject({ url: '/', headers: { cookie } })
      t.same(who.json(), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
      t.same((await app.inject({ url: '/fresh', headers: { cookie } })).json(), { user: 'Ann' })
      t.same((await app.inject({ url: '/', headers: { cookie } })).json().fresh, true, 'still fresh on a second request')
    })

    t.test(`loginAs with fresh false logs in a stale user (${label})`, async (t) => {
      const { app } = await buildApp({ sessionPlugin, login: { sessionProtection } })
      const cookie = await loginAs(app, ann, { fresh: false })
      t.same((await app.inject({ url: '/', headers: { cookie } })).json(), { user: 'Ann', authenticated: true, fresh: false, remembered: false })
      t.equal((await app.inject({ url: '/protected', headers: { cookie } })).statusCode, 200)
      t.equal((await app.inject({ url: '/fresh', headers: { cookie } })).statusCode, 401, 'the fresh guard refuses it')
    })
  }
}

t.test('loginAs does not touch the user table or call the loader to log in', async (t) => {
  const { app, loaded } = await buildApp()
  const cookie = await loginAs(app, ann)
  t.same(loaded, [])
  await app.inject({ url: '/', headers: { cookie } })
  t.same(loaded, ['1'])
})

t.test('loginAs with remember also returns a remember cookie', async (t) => {
  const { app } = await buildApp()
  const cookie = await loginAs(app, ann, { remember: true })
  const remember = cookie.split('; ').find((pair) => pair.startsWith('remember_token='))
  t.ok(remember)
  const response = await app.inject({ url: '/', headers: { cookie: remember! } })
  t.same(response.json(), { user: 'Ann', authenticated: true, fresh: false, remembered: true })
})

t.test('loginAs works on an app without a / route', async (t) => {
  const { app } = await buildApp({ routes: false, login: { sessionProtection: 'strong', loginRequiredByDefault: true } })
  app.get('/me', async (request) => ({ user: (request.user as typeof ann).name }))
  const cookie = await loginAs(app, ann)
  t.same((await app.inject({ url: '/me', headers: { cookie } })).json(), { user: 'Ann' })
  t.equal((await app.inject('/me')).statusCode, 401, 'the route does need a login')
})

t.test('loginAs rejects on an app without fastify-login', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  await t.rejects(loginAs(app, ann), /fastify-login/)
})

t.test('loginAs rejects a user it cannot log in, saying why', async (t) => {
  const { app } = await buildApp()
  await t.rejects(loginAs(app, { name: 'nobody' }), /could not log the user in \(status 500\).*FST_LOGIN_INVALID_USER_ID/)
})

t.test('loginAs rejects when the session plugin sets no cookie over plain HTTP', async (t) => {
  const { app } = await buildApp({ session: { cookie: { secure: true } } })
  await t.rejects(loginAs(app, ann), /set no cookie/)
})

// Captures the tickets of loginAs calls as they reach the app.
async function appWithTicketSpy () {
  const built = await buildApp()
  const tickets: string[] = []
  built.app.addHook('onResponse', async (request) => {
    const ticket = request.headers[TICKET_HEADER]
    if (typeof ticket === 'string') tickets.push(ticket)
  })
  return { ...built, tickets }
}

t.test('an injected request with a made-up ticket logs nobody in', async (t) => {
  const { app } = await appWithTicketSpy()
  await loginAs(app, ann)
  const response = await app.inject({ url: '/', headers: { [TICKET_HEADER]: 'made-up-ticket' } })
  t.equal(response.statusCode, 200)
  t.same(response.json(), { user: null, authenticated: false, fresh: false, remembered: false })
  t.equal(response.headers['set-cookie'], undefined)
})

t.test('a used ticket cannot be replayed', async (t) => {
  const { app, tickets } = await appWithTicketSpy()
  await loginAs(app, ann)
  t.equal(tickets.length, 1, 'the spy saw the ticket')
  const response = await app.inject({ url: '/', headers: { [TICKET_HEADER]: tickets[0]! } })
  t.equal(response.statusCode, 200)
  t.equal(response.json().authenticated, false)
  t.equal(response.headers['set-cookie'], undefined)
})

t.test('a real HTTP request with a ticket header logs nobody in', async (t) => {
  const { app, tickets } = await appWithTicketSpy()
  await loginAs(app, ann)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  const address = app.server.address()
  const port = typeof address === 'object' && address !== null ? address.port : 0
  for (const ticket of ['made-up-ticket', tickets[0]!]) {
    const response = await fetch(`http://127.0.0.1:${port}/`, { headers: { [TICKET_HEADER]: ticket } })
    t.equal(response.status, 200)
    t.same(await response.json(), { user: null, authenticated: false, fresh: false, remembered: false })
    t.equal(response.headers.get('set-cookie'), null)
  }
})

function parsedOrRaw (body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    return body
  }
}

// Tickets are good for one injected request (SPEC section 16). Each app's
// onSend hook replays the ticket of the loginAs request it is answering, so
// the replay happens while loginAs is still waiting for its response.
for (const sessionPlugin of PLUGINS) {
  t.test(`a ticket replayed while loginAs is pending logs nobody in (${sessionPlugin})`, async (t) => {
    const { app } = await buildApp({ sessionPlugin })
    const replays: Array<{ via: string, status: number, body: unknown, cookie: unknown }> = []
    let replayed = false
    app.addHook('onSend', async (request) => {
      const ticket = request.headers[TICKET_HEADER]
      if (typeof ticket !== 'string' || replayed) return
      replayed = true
      const injected = await app.inject({ url: '/', headers: { [TICKET_HEADER]: ticket } })
      replays.push({ via: 'inject', status: injected.statusCode, body: injected.body, cookie: injected.headers['set-cookie'] })
      const address = app.server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      const overHttp = await fetch(`http://127.0.0.1:${port}/`, { headers: { [TICKET_HEADER]: ticket } })
      replays.push({ via: 'HTTP', status: overHttp.status, body: await overHttp.text(), cookie: overHttp.headers.get('set-cookie') ?? undefined })
    })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.teardown(() => app.close())
    const cookie = await loginAs(app, ann)
    t.equal((await app.inject({ url: '/', headers: { cookie } })).json().user, 'Ann', 'loginAs itself worked')
    t.equal(replays.length, 2)
    for (const replay of replays) {
      t.equal(replay.status, 200, `${replay.via}: an ordinary request`)
      t.same(parsedOrRaw(String(replay.body)), { user: null, authenticated: false, fresh: false, remembered: false }, `${replay.via}: anonymous`)
      t.equal(replay.cookie, undefined, `${replay.via}: no session cookie`)
    }
  })
}

interface Replay {
  status: number
  body: string
  cookie: string | null
}

async function getOverHttp1 (port: number, ticket: string): Promise<Replay> {
  const response = await fetch(`http://127.0.0.1:${port}/`, { headers: { [TICKET_HEADER]: ticket } })
  return { status: response.status, body: await response.text(), cookie: response.headers.get('set-cookie') }
}

function getOverHttp2 (port: number, ticket: string): Promise<Replay> {
  return new Promise((resolve, reject) => {
    const client = connect(`http://127.0.0.1:${port}`)
    client.on('error', reject)
    const stream = client.request({ ':path': '/', [TICKET_HEADER]: ticket })
    let headers: IncomingHttpHeaders = {}
    let body = ''
    stream.on('response', (received) => { headers = received })
    stream.setEncoding('utf8')
    stream.on('data', (chunk: string) => { body += chunk })
    stream.on('end', () => {
      client.close()
      const cookie = headers['set-cookie']
      resolve({ status: Number(headers[':status']), body, cookie: cookie === undefined ? null : cookie.join(', ') })
    })
    stream.on('error', reject)
  })
}

// An app whose own onRequest hook, registered before fastify-login, sees the
// ticket before the plugin does and replays it over HTTP, then lets the
// request go on (or, with `refuse`, answers it itself: the loginAs fails).
async function appWithEarlyHook (refuse: boolean, http2 = false) {
  // Typed as the HTTP/1 instance: the routes and hooks below are the same for both.
  const app = (http2 ? Fastify({ http2: true }) : Fastify()) as unknown as FastifyInstance
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SESSION_SECRET, cookie: { secure: false }, saveUninitialized: false })
  const tickets: string[] = []
  const replays: Replay[] = []
  app.addHook('onRequest', async (request, reply) => {
    const ticket = request.headers[TICKET_HEADER]
    if (typeof ticket !== 'string' || tickets.length > 0) return
    tickets.push(ticket)
    const address = app.server.address()
    const port = typeof address === 'object' && address !== null ? address.port : 0
    replays.push(await (http2 ? getOverHttp2 : getOverHttp1)(port, ticket))
    if (refuse) await reply.code(503).send({ busy: true })
  })
  await app.register(fastifyLogin, { secret: LOGIN_SECRET, userLoader: (id) => (id === '1' ? ann : null) })
  app.get('/', async (request) => ({ authenticated: request.isAuthenticated() }))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.teardown(() => app.close())
  return { app, tickets, replays }
}

t.test('a ticket replayed over HTTP before the plugin has seen it logs nobody in', async (t) => {
  const { app, replays } = await appWithEarlyHook(false)
  const cookie = await loginAs(app, ann)
  t.same((await app.inject({ url: '/', headers: { cookie } })).json(), { authenticated: true }, 'loginAs itself worked')
  t.same(replays, [{ status: 200, body: '{"authenticated":false}', cookie: null }], 'the replay was an anonymous request')
})

t.test('a ticket replayed over HTTP/2 before the plugin has seen it logs nobody in', async (t) => {
  const { app, replays } = await appWithEarlyHook(false, true)
  const cookie = await loginAs(app, ann)
  t.same((await app.inject({ url: '/', headers: { cookie } })).json(), { authenticated: true }, 'loginAs itself worked')
  t.same(replays, [{ status: 200, body: '{"authenticated":false}', cookie: null }], 'the replay was an anonymous request')
})

t.test('the ticket of a failed loginAs is dead', async (t) => {
  const { app, tickets } = await appWithEarlyHook(true)
  await t.rejects(loginAs(app, ann), /could not log the user in \(status 503\)/)
  const replay = await app.inject({ url: '/', headers: { [TICKET_HEADER]: tickets[0]! } })
  t.same(replay.json(), { authenticated: false })
  t.equal(replay.headers['set-cookie'], undefined)
})
