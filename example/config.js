// Configuration from environment variables, with safe defaults, and the
// secrets: taken from the environment when given, otherwise generated once
// and kept in the data folder (never in the repository).
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

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
 * @param {NodeJS.ProcessEnv} env
 */
export function configFromEnv (env) {
  const port = Number(env.PORT || 3000)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`PORT must be a port number, not ${env.PORT}`)
  const sessionProtection = env.SESSION_PROTECTION || 'basic'
  if (sessionProtection !== 'basic' && sessionProtection !== 'strong') {
    throw new Error(`SESSION_PROTECTION must be basic or strong, not ${sessionProtection}`)
  }
  return {
    host: env.HOST || '127.0.0.1',
    port,
    dataDir: resolve(env.DATA_DIR || fileURLToPath(new URL('data/', import.meta.url))),
    sessionSecret: env.SESSION_SECRET || undefined,
    loginSecret: env.LOGIN_SECRET || undefined,
    redisUrl: env.REDIS_URL || undefined,
    sessionProtection: /** @type {'basic' | 'strong'} */ (sessionProtection),
    trustProxy: env.TRUST_PROXY === 'true',
    logLevel: env.LOG_LEVEL || 'info'
  }
}

/**
 * The two secrets: the given ones, or those stored in `<dataDir>/secrets.json`,
 * created on first use (readable by this user only).
 * @param {string} dataDir
 * @param {{ sessionSecret?: string, loginSecret?: string }} given
 * @returns {{ sessionSecret: string, loginSecret: string }}
 */
export function loadSecrets (dataDir, given) {
  if (given.sessionSecret !== undefined && given.loginSecret !== undefined) {
    return { sessionSecret: given.sessionSecret, loginSecret: given.loginSecret }
  }
  mkdirSync(dataDir, { recursive: true })
  const file = join(dataDir, 'secrets.json')
  if (!existsSync(file)) {
    const generated = {
      sessionSecret: randomBytes(32).toString('base64url'),
      loginSecret: randomBytes(32).toString('base64url')
    }
    try {
      writeFileSync(file, JSON.stringify(generated, null, 2) + '\n', { mode: 0o600, flag: 'wx' })
    } catch (error) {
      // Another instance started at the same time wrote it first: use theirs.
      if (/** @type {NodeJS.ErrnoException} */ (error).code !== 'EEXIST') throw error
    }
  }
  const stored = JSON.parse(readFileSync(file, 'utf8'))
  return {
    sessionSecret: given.sessionSecret ?? stored.sessionSecret,
    loginSecret: given.loginSecret ?? stored.loginSecret
  }
}
