// The SQLite database: users, their API keys, and the sessions (see
// session-store.js). One file in the data folder, created and seeded on first start.
import { createHash, randomBytes } from 'node:crypto'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { UserMixin } from 'fastify-login'
import { hashPassword } from './passwords.js'

/** The account printed at start-up. */
export const DEMO_USER = { username: 'demo', password: 'demo-password' }
/** A seeded account that exists but may not log in. */
export const INACTIVE_USER = { username: 'inactive', password: 'demo-password' }

const SCHEMA = `
CREATE TABLE IF NOT EXISTS users (
  id              INTEGER PRIMARY KEY,
  username        TEXT NOT NULL UNIQUE,
  display_name    TEXT NOT NULL,
  password_hash   TEXT NOT NULL,
  active          INTEGER NOT NULL DEFAULT 1,
  -- bumped when the password changes: fastify-login's sessionVersion
  session_version INTEGER NOT NULL DEFAULT 1,
  last_login_at   INTEGER
);
CREATE TABLE IF NOT EXISTS api_keys (
  id         INTEGER PRIMARY KEY,
  user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  key_hash   TEXT NOT NULL UNIQUE,
  hint       TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
  id         TEXT PRIMARY KEY,
  data       TEXT NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_expires_at ON sessions (expires_at);
`

/** A user row as the rest of the app sees it. UserMixin gives `getId()` and `isAuthenticated`. */
export class User extends UserMixin {
  /** @param {{ id: number, username: string, display_name: string, active: number, session_version: number, last_login_at: number | null }} row */
  constructor (row) {
    super()
    this.id = row.id
    this.username = row.username
    this.displayName = row.display_name
    this.active = row.active === 1
    this.sessionVersion = row.session_version
    this.lastLoginAt = row.last_login_at === null ? null : new Date(row.last_login_at)
  }

  // fastify-login refuses to log in a user whose isActive is false.
  get isActive () { return this.active }
}

/**
 * API keys are random, so a fast hash is enough to store them: nobody can
 * guess one from its SHA-256 (unlike a password).
 * @param {string} key
 */
function hashApiKey (key) {
  return createHash('sha256').update(key).digest('hex')
}

/**
 * Opens (and on first start creates and seeds) `<dataDir>/example.sqlite`.
 * @param {string} dataDir
 */
export async function openDatabase (dataDir) {
  const db = new Database(join(dataDir, 'example.sqlite'))
  // exec, not pragma(): pragma() prepares a statement that is then garbage,
  // and Node.js 24.19+ aborts when a better-sqlite3 object is collected
  // outside a JavaScript context. Every other statement lives as long as `db`.
  db.exec('PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON')
  db.exec(SCHEMA)

  const statements = {
    countUsers: db.prepare('SELECT count(*) AS count FROM users'),
    // OR IGNORE: instances started together on a new file may both seed it.
    insertUser: db.prepare(`INSERT OR IGNORE INTO users (username, display_name, password_hash, active)
                            VALUES (@username, @displayName, @passwordHash, @active)`),
    userById: db.prepare('SELECT * FROM users WHERE id = ?'),
    userByUsername: db.prepare('SELECT * FROM users WHERE username = ?'),
    userByApiKey: db.prepare(`SELECT users.* FROM api_keys JOIN users ON users.id = api_keys.user_id
                              WHERE api_keys.key_hash = ?`),
    setPassword: db.prepare(`UPDATE users SET password_hash = ?, session_version = session_version + 1
                             WHERE id = ?`),
    setLastLogin: db.prepare('UPDATE users SET last_login_at = ? WHERE id = ?'),
    insertApiKey: db.prepare('INSERT INTO api_keys (user_id, key_hash, hint, created_at) VALUES (?, ?, ?, ?)'),
    apiKeysOf: db.prepare('SELECT id, hint, created_at FROM api_keys WHERE user_id = ? ORDER BY id'),
    deleteApiKey: db.prepare('DELETE FROM api_keys WHERE id = ? AND user_id = ?')
  }

  if (statements.countUsers.get().count === 0) {
    statements.insertUser.run({ username: DEMO_USER.username, displayName: 'Demo User', passwordHash: await hashPassword(DEMO_USER.password), active: 1 })
    statements.insertUser.run({ username: INACTIVE_USER.username, displayName: 'Inactive User', passwordHash: await hashPassword(INACTIVE_USER.password), active: 0 })
  }

  /** @param {any} row */
  const toUser = (row) => row === undefined ? null : new User(row)

  return {
    db,

    /** @param {string | number} id */
    findUserById: (id) => toUser(statements.userById.get(id)),

    /**
     * The user and their password hash, for checking a login.
     * @param {string} username
     * @returns {{ user: User | null, passwordHash: string | null }}
     */
    findLogin (username) {
      const row = statements.userByUsername.get(username)
      return row === undefined ? { user: null, passwordHash: null } : { user: new User(row), passwordHash: row.password_hash }
    },

    /** @param {string} key the key as the client sent it */
    findUserByApiKey: (key) => toUser(statements.userByApiKey.get(hashApiKey(key))),

    /**
     * Stores the new hash and bumps the session version, which logs the
     * user out everywhere (see sessionVersion in app.js).
     * @param {number} userId
     * @param {string} passwordHash
     */
    changePassword (userId, passwordHash) {
      statements.setPassword.run(passwordHash, userId)
    },

    /** @param {number} userId */
    recordLogin (userId) {
      statements.setLastLogin.run(Date.now(), userId)
    },

    /**
     * Creates an API key and returns it. Only its hash is stored: the key is
     * shown to the user once.
     * @param {number} userId
     */
    createApiKey (userId) {
      const key = `flk_${randomBytes(24).toString('base64url')}`
      statements.insertApiKey.run(userId, hashApiKey(key), key.slice(0, 8), Date.now())
      return key
    },

    /** @param {number} userId */
    apiKeysOf: (userId) => /** @type {Array<{ id: number, hint: string, created_at: number }>} */ (statements.apiKeysOf.all(userId)),

    /**
     * @param {number} userId
     * @param {number} keyId
     */
    deleteApiKey (userId, keyId) {
      statements.deleteApiKey.run(keyId, userId)
    },

    close: () => db.close()
  }
}
