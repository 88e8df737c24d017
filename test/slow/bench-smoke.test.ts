// Keeps the benchmark (bench/) from rotting: every scenario's server starts,
// its measured request answers 200 with the right body, and a tiny measured
// round works. No timing is asserted: benchmarks are not tests.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
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
  t.equal(harness.SCENARIOS.length, 15, 'the twelve scenarios of issue 6 and three diagnostics')
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
