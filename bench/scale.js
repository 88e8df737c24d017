// One instance or two, over the same Redis (issue 5): the example
// application (`node dist/example/server.js` with REDIS_URL) as separate
// processes, loaded by autocannon from this process with an authenticated
// `GET /api/me` carrying a session cookie (a Redis read and a rolling write,
// a SQLite user lookup and fastify-login's loading per request).
//
// For each instance and for redis-server it reads the process's CPU time
// (utime + stime in /proc/<pid>/stat) before and after every round, and
// reports CPU per request next to the throughput. Each setup runs twice: as
// fast as it goes (autocannon saturating), and at a fixed total rate that
// both setups can serve (the same work, split in one or two processes).
// Rounds alternate between the setups. Run: `npm run bench:scale` (builds
// first), or `node bench/scale.js` once built. SCALE_DURATION (seconds per
// round, default 5), SCALE_WARMUP (seconds per setup, default 2), SCALE_ROUNDS
// (per setup, default 3), SCALE_CONNECTIONS (in total, default 20) and
// SCALE_RATE (requests per second in total for the fixed-rate setups, default
// 1500) change the load; `--write` puts the results table into bench/SCALE.md
// (between its results markers).
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { connect, createServer } from 'node:net'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const REPORT = join(ROOT, 'bench', 'SCALE.md')
const DURATION = Number(process.env.SCALE_DURATION || 5)
const ROUNDS = Number(process.env.SCALE_ROUNDS || 3)
const CONNECTIONS = Number(process.env.SCALE_CONNECTIONS || 20)
const RATE = Number(process.env.SCALE_RATE || 1500)
const WARMUP = Number(process.env.SCALE_WARMUP || 2)
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
/** The same client logs in and sends the measured requests (another would trip session protection, which logs). */
const USER_AGENT = 'fastify-login-bench-scale'
const SECRETS = {
  SESSION_SECRET: 'bench-scale-session-secret-of-32-characters',
  LOGIN_SECRET: 'bench-scale-login-secret-of-32-characters!!'
}

/** @type {import('node:child_process').ChildProcess[]} */
const children = []
/** @type {string[]} */
const tempDirs = []

function freePort () {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = /** @type {import('node:net').AddressInfo} */ (server.address())
      server.close(() => resolve(address.port))
    })
  })
}

/** @param {number} port */
function pings (port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const done = (/** @type {boolean} */ ok) => { socket.destroy(); resolve(ok) }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')))
  })
}

/** CPU seconds (user + system) the process has used so far. */
function cpuSeconds (/** @type {number} */ pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may contain spaces: count from after its ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS // utime, stime (fields 14 and 15)
}

/** Busy and total jiffies of the whole machine (the `cpu` line of /proc/stat). */
function machineTicks () {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  const values = line.trim().split(/\s+/).slice(1).map(Number)
  const total = values.reduce((sum, value) => sum + value, 0)
  const idle = (values[3] ?? 0) + (values[4] ?? 0) // idle + iowait
  return { busy: total - idle, total }
}

async function startRedis () {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'fastify-login-scale-redis-'))
  tempDirs.push(dir)
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'], { stdio: ['ignore', 'ignore', 'inherit'] })
  children.push(child)
  for (let i = 0; i < 100; i++) {
    if (await pings(port)) return { url: `redis://127.0.0.1:${port}`, pid: /** @type {number} */ (child.pid) }
    await sleep(50)
  }
  throw new Error('redis-server did not answer PING within 5 s')
}

/**
 * @param {string} name
 * @param {Record<string, string>} env
 */
async function startInstance (name, env) {
  const port = await freePort()
  const childEnv = { ...process.env, ...env, HOST: '127.0.0.1', PORT: String(port), LOG_LEVEL: 'warn' }
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'example', 'server.js')], { cwd: ROOT, env: childEnv, stdio: ['ignore', 'pipe', 'inherit'] })
  children.push(child)
  const url = `http://127.0.0.1:${port}`
  let output = ''
  const logs = { lines: 0, sample: '' }
  await new Promise((resolve, reject) => {
    const starting = (/** @type {Buffer} */ chunk) => {
      output += chunk.toString()
      if (!output.includes(`${url}/`)) return
      // Listening. From now on only count log lines: a log line per request
      // would be part of what is measured (and is a mistake in the setup).
      child.stdout.off('data', starting)
      child.stdout.on('data', (/** @type {Buffer} */ more) => {
        if (logs.sample === '') logs.sample = more.toString().split('\n')[0] ?? ''
        logs.lines += more.toString().split('\n').length - 1
      })
      resolve(undefined)
    }
    child.stdout.on('data', starting)
    child.once('exit', (code) => reject(new Error(`instance ${name} exited with code ${code}:\n${output}`)))
  })
  return { name, url, pid: /** @type {number} */ (child.pid), logs }
}

