// Starts the example: `npm start` at the repository root (it builds
// fastify-login and the example first), or `node dist/example/server.js` once
// it is built.
// Configuration: see config.ts (HOST, PORT, DATA_DIR, ...).
import { buildApp } from './app.js'
import { configFromEnv } from './config.js'
import { DEMO_USER, INACTIVE_USER } from './db.js'

const config = configFromEnv(process.env)
const app = await buildApp({
  dataDir: config.dataDir,
  sessionSecret: config.sessionSecret,
  loginSecret: config.loginSecret,
  redisUrl: config.redisUrl,
  sessionProtection: config.sessionProtection,
  idleTimeout: config.idleTimeout,
  absoluteTimeout: config.absoluteTimeout,
  trustProxy: config.trustProxy,
  logger: { level: config.logLevel }
})

await app.listen({ host: config.host, port: config.port })

const address = app.server.address()
const port = typeof address === 'object' && address !== null ? address.port : config.port
const host = config.host.includes(':') ? `[${config.host}]` : config.host
console.log(`
fastify-login example: http://${host}:${port}/
  log in as "${DEMO_USER.username}", password "${DEMO_USER.password}"
  ("${INACTIVE_USER.username}" is a disabled account: its login is refused)
  data folder: ${config.dataDir}
  sessions and logins: ${config.redisUrl ? 'in Redis (REDIS_URL)' : 'in the SQLite file'}
  session timeouts: idle ${describeTimeout(config.idleTimeout)}, absolute ${describeTimeout(config.absoluteTimeout)}
`)

/** "30 minutes", "8 hours", "2.5 seconds", or "none". */
function describeTimeout (seconds: number | undefined): string {
  if (seconds === undefined) return 'none'
  const [amount, unit] = seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second']
  return `${amount} ${unit}${amount === 1 ? '' : 's'}`
}

// Ctrl+C or a process manager's stop: finish requests, close the database
// (and the Redis connection).
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), () => process.exit(1))
  })
}
