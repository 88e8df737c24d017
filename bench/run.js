// `npm run bench`: every scenario of issue 6 side by side, in one run.
//
// Each scenario runs in its own server process. Every measured request is
// checked (status, body, cookies, and the guard's 401 without credentials)
// before anything is timed; then each server is warmed up and the rounds run
// interleaved (A B C …, then C B A …, alternately). The table reports
// medians over the rounds of the server's own CPU time per request, req/s, p99 latency, and its RSS at
// the end, and bench/RESULTS.md gets the table and the targets.
//
// Environment:
//   BENCH_QUICK=1         smoke check: one short round of BENCH_AMOUNT requests, no RESULTS.md
//   BENCH_ROUNDS=5        measured rounds (at least 5 for a real run)
//   BENCH_SECONDS=3       seconds per scenario and round
//   BENCH_WARMUP=2        warm-up seconds per scenario
//   BENCH_PREROUND=1      unmeasured seconds of load right before each measured round
//   BENCH_CONNECTIONS=10  autocannon connections
//   BENCH_AMOUNT=300      requests per round in quick mode
//   BENCH_SCENARIOS=a,b   only these scenarios (targets with a missing side are skipped)
//   BENCH_OUT=path        where to write the results (default bench/RESULTS.md; quick mode writes none)
//   BENCH_CPU_PROF=dir    run the servers with --cpu-prof, profiles written to dir at exit
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { STORE_CAPACITY } from './common.js'
import {
  SCENARIOS, WRITE_BUDGET, envNumber, measure, prepareScenario, renderWriteBudget, runWriteBudget, scenarioById, startServer, wantsWriteBudget
} from './harness.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** Issue 6's, 12's and 13's targets: ratios of server CPU per request, same run. */
export const TARGETS = Object.freeze([
  { subject: 'login', baseline: 'hand', limit: 1.05 },
  { subject: 'login', baseline: 'passport', limit: 0.95 },
  { subject: 'login-secure', baseline: 'passport-secure', limit: 0.95 },
  { subject: 'anon-with', baseline: 'anon-without', limit: 1.03 },
  { subject: 'signin-login', baseline: 'signin-passport', limit: 1.0 },
  { subject: 'login-store', baseline: 'login', limit: 1.10 },
  { subject: 'login-secure-store', baseline: 'login-secure', limit: 1.10 },
  { subject: 'login-timeouts', baseline: 'login', limit: 1.05 },
  { subject: 'login-secure-timeouts', baseline: 'login-secure', limit: 1.05 }
])

/** Ratios reported without a limit: where the cost of `login` comes from. */
export const DIAGNOSTICS = Object.freeze([
  { subject: 'login', baseline: 'hand-flask', what: 'fastify-login\'s own code, on @fastify/session' },
  { subject: 'hand-flask', baseline: 'hand', what: 'Flask-Login\'s session keys and the cache headers, written by hand' },
  { subject: 'login-secure', baseline: 'hand-flask-secure', what: 'fastify-login\'s own code, on @fastify/secure-session' },
  { subject: 'hand-flask-secure', baseline: 'passport-secure', what: 'the same session content in the encrypted cookie, against passport\'s' },
  { subject: 'signin-login', baseline: 'signin-hand-flask', what: 'fastify-login\'s own code in a sign-in' },
  { subject: 'signin-hand-flask', baseline: 'signin-passport', what: 'writing Flask-Login\'s keys by hand, against passport\'s one key' }
])

