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
 * | `REDIS_URL`          | none            | sessions in this Redis (several instances), else in SQLite  |
 * | `SESSION_PROTECTION` | `basic`         | or `strong`: a session used by another client is logged out |
 * | `TRUST_PROXY`        | `false`         | `true` behind a reverse proxy (client address, https)       |
 * | `LOG_LEVEL`          | `info`          | pino level                                                  |
 *
 * A relative `DATA_DIR` is relative to the working directory (the
 * repository's root under `npm start`).
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
    trustProxy: env.TRUST_PROXY === 'true',
    logLevel: env.LOG_LEVEL || 'info'
  }
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
