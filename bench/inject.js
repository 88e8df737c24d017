// `node bench/inject.js [scenario …]`: CPU per request without the network.
//
// A diagnostic next to `npm run bench`, for A/B work on lib/: each scenario's
// app runs in its own child process and is driven in-process with
// `app.inject` (serially), so the kernel's loopback TCP work and the
// scheduling noise of a busy machine drop out and what is left is the
// JavaScript each stack runs per request (plus light-my-request's own,
// identical for all). Rounds are interleaved; medians are reported, with the
// targets' ratios. Not a substitute for the HTTP numbers of bench/run.js.
//
// Environment: INJECT_ROUNDS (7), INJECT_REQUESTS per round (20000),
// INJECT_WARMUP requests (20000) before each round, in each round's fresh
// process.
import { fork } from 'node:child_process'
import { isDeepStrictEqual } from 'node:util'
import { fileURLToPath } from 'node:url'
import { buildApp, completedRequests } from './apps.js'
import { CLIENT_HEADERS, CREDENTIALS, EXPECTED_USER } from './common.js'
import { EXTRA_SCENARIOS, SCENARIOS, scenarioById } from './harness.js'
import { DIAGNOSTICS, TARGETS, median } from './run.js'

const SELF = fileURLToPath(import.meta.url)

function cookiePair (response, name) {
  const header = [response.headers['set-cookie'] ?? []].flat().find((value) => value.startsWith(`${name}=`))
  if (header === undefined) throw new Error(`no ${name} cookie was set`)
  return header.split(';')[0]
}

async function signIn (app, remember = false) {
  const response = await app.inject({
    method: 'POST',
    url: '/login',
    headers: { ...CLIENT_HEADERS, 'content-type': 'application/json' },
    payload: JSON.stringify({ ...CREDENTIALS, remember })
  })
  if (response.statusCode !== 200) throw new Error(`sign-in failed with ${response.statusCode}`)
  return response
}

/** The measured request of `scenario` as inject options, and the body it must answer. */
async function prepare (app, scenario) {
  const get = (url, cookie) => ({ method: 'GET', url, headers: cookie === undefined ? { ...CLIENT_HEADERS } : { ...CLIENT_HEADERS, cookie } })
  switch (scenario.expect) {
    case 'hello':
      return { request: get(scenario.id === 'bare' ? '/' : '/public'), expected: { hello: 'world' } }
    case 'signin':
      return {
        request: { method: 'POST', url: '/login', headers: { ...CLIENT_HEADERS, 'content-type': 'application/json' }, payload: JSON.stringify(CREDENTIALS) },
        expected: { ok: true }
      }
    case 'restore':
      return { request: get('/me', cookiePair(await signIn(app, true), 'remember_token')), expected: EXPECTED_USER }
    default: {
      const name = scenario.id.includes('secure') ? 'session' : 'sessionId'
      return { request: get('/me', cookiePair(await signIn(app), name)), expected: EXPECTED_USER }
    }
  }
}

async function child (id) {
  const scenario = scenarioById(id)
  const app = await buildApp(id)
  await app.ready()
  const { request, expected } = await prepare(app, scenario)
  const response = await app.inject(request)
  if (response.statusCode !== 200 || !isDeepStrictEqual(response.json(), expected)) {
    throw new Error(`${id}: the measured request answered ${response.statusCode} ${response.body}`)
  }
  process.on('message', async (message) => {
    const before = process.cpuUsage()
    const done = completedRequests()
    for (let index = 0; index < message.requests; index++) {
      const { statusCode } = await app.inject(request)
      if (statusCode !== 200) throw new Error(`${id}: a measured request answered ${statusCode}`)
    }
    const cpu = process.cpuUsage(before)
    const completed = completedRequests() - done
    process.send({ cpuPerRequest: (cpu.user + cpu.system) / completed })
  })
  process.on('disconnect', () => process.exit(0))
  process.send({ ready: true })
}

function start (id) {
  const worker = fork(SELF, ['--child', id], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const next = () => new Promise((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('exit', (code) => reject(new Error(`${id}: the child exited (${code})`)))
  })
  return {
    id,
    ready: next(),
    async run (requests) {
      const reply = next()
      worker.send({ requests })
      return (await reply).cpuPerRequest
    },
    close: () => worker.disconnect()
  }
}

// One round in a fresh process: light-my-request (6.8 on Node 20) keeps about
// 9 KB per inject alive, even for a bare `(req, res) => res.end()`, so a
// long-lived child would time its own growing heap.
async function round (id, warmup, requests) {
  const worker = start(id)
  try {
    await worker.ready
    await worker.run(warmup)
    return await worker.run(requests)
  } finally {
    worker.close()
  }
}

async function main () {
  const ids = process.argv.slice(2)
  const scenarios = ids.length > 0 ? ids.map(scenarioById) : [...SCENARIOS, ...EXTRA_SCENARIOS]
  const rounds = Number(process.env.INJECT_ROUNDS ?? 7)
  const requests = Number(process.env.INJECT_REQUESTS ?? 20000)
  const warmup = Number(process.env.INJECT_WARMUP ?? 20000)
  const results = new Map(scenarios.map((scenario) => [scenario.id, []]))
  for (let index = 1; index <= rounds; index++) {
    for (const scenario of scenarios) results.get(scenario.id).push(await round(scenario.id, warmup, requests))
    process.stderr.write(`round ${index}/${rounds} done\n`)
  }
  console.log('| scenario | CPU µs/req (inject, median) | min–max |\n|---|--:|--:|')
  const medians = new Map()
  for (const [id, values] of results) {
    medians.set(id, median(values))
    console.log(`| ${id} | ${median(values).toFixed(1)} | ${Math.min(...values).toFixed(1)}–${Math.max(...values).toFixed(1)} |`)
  }
  console.log('\n| ratio | inject | limit |\n|---|--:|--:|')
  for (const pair of [...TARGETS, ...DIAGNOSTICS]) {
    if (!medians.has(pair.subject) || !medians.has(pair.baseline)) continue
    const limit = pair.limit === undefined ? '(diagnostic)' : `≤ ${pair.limit.toFixed(2)}`
    console.log(`| ${pair.subject} / ${pair.baseline} | ${(medians.get(pair.subject) / medians.get(pair.baseline)).toFixed(3)} | ${limit} |`)
  }
}

const childIndex = process.argv.indexOf('--child')
const entry = childIndex === -1 ? main() : child(process.argv[childIndex + 1])
entry.catch((error) => {
  console.error(error)
  process.exit(1)
})