function settings () {
  const quick = process.env.BENCH_QUICK === '1' || process.argv.includes('--quick')
  const ids = process.env.BENCH_SCENARIOS?.split(',').map((id) => id.trim()).filter(Boolean)
  return {
    quick,
    scenarios: ids === undefined ? SCENARIOS : ids.map(scenarioById),
    rounds: envNumber('BENCH_ROUNDS', quick ? 1 : 5),
    seconds: envNumber('BENCH_SECONDS', 3),
    warmup: envNumber('BENCH_WARMUP', 2),
    preRound: envNumber('BENCH_PREROUND', 1),
    connections: envNumber('BENCH_CONNECTIONS', 10),
    amount: envNumber('BENCH_AMOUNT', 300),
    out: process.env.BENCH_OUT ?? (quick ? undefined : fileURLToPath(new URL('./RESULTS.md', import.meta.url))),
    profileDir: process.env.BENCH_CPU_PROF === undefined ? undefined : resolve(process.env.BENCH_CPU_PROF)
  }
}

export function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

function log (message) {
  process.stderr.write(`${message}\n`)
}

async function main () {
  const config = settings()
  if (!existsSync(new URL('../dist/esm/lib/index.js', import.meta.url))) {
    throw new Error('dist/ is missing: run `npm run build` first (npm run bench does)')
  }
  const load = config.quick
    ? { connections: config.connections, amount: config.amount }
    : { connections: config.connections, duration: config.seconds }
  const warmupLoad = config.quick
    ? { connections: config.connections, amount: Math.ceil(config.amount / 3) }
    : { connections: config.connections, duration: config.warmup }
  const preRoundLoad = config.quick ? undefined : { connections: config.connections, duration: config.preRound }
  const loadBefore = loadavg()
  const execArgv = config.profileDir === undefined ? [] : ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${config.profileDir}`]

  log(`starting ${config.scenarios.length} servers`)
  const servers = new Map()
  try {
    const started = await Promise.all(config.scenarios.map((scenario) => startServer(scenario.id, { execArgv })))
    for (const server of started) servers.set(server.scenario, server)

    const requests = new Map()
    for (const scenario of config.scenarios) {
      requests.set(scenario.id, await prepareScenario(scenario, servers.get(scenario.id)))
    }
    log('every measured request checked: 200 with the expected body')

    for (const scenario of config.scenarios) {
      await measure(scenario, servers.get(scenario.id), requests.get(scenario.id), warmupLoad)
    }
    log('warmed up')

    const rounds = []
    for (let round = 1; round <= config.rounds; round++) {
      const results = new Map()
      // Every other round runs in reverse order (A B C, C B A, …), so no
      // scenario always follows the same neighbour or sits at the same place.
      const order = round % 2 === 1 ? config.scenarios : [...config.scenarios].reverse()
      for (const scenario of order) {
        // Unmeasured: a server idle since its last round has a heap V8 has
        // shrunk and cold caches; that would be timed as the scenario's cost.
        if (preRoundLoad !== undefined) await measure(scenario, servers.get(scenario.id), requests.get(scenario.id), preRoundLoad)
        const result = await measure(scenario, servers.get(scenario.id), requests.get(scenario.id), load)
        results.set(scenario.id, result)
        log(`round ${round}/${config.rounds} ${scenario.id.padEnd(16)} ${result.cpuPerRequest.toFixed(1).padStart(7)} µs/req ${Math.round(result.requestsPerSecond).toString().padStart(6)} req/s  p99 ${result.p99} ms`)
      }
      rounds.push(results)
    }

    const summary = new Map()
    for (const scenario of config.scenarios) {
      const results = rounds.map((round) => round.get(scenario.id))
      const end = await servers.get(scenario.id).stats()
      summary.set(scenario.id, {
        scenario,
        cpu: median(results.map((result) => result.cpuPerRequest)),
        cpuMin: Math.min(...results.map((result) => result.cpuPerRequest)),
        cpuMax: Math.max(...results.map((result) => result.cpuPerRequest)),
        requestsPerSecond: median(results.map((result) => result.requestsPerSecond)),
        p99: median(results.map((result) => result.p99)),
        rss: end.rss
      })
    }
    if (config.profileDir !== undefined) {
      for (const server of servers.values()) {
        const { completed } = await server.stats()
        log(`profile of ${server.scenario}: ${config.profileDir}/CPU.*.${server.pid}.*.cpuprofile, ${completed} requests (node bench/profile.js <file> ${completed})`)
      }
    }
    const targets = evaluateRatios(TARGETS, summary, rounds)
    const diagnostics = evaluateRatios(DIAGNOSTICS, summary, rounds)
    const budget = wantsWriteBudget(config.scenarios) ? await writeBudget() : undefined
    const report = { config, summary, targets, diagnostics, budget, loadBefore, loadAfter: loadavg() }
    const budgetText = budget === undefined ? '' : `\n${renderWriteBudget(budget)}\n`
    process.stdout.write(`${renderTable(report)}\n\n${renderTargets(report)}\n\n${renderDiagnostics(report)}\n${budgetText}`)
    if (config.out !== undefined) {
      writeResults(config.out, renderResults(report))
      log(`wrote ${config.out}`)
    }
    if (targets.some((target) => !target.met) || (budget !== undefined && budget.writes > WRITE_BUDGET.limit)) log('some targets were missed: see the table above')
  } finally {
    await Promise.all([...servers.values()].map((server) => server.close()))
  }
}

/** Issue 13's write budget, on a server of its own. */
async function writeBudget () {
  const server = await startServer(WRITE_BUDGET.scenario)
  try {
    const budget = await runWriteBudget(server)
    log(`write budget: ${budget.requests} requests in ${budget.seconds.toFixed(2)} s, ${budget.writes} session writes`)
    return budget
  } finally {
    await server.close()
  }
}

/** Ratios of median CPU per request, with the spread of the per-round ratios. */
function evaluateRatios (pairs, summary, rounds) {
  return pairs.filter((pair) => summary.has(pair.subject) && summary.has(pair.baseline)).map((pair) => {
    const ratio = summary.get(pair.subject).cpu / summary.get(pair.baseline).cpu
    const perRound = rounds.map((round) => round.get(pair.subject).cpuPerRequest / round.get(pair.baseline).cpuPerRequest)
    return { ...pair, ratio, perRoundMin: Math.min(...perRound), perRoundMax: Math.max(...perRound), met: pair.limit === undefined || ratio <= pair.limit }
  })
}

const megabytes = (bytes) => (bytes / 1024 / 1024).toFixed(1)

function renderTable ({ summary }) {
  const lines = [
    '| scenario | what | CPU µs/req | (min–max over rounds) | req/s | p99 ms | RSS MB at end |',
    '|---|---|--:|--:|--:|--:|--:|'
  ]
  for (const row of summary.values()) {
    lines.push(`| ${row.scenario.id} | ${row.scenario.what} | ${row.cpu.toFixed(1)} | ${row.cpuMin.toFixed(1)}–${row.cpuMax.toFixed(1)} | ${Math.round(row.requestsPerSecond)} | ${row.p99} | ${megabytes(row.rss)} |`)
  }
  return lines.join('\n')
}

function renderTargets ({ targets }) {
  const lines = [
    '| target | ratio (of medians) | per-round ratios | limit | result |',
    '|---|--:|--:|--:|---|'
  ]
  for (const target of targets) {
    lines.push(`| \`${target.subject}\` / \`${target.baseline}\` | ${target.ratio.toFixed(3)} | ${target.perRoundMin.toFixed(2)}–${target.perRoundMax.toFixed(2)} | ≤ ${target.limit.toFixed(2)} | ${target.met ? 'met' : '**missed**'} |`)
  }
  return lines.join('\n')
}

