// Issue 12: what RedisLoginStore costs Redis, counted by Redis itself
// (INFO commandstats before and after each run): authenticated requests,
// a run past the minute after which each login writes its activity once, and
// anonymous requests. `npm run bench:redis`; needs redis-server, which it
// starts on a free port in a temporary folder, without persistence.
//
// Environment: REDIS_SECONDS per run (5), REDIS_LOGINS (20 logins, each its
// own session), REDIS_CONNECTIONS (10).
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient } from 'redis'
import { CREDENTIALS } from './common.js'
import { cannon, checkScenario, envNumber, probe, startServer } from './harness.js'

// Commands a script runs are counted as well as its EVAL: these are the ones
// RedisLoginStore's scripts call.
const SCRIPT_COMMANDS = new Set(['hget', 'hmget', 'hset', 'pexpireat', 'zadd', 'zrange', 'zrem', 'zremrangebyscore', 'del'])

function log (message) {
  process.stderr.write(`[bench:redis] ${message}\n`)
}

async function freePort () {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  await once(server, 'close')
  return port
}

async function startRedis () {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'fastify-login-bench-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  const client = createClient({ url, socket: { reconnectStrategy: false } })
  client.on('error', () => {})
  for (let attempt = 0; ; attempt++) {
    try {
      await client.connect()
      break
    } catch (error) {
      if (attempt > 100 || child.exitCode !== null) throw new Error(`redis-server did not start (is it installed?): ${error.message}`)
      await sleep(50)
    }
  }
  return {
    url,
    client,
    async stop () {
      await client.close()
      child.kill()
      await once(child, 'exit')
      rmSync(dir, { recursive: true, force: true })
    }
  }
}

async function commandCalls (client) {
  const info = await client.info('commandstats')
  const calls = new Map()
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1], Number(match[2]))
  return calls
}

/** The commands Redis ran between two snapshots, the INFO that took the first one left out. */
function difference (before, after) {
  const delta = {}
  for (const [name, count] of after) {
    const added = count - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0)
    if (added > 0) delta[name] = added
  }
  return delta
}

/** Runs `requests` (cycled over every connection) and counts what Redis did meanwhile. */
async function countedRun (server, redis, requests, { seconds, connections }) {
  const before = await commandCalls(redis.client)
  const stats = await server.stats()
  const result = await cannon(server.url, { ...requests[0], requests }, { duration: seconds, connections })
  const after = await commandCalls(redis.client)
  const completed = (await server.stats()).completed - stats.completed
  if (result.non2xx > 0 || result.errors > 0) throw new Error(`${result.non2xx} non-2xx responses, ${result.errors} errors`)
  const commands = difference(before, after)
  const topLevel = Object.entries(commands).filter(([name]) => !SCRIPT_COMMANDS.has(name))
  return { completed, commands, topLevel: topLevel.reduce((sum, [, count]) => sum + count, 0), evals: commands.eval ?? 0 }
}

function row (name, run, logins) {
  const commands = Object.entries(run.commands).map(([name, count]) => `${name} ${count}`).join(', ') || 'none'
  const perRequest = run.completed === 0 ? 0 : run.topLevel / run.completed
  return `| ${name} | ${run.completed} | ${perRequest.toFixed(3)} | ${run.evals} (${logins} logins) | ${commands} |`
}

async function main () {
  const seconds = envNumber('REDIS_SECONDS', 5)
  const logins = envNumber('REDIS_LOGINS', 20, { integer: true })
  const connections = envNumber('REDIS_CONNECTIONS', 10, { integer: true })
  const redis = await startRedis()
  process.env.BENCH_REDIS_URL = redis.url
  const server = await startServer('login-redis')
  try {
    const sessions = []
    for (let index = 0; index < logins; index++) {
      const response = await probe(server.url, { method: 'POST', path: '/login', headers: { 'content-type': 'application/json' }, body: JSON.stringify(CREDENTIALS) })
      sessions.push(response.cookies.get('sessionId'))
    }
    const me = sessions.map((cookie) => ({ method: 'GET', path: '/me', headers: { cookie } }))
    await checkScenario({ id: 'login-redis', expect: 'user' }, server.url, { ...me[0], anonymous: { method: 'GET', path: '/me', headers: {} } })
    log(`${logins} logins; ${seconds} s a run, ${connections} connections`)
    const steady = await countedRun(server, redis, me, { seconds, connections })
    log(`authenticated: ${steady.completed} requests, ${JSON.stringify(steady.commands)}`)
    // A minute later every login writes its activity once, at its first request.
    log('waiting 61 s for the activity interval to pass')
    await sleep(61_000)
    const minuteLater = await countedRun(server, redis, me, { seconds, connections })
    log(`a minute later: ${minuteLater.completed} requests, ${JSON.stringify(minuteLater.commands)}`)
    const anonymous = await countedRun(server, redis, [{ method: 'GET', path: '/public', headers: {} }], { seconds, connections })
    log(`anonymous: ${anonymous.completed} requests, ${JSON.stringify(anonymous.commands)}`)
    process.stdout.write([
      '| run | requests | top-level commands per request | EVAL (writes) | every command Redis counted |',
      '|---|--:|--:|--:|---|',
      row('authenticated `GET /me`, within the minute', steady, logins),
      row('authenticated `GET /me`, after the minute', minuteLater, logins),
      row('anonymous `GET /public`', anonymous, logins),
      ''
    ].join('\n') + '\n')
  } finally {
    await server.close()
    await redis.stop()
  }
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