/**
 * Logs the demo user in on `url` and returns the session cookie (`session=...`).
 * @param {string} url
 */
async function logIn (url) {
  const form = await fetch(`${url}/login`, { headers: { accept: 'text/html', 'user-agent': USER_AGENT } })
  const formCookie = form.headers.getSetCookie().map((header) => header.split(';')[0]).join('; ')
  const token = /name="_csrf" value="([^"]+)"/.exec(await form.text())?.[1] ?? ''
  const response = await fetch(`${url}/login`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: formCookie, 'content-type': 'application/x-www-form-urlencoded', 'user-agent': USER_AGENT },
    body: new URLSearchParams({ _csrf: token, username: 'demo', password: 'demo-password', next: '/' })
  })
  const cookie = response.headers.getSetCookie().map((header) => header.split(';')[0]).find((pair) => pair?.startsWith('session='))
  if (response.status !== 303 || cookie === undefined) throw new Error(`the login on ${url} answered ${response.status}`)
  return cookie
}

/**
 * The measured request: must answer 200 with the demo user.
 * @param {string} url
 * @param {string} cookie
 */
async function checkRequest (url, cookie) {
  const response = await fetch(`${url}/api/me`, { headers: { cookie, accept: 'application/json', 'user-agent': USER_AGENT } })
  const body = await response.json()
  if (response.status !== 200 || body.username !== 'demo') {
    throw new Error(`GET /api/me on ${url} answered ${response.status} ${JSON.stringify(body)}`)
  }
}

/**
 * @param {{ url: string, cookie: string }} target
 * @param {number} connections
 * @param {number} duration
 * @param {number | undefined} rate requests per second for this target; undefined: as fast as it goes
 * @returns {Promise<import('autocannon').Result>}
 */
function cannon (target, connections, duration, rate) {
  return autocannon({
    url: `${target.url}/api/me`,
    connections,
    duration,
    ...(rate === undefined ? {} : { overallRate: rate }),
    headers: { cookie: target.cookie, accept: 'application/json', 'user-agent': USER_AGENT }
  })
}

/**
 * One round: autocannon against each target at once (the connections and the
 * rate split between them), with the CPU of every process read before and after.
 * @param {Array<{ url: string, cookie: string, pid: number }>} targets
 * @param {number | undefined} rate total requests per second; undefined: as fast as it goes
 * @param {number} redisPid
 * @param {number} duration
 */
async function round (targets, rate, redisPid, duration) {
  const cpuBefore = targets.map((target) => cpuSeconds(target.pid))
  const redisBefore = cpuSeconds(redisPid)
  const selfBefore = process.cpuUsage()
  const machineBefore = machineTicks()
  const started = performance.now()
  const connections = Math.max(1, Math.round(CONNECTIONS / targets.length))
  const results = await Promise.all(targets.map((target) => cannon(target, connections, duration, rate === undefined ? undefined : rate / targets.length)))
  const seconds = (performance.now() - started) / 1000
  const machineAfter = machineTicks()
  const self = process.cpuUsage(selfBefore)
  const instanceCpu = targets.map((target, i) => cpuSeconds(target.pid) - (cpuBefore[i] ?? 0))
  const redisCpu = cpuSeconds(redisPid) - redisBefore

  let requests = 0
  for (const result of results) {
    if (result.errors > 0 || result.timeouts > 0 || result.non2xx > 0) {
      throw new Error(`a round had failures: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx`)
    }
    requests += result.requests.total
  }
  const latency = (/** @type {'p50' | 'p99'} */ key) => Math.max(...results.map((result) => result.latency[key]))
  return {
    requests,
    throughput: requests / seconds,
    serverCpuPerRequest: instanceCpu.reduce((sum, value) => sum + value, 0) / requests,
    instanceCpuShare: instanceCpu.map((value) => value / seconds),
    redisCpuPerRequest: redisCpu / requests,
    loadCpuPerRequest: (self.user + self.system) / 1e6 / requests,
    machineBusy: (machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total),
    // CPU of everything else on the machine (other programs disturb the numbers), in cores.
    otherCores: Math.max(0, (machineAfter.busy - machineBefore.busy) / CLOCK_TICKS -
      instanceCpu.reduce((sum, value) => sum + value, 0) - redisCpu - (self.user + self.system) / 1e6) / seconds,
    p50: latency('p50'),
    p99: latency('p99')
  }
}

/** @param {number[]} values */
function median (values) {
  const sorted = [...values].sort((x, y) => x - y)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? /** @type {number} */ (sorted[middle]) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2
}

const micro = (/** @type {number} */ seconds) => (seconds * 1e6).toFixed(0)
const percent = (/** @type {number} */ share) => `${(share * 100).toFixed(0)} %`