function renderDiagnostics ({ diagnostics }) {
  const lines = [
    '| ratio | of medians | per-round ratios | what it isolates |',
    '|---|--:|--:|---|'
  ]
  for (const ratio of diagnostics) {
    lines.push(`| \`${ratio.subject}\` / \`${ratio.baseline}\` | ${ratio.ratio.toFixed(3)} | ${ratio.perRoundMin.toFixed(2)}–${ratio.perRoundMax.toFixed(2)} | ${ratio.what} |`)
  }
  return lines.join('\n')
}

function packageVersion (name) {
  try {
    return JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), 'utf8')).version
  } catch {
    return 'not installed'
  }
}

function gitCommit () {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return 'unknown'
  }
}

function cpuModel () {
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))
    if (match !== null) return match[1]
  } catch {}
  return cpus()[0]?.model ?? 'unknown'
}

function renderResults (report) {
  const { config } = report
  const own = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version
  const load = (values) => values.map((value) => value.toFixed(2)).join(', ')
  const budgetSection = report.budget === undefined
    ? ''
    : `\n## Write budget (issue 13: session writes counted by the store)\n\n${renderWriteBudget(report.budget)}\n`
  const packages = ['fastify', '@fastify/cookie', '@fastify/session', '@fastify/secure-session', '@fastify/passport', 'autocannon']
    .map((name) => `${name} ${packageVersion(name)}`).join(', ')
  return `# Benchmark results

Written by \`npm run bench\` (bench/run.js) on ${new Date().toISOString()}. Do not edit
the generated part by hand: run the benchmark again. Sections between
\`<!-- keep:… -->\` markers are kept when the file is rewritten.

## Machine and versions

- CPU: ${cpuModel()}, ${cpus().length} cores; ${megabytes(totalmem())} MB of memory
- Load average (1, 5, 15 min) at the start: ${load(report.loadBefore)}; at the end: ${load(report.loadAfter)}
- Node ${process.version} on ${process.platform}/${process.arch}
- fastify-login ${own} (commit ${gitCommit()}), ${packages}
- ${config.rounds} rounds of ${config.seconds} s per scenario, interleaved (every other round in reverse order), after ${config.warmup} s of warm-up each;
  each measured round is preceded by ${config.preRound} s of unmeasured load on the same server;
  ${config.connections} autocannon connections from the parent process; every server a separate process on 127.0.0.1

CPU µs/req is the server process's own user + system time (\`process.cpuUsage()\`)
divided by the requests its handler completed in the round; every round
checks that all responses were 2xx and that the server's count matches
autocannon's. Values are medians over the rounds; RSS is read after the last
round. Sessions live in @fastify/session's memory store, capped at
${STORE_CAPACITY.toLocaleString('en')} sessions (oldest evicted) as a store with expiry would be:
the \`signin-*\` and \`restore\` servers create a session per request, and an
unbounded store would make their CPU numbers the garbage collector's cost of a
heap that grows with every request served.

## Scenarios

${renderTable(report)}

## Targets (issues 6 and 13: ratios of server CPU per request, same run)

${renderTargets(report)}
${budgetSection}
## Diagnostics (no target)

\`hand-flask\` is \`hand\` doing by hand what the SPEC makes fastify-login do
on every request with the same data: Flask-Login's session keys, including
the 128-character \`_id\`, the client identifier compared, and the
\`Cache-Control\` and \`Vary\` headers; \`signin-hand-flask\` is its
sign-in (\`regenerate()\`, then the same keys). They separate what
fastify-login's code costs from what that session content and those headers
cost the session layer.

${renderDiagnostics(report)}
`
}

/** Writes `generated`, keeping the `<!-- keep:NAME:start -->…<!-- keep:NAME:end -->` sections of the old file. */
function writeResults (path, generated) {
  let kept = ''
  if (existsSync(path)) {
    const old = readFileSync(path, 'utf8')
    const blocks = old.match(/<!-- keep:([\w-]+):start -->[\s\S]*?<!-- keep:\1:end -->/g) ?? []
    kept = blocks.map((block) => `\n${block}\n`).join('')
  }
  writeFileSync(path, generated + kept)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error) => {
    console.error(error)
    process.exitCode = 1
  })
}
