// Configuration from environment variables, with safe defaults, and the
// secrets: taken from the environment when given, otherwise generated once
// and kept in the data folder (never in the repository).
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

/** The two secrets: one signs the session cookie, the other the remember-me cookie. */
export interface Secrets {
  sessionSecret: string
  loginSecret: string
}

/** What `configFromEnv` reads. */
export interface Config {
  host: string
  port: number
  dataDir: string
  sessionSecret: string | undefined
  loginSecret: string | undefined
  redisUrl: string | undefined
  sessionProtection: 'basic' | 'strong'
  /** Seconds; `undefined`: none. */
  idleTimeout: number | undefined
  /** Seconds; `undefined`: none. */
  absoluteTimeout: number | undefined
  trustProxy: boolean
  logLevel: string
}

/**
 * | variable             | default         |                                                             |
 * |----------------------|-----------------|-------------------------------------------------------------|
 * | `HOST`               | `127.0.0.1`     | address to listen on (only this machine)                    |
 * | `PORT`               | `3000`          | `0` picks a free port                                       |
 * | `DATA_DIR`           | `example/data/` | the SQLite file and the generated secrets                   |
 * | `SESSION_SECRET`     | generated       | signs the session cookie (32+ characters)                   |
 * | `LOGIN_SECRET`       | generated       | signs the remember-me cookie (32+ characters)               |
 * | `REDIS_URL`          | none            | sessions and logins in this Redis, else in the SQLite file  |
 * | `SESSION_PROTECTION` | `basic`         | or `strong`: a session used by another client is logged out |
 * | `IDLE_TIMEOUT`       | `1800`          | seconds without a request that end a login; `0`: never      |
 * | `ABSOLUTE_TIMEOUT`   | `28800`         | seconds after which a login ends however active; `0`: never |
 * | `TRUST_PROXY`        | `false`         | `true` behind a reverse proxy (client address, https)       |
 * | `LOG_LEVEL`          | `info`          | pino level                                                  |
 *
 * A relative `DATA_DIR` is relative to the working directory (the
 * repository's root under `npm start`). The timeouts take fractions of a
 * second (`0.5`); their defaults follow OWASP for a low-risk application
 * used all day (30 minutes idle, 8 hours in all). A login they end is over
 * in this browser session; "remember me" logs the browser back in, not fresh.
 */
export function configFromEnv (env: NodeJS.ProcessEnv): Config {
  const port = Number(env.PORT || 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, not ${env.PORT}`)
  const sessionProtection = env.SESSION_PROTECTION || 'basic'
  if (sessionProtection !== 'basic' && sessionProtection !== 'strong') {
    throw new Error(`SESSION_PROTECTION must be basic or strong, not ${sessionProtection}`)
  }
  return {
    host: env.HOST || '127.0.0.1',
    port,
    // Not next to this module: it runs compiled from dist/, which every build deletes.
    dataDir: resolve(env.DATA_DIR || join('example', 'data')),
    sessionSecret: env.SESSION_SECRET || undefined,
    loginSecret: env.LOGIN_SECRET || undefined,
    redisUrl: env.REDIS_URL || undefined,
    sessionProtection,
    idleTimeout: timeoutFrom(env, 'IDLE_TIMEOUT', DEFAULT_IDLE_TIMEOUT),
    absoluteTimeout: timeoutFrom(env, 'ABSOLUTE_TIMEOUT', DEFAULT_ABSOLUTE_TIMEOUT),
    trustProxy: env.TRUST_PROXY === 'true',
    logLevel: env.LOG_LEVEL || 'info'
  }
}

const DEFAULT_IDLE_TIMEOUT = 30 * 60
const DEFAULT_ABSOLUTE_TIMEOUT = 8 * 60 * 60

/** A timeout in seconds (`undefined` for `0`: none), or `fallback` when the variable is unset or empty. */
function timeoutFrom (env: NodeJS.ProcessEnv, name: string, fallback: number): number | undefined {
  const text = env[name]
  if (!text) return fallback
  const seconds = Number(text)
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(seconds)) {
    throw new Error(`${name} must be a number of seconds (fractions allowed, 0 for none), not ${text}`)
  }
  return seconds === 0 ? undefined : seconds
}

function isSecrets (value: unknown): value is Secrets {
  return typeof value === 'object' && value !== null &&
    'sessionSecret' in value && typeof value.sessionSecret === 'string' &&
    'loginSecret' in value && typeof value.loginSecret === 'string'
}

/**
 * The two secrets: the given ones, or those stored in `<dataDir>/secrets.json`,
 * created on first use (readable by this user only).
 */
export function loadSecrets (dataDir: string, given: Partial<Secrets>): Secrets {
  if (given.sessionSecret !== undefined && given.loginSecret !== undefined) {
    return { sessionSecret: given.sessionSecret, loginSecret: given.loginSecret }
  }
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'secrets.json')
  if (!existsSync(file)) {
    const generated: Secrets = {
      sessionSecret: randomBytes(32).toString('base64url'),
      loginSecret: randomBytes(32).toString('base64url')
    }
    try {
      writeFileSync(file, JSON.stringify(generated, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    } catch (error) {
      // Another instance started at the same time wrote it first: use theirs.
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error
    }
  }
  const stored: unknown = JSON.parse(readFileSync(file, 'utf8'))
  if (!isSecrets(stored)) throw new Error(`${file} must hold a sessionSecret and a loginSecret (strings); delete it to generate new ones`)
  return {
    sessionSecret: given.sessionSecret ?? stored.sessionSecret,
    loginSecret: given.loginSecret ?? stored.loginSecret
  }
}
