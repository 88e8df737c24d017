// Keeps the benchmark (bench/) from rotting: every scenario's server starts,
// its measured request answers 200 with the right body, and a tiny measured
// round works. No timing is asserted: benchmarks are not tests.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import type { AddressInfo } from 'node:net'
import Fastify from 'fastify'
import t from 'tap'

type Expectation = 'hello' | 'user' | 'signin' | 'restore'

interface Scenario {
  id: string
  expect: Expectation
}

interface BenchRequest {
  method: string
  path: string
  headers: Record<string, string>
  body?: string
}

interface ServerStats {
  cpu: number
  rss: number
  completed: number
}

interface BenchServer {
  url: string
  stats (): Promise<ServerStats>
  close (): Promise<void>
}

interface Harness {
  SCENARIOS: readonly Scenario[]
  EXTRA_SCENARIOS: readonly Scenario[]
  startServer (id: string): Promise<BenchServer>
  prepareScenario (scenario: Scenario, server: BenchServer): Promise<BenchRequest>
  probe (url: string, request: BenchRequest): Promise<{ status: number, body: unknown, cookies: Map<string, string> }>
  measure (scenario: Scenario, server: BenchServer, request: BenchRequest, load: { connections: number, amount: number }): Promise<{ cpuPerRequest: number, completed: number }>
  cannon (url: string, request: BenchRequest & { keepCookie?: string }, load: { connections: number, amount: number }): Promise<{ non2xx: number }>
  WRITE_BUDGET: { scenario: string, limit: number }
  runWriteBudget (server: BenchServer, options?: { runSeconds?: number }): Promise<{ requests: number, writes: number, seconds: number }>
}

const benchDir = new URL('../../bench/', import.meta.url)
const harness = (await import(new URL('harness.js', benchDir).href)) as Harness
const run = promisify(execFile)

const EXPECTED: Record<Expectation, unknown> = {
  hello: { hello: 'world' },
  user: { id: '1', name: 'Ann' },
  signin: { ok: true },
  restore: { id: '1', name: 'Ann' }
}

t.test('every scenario answers its measured request', async (t) => {
  t.equal(harness.SCENARIOS.length, 19, 'the twelve scenarios of issue 6, three diagnostics, the two of issue 12 and the two of issue 13')
  const servers = await Promise.all(harness.SCENARIOS.map((scenario) => harness.startServer(scenario.id)))
  t.teardown(() => Promise.all(servers.map((server) => server.close())))
  for (const [index, scenario] of harness.SCENARIOS.entries()) {
    const server = servers[index]!
    await t.test(scenario.id, async (t) => {
      const request = await harness.prepareScenario(scenario, server)
      const response = await harness.probe(server.url, request)
      t.equal(response.status, 200)
      t.same(response.body, EXPECTED[scenario.expect])
      if (scenario.expect === 'signin' || scenario.expect === 'restore') t.ok(response.cookies.has('sessionId'), 'a session is created')
      const round = await harness.measure(scenario, server, request, { connections: 2, amount: 40 })
      t.equal(round.completed, 40, 'the server counts the requests of a round')
      t.ok(round.cpuPerRequest > 0, 'the server reports its CPU time')
    })
  }
})

t.test('every diagnostic variant answers its measured request', async (t) => {
  const ids = harness.EXTRA_SCENARIOS.map((scenario) => scenario.id)
  t.same(ids, ['login-noprotect', 'login-secure-noprotect', 'login-b64', 'login-secure-b64', 'hand-flask-noheaders', 'hand-flask-secure-noheaders'])
  const servers = await Promise.all(ids.map((id) => harness.startServer(id)))
  t.teardown(() => Promise.all(servers.map((server) => server.close())))
  for (const [index, scenario] of harness.EXTRA_SCENARIOS.entries()) {
    const server = servers[index]!
    const request = await harness.prepareScenario(scenario, server)
    const response = await harness.probe(server.url, request)
    t.equal(response.status, 200, `${scenario.id}: status`)
    t.same(response.body, EXPECTED[scenario.expect], `${scenario.id}: body`)
  }
})

t.test('the write budget counts the session writes of a run inside one interval', async (t) => {
  const server = await harness.startServer(harness.WRITE_BUDGET.scenario)
  t.teardown(() => server.close())
  const budget = await harness.runWriteBudget(server, { runSeconds: 0.3 })
  t.ok(budget.requests > 1, `${budget.requests} requests`)
  t.equal(budget.writes, 1, 'the first request writes the due activity time, no other does')
})

t.test('a load that keeps its cookie sends the newest one a response set, as a browser does', async (t) => {
  const app = Fastify()
  t.teardown(() => app.close())
  let issued = 0
  const sent: number[] = []
  app.get('/me', async (request, reply) => {
    sent.push(Number(/session=v(\d+)/.exec(request.headers.cookie ?? '')?.[1]))
    issued++
    reply.header('set-cookie', `session=v${issued}; Path=/`)
    return {}
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  await harness.cannon(url, { method: 'GET', path: '/me', headers: { cookie: 'session=v0' }, keepCookie: 'session' }, { connections: 1, amount: 50 })
  t.same(sent, Array.from({ length: 50 }, (_, index) => index), 'each request carries the cookie of the response before it')
})

t.test('a measured round fails loudly when the request is refused', async (t) => {
  const scenario = harness.SCENARIOS.find((candidate) => candidate.id === 'login')!
  const server = await harness.startServer('login')
  t.teardown(() => server.close())
  const anonymous = { method: 'GET', path: '/me', headers: {} }
  await t.rejects(harness.measure(scenario, server, anonymous, { connections: 2, amount: 20 }), /non-2xx/)
})

t.test('bench/run.js runs in quick mode', async (t) => {
  const { stdout } = await run(process.execPath, [fileURLToPath(new URL('run.js', benchDir)), '--quick'], {
    env: { ...process.env, BENCH_SCENARIOS: 'hand,login', BENCH_AMOUNT: '60' }
  })
  t.match(stdout, /\| login \| .* \| [\d.]+ \|/, 'a row for login')
  t.match(stdout, /`login` \/ `hand`/, 'the ratio of a target')
})

t.test('bench/soak.js reports RSS per chunk', async (t) => {
  const { stdout } = await run(process.execPath, [fileURLToPath(new URL('soak.js', benchDir))], {
    env: { ...process.env, SOAK_REQUESTS: '400', SOAK_FIRST: '200', SOAK_OUT: 'none' }
  })
  t.match(stdout, /\| 200 \| [\d.]+ \| [\d.]+ \|/)
  t.match(stdout, /\| 400 \| [\d.]+ \| [\d.]+ \|/)
})