async function main () {
  if (spawnSync('sh', ['-c', 'command -v redis-server']).status !== 0) {
    throw new Error('redis-server is not installed: run `apt-get install -y redis-server`')
  }
  if (!existsSync(join(ROOT, 'dist', 'esm', 'lib', 'index.js'))) throw new Error('run `npm run build` first (npm run bench:scale does)')

  const loadAtStart = loadavg()
  const redis = await startRedis()
  const dataDir = mkdtempSync(join(tmpdir(), 'fastify-login-scale-data-'))
  tempDirs.push(dataDir)
  const env = { ...SECRETS, DATA_DIR: dataDir, REDIS_URL: redis.url }
  const first = await startInstance('A', env) // creates and seeds the SQLite file
  const second = await startInstance('B', env)
  const targets = await Promise.all([first, second].map(async (instance) => {
    const cookie = await logIn(instance.url)
    await checkRequest(instance.url, cookie)
    return { ...instance, cookie }
  }))
  const setups = [
    { name: 'one instance, as fast as it goes', targets: targets.slice(0, 1), rate: undefined },
    { name: 'two instances, as fast as they go', targets, rate: undefined },
    { name: `one instance, ${RATE} req/s`, targets: targets.slice(0, 1), rate: RATE },
    { name: `two instances, ${RATE} req/s in total`, targets, rate: RATE }
  ]

  console.error(`warming up (${WARMUP} s each), then ${ROUNDS} rounds of ${DURATION} s per setup, ${CONNECTIONS} connections in total`)
  for (const setup of setups) await round(setup.targets, setup.rate, redis.pid, WARMUP)
  /** @type {Map<string, Array<Awaited<ReturnType<typeof round>>>>} */
  const measured = new Map(setups.map((setup) => [setup.name, []]))
  for (let i = 0; i < ROUNDS; i++) {
    for (const setup of setups) {
      const result = await round(setup.targets, setup.rate, redis.pid, DURATION)
      measured.get(setup.name)?.push(result)
      console.error(`round ${i + 1}, ${setup.name}: ${result.throughput.toFixed(0)} req/s, server ${micro(result.serverCpuPerRequest)} µs/req, ` +
        `autocannon ${micro(result.loadCpuPerRequest)} µs/req, machine ${percent(result.machineBusy)} busy, ` +
        `other programs ${result.otherCores.toFixed(2)} cores`)
    }
  }

  const rows = setups.map((setup) => {
    const results = measured.get(setup.name) ?? []
    const pick = (/** @type {(result: typeof results[number]) => number} */ f) => median(results.map(f))
    const shares = setup.targets.map((_, i) => percent(pick((result) => result.instanceCpuShare[i] ?? 0))).join(' + ')
    return `| ${setup.name} | ${pick((r) => r.throughput).toFixed(0)} | ${micro(pick((r) => r.serverCpuPerRequest))} | ${shares} | ` +
      `${micro(pick((r) => r.redisCpuPerRequest))} | ${micro(pick((r) => r.loadCpuPerRequest))} | ${percent(pick((r) => r.machineBusy))} | ` +
      `${pick((r) => r.otherCores).toFixed(2)} | ${pick((r) => r.p50)} / ${pick((r) => r.p99)} |`
  })
  const cpu = cpus()
  const versions = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'))
  const table = [
    `Measured on ${new Date().toISOString()}: ${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, Node ${process.version}, ` +
      `load average at the start ${loadAtStart.map((value) => value.toFixed(2)).join(', ')}. fastify-login ${versions.version}, ` +
      `${ROUNDS} rounds of ${DURATION} s per setup (medians), ${CONNECTIONS} autocannon connections in total, \`GET /api/me\` with a session cookie.`,
    '',
    '| setup | req/s | server CPU µs/req | CPU of each instance | redis-server µs/req | autocannon µs/req | machine busy | other programs (cores) | p50 / p99 ms |',
    '|---|--:|--:|--:|--:|--:|--:|--:|--:|',
    ...rows
  ].join('\n')
  console.log(table)
  for (const instance of [first, second]) {
    if (instance.logs.lines > 0) console.error(`warning: instance ${instance.name} logged ${instance.logs.lines} lines while measured, the first: ${instance.logs.sample}`)
  }

  if (process.argv.includes('--write')) {
    const start = '<!-- results:start -->'
    const end = '<!-- results:end -->'
    const report = readFileSync(REPORT, 'utf8')
    const from = report.indexOf(start)
    const to = report.indexOf(end)
    if (from === -1 || to < from) throw new Error(`${REPORT} has no ${start} … ${end} markers`)
    writeFileSync(REPORT, `${report.slice(0, from + start.length)}\n${table}\n${report.slice(to)}`)
    console.error(`wrote the table into ${REPORT}`)
  }
}

async function cleanUp () {
  for (const child of children.reverse()) {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    }
  }
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true })
}

try {
  await main()
} catch (error) {
  console.error(error)
  process.exitCode = 1
} finally {
  await cleanUp()
}
