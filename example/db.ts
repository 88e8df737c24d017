// The SQLite database: users, their API keys, and the sessions (see
// session-store.ts). One file in the data folder, created and seeded on first start.
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

/** A row of the `users` table. */
interface UserRow {
  id: number
  username: string
  display_name: string
  password_hash: string
  active: number
  session_version: number
  last_login_at: number | null
}

/** A row of `apiKeysOf`: what the settings page lists (never the key or its hash). */
export interface ApiKeyRow {
  id: number
  hint: string
  created_at: number
}

/** A user row as the rest of the app sees it. UserMixin gives `getId()` and `isAuthenticated`. */
export class User extends UserMixin {
  override readonly id: number
  readonly username: string
  readonly displayName: string
  readonly active: boolean
  readonly sessionVersion: number
  readonly lastLoginAt: Date | null

  constructor (row: UserRow) {
    super()
    this.id = row.id
    this.username = row.username
    this.displayName = row.display_name
    this.active = row.active === 1
    this.sessionVersion = row.session_version
    this.lastLoginAt = row.last_login_at === null ? null : new Date(row.last_login_at)
  }

  // fastify-login refuses to log in a user whose isActive is false.
  override get isActive (): boolean { return this.active }
}

// The user type of fastify-login, said once for the whole app: `request.user`
// is a `User` on routes with `config: { login: 'required' }` or `'fresh'` and
// after `request.isAuthenticated()`, and the loaders and `sessionVersion`
// take and return `User`s.
declare module 'fastify-login' {
  interface FastifyLoginTypes {
    user: User
  }
}

/**
 * API keys are random, so a fast hash is enough to store them: nobody can
 * guess one from its SHA-256 (unlike a password).
 */
function hashApiKey (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

/** The app's queries, and the connection (for the session store). */
export interface AppDatabase {
  readonly db: Database.Database
  findUserById (id: string | number): User | null
  /** The user and their password hash, for checking a login. */
  findLogin (username: string): { user: User | null, passwordHash: string | null }
  /** `key`: the key as the client sent it. */
  findUserByApiKey (key: string): User | null
  /**
   * Stores the new hash and bumps the session version, which logs the
   * user out everywhere (see sessionVersion in app.ts).
   */
  changePassword (userId: number, passwordHash: string): void
  recordLogin (userId: number): void
  /** Creates an API key and returns it. Only its hash is stored: the key is shown to the user once. */
  createApiKey (userId: number): string
  apiKeysOf (userId: number): ApiKeyRow[]
  deleteApiKey (userId: number, keyId: number): void
  close (): void
}

/** Opens (and on first start creates and seeds) `<dataDir>/example.sqlite`. */
export async function openDatabase (dataDir: string): Promise<AppDatabase> {
  const db = new Database(join(dataDir, 'example.sqlite'))
  // exec, not pragma(): pragma() prepares a statement that is then garbage,
  // and Node.js 24.19+ aborts when a better-sqlite3 object is collected
  // outside a JavaScript context. Every other statement lives as long as `db`.
  db.exec('PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON')
  db.exec(SCHEMA)

  // The type arguments are the parameters and the row of each statement.
  const statements = {
    countUsers: db.prepare<[], { count: number }>('SELECT count(*) AS count FROM users'),
    // OR IGNORE: instances started together on a new file may both seed it.
    insertUser: db.prepare<{ username: string, displayName: string, passwordHash: string, active: number }>(
      `INSERT OR IGNORE INTO users (username, display_name, password_hash, active)
       VALUES (@username, @displayName, @passwordHash, @active)`),
    userById: db.prepare<[string | number], UserRow>('SELECT * FROM users WHERE id = ?'),
    userByUsername: db.prepare<[string], UserRow>('SELECT * FROM users WHERE username = ?'),
    userByApiKey: db.prepare<[string], UserRow>(`SELECT users.* FROM api_keys JOIN users ON users.id = api_keys.user_id
                                                 WHERE api_keys.key_hash = ?`),
    setPassword: db.prepare<[string, number]>(`UPDATE users SET password_hash = ?, session_version = session_version + 1
                                                WHERE id = ?`),
    setLastLogin: db.prepare<[number, number]>('UPDATE users SET last_login_at = ? WHERE id = ?'),
    insertApiKey: db.prepare<[number, string, string, number]>('INSERT INTO api_keys (user_id, key_hash, hint, created_at) VALUES (?, ?, ?, ?)'),
    apiKeysOf: db.prepare<[number], ApiKeyRow>('SELECT id, hint, created_at FROM api_keys WHERE user_id = ? ORDER BY id'),
    deleteApiKey: db.prepare<[number, number]>('DELETE FROM api_keys WHERE id = ? AND user_id = ?')
  }

  if (statements.countUsers.get()?.count === 0) {
    statements.insertUser.run({ username: DEMO_USER.username, displayName: 'Demo User', passwordHash: await hashPassword(DEMO_USER.password), active: 1 })
    statements.insertUser.run({ username: INACTIVE_USER.username, displayName: 'Inactive User', passwordHash: await hashPassword(INACTIVE_USER.password), active: 0 })
  }

  const toUser = (row: UserRow | undefined): User | null => row === undefined ? null : new User(row)

  return {
    db,
    findUserById: (id) => toUser(statements.userById.get(id)),
    findLogin (username) {
      const row = statements.userByUsername.get(username)
      return row === undefined ? { user: null, passwordHash: null } : { user: new User(row), passwordHash: row.password_hash }
    },
    findUserByApiKey: (key) => toUser(statements.userByApiKey.get(hashApiKey(key))),
    changePassword (userId, passwordHash) {
      statements.setPassword.run(passwordHash, userId)
    },
    recordLogin (userId) {
      statements.setLastLogin.run(Date.now(), userId)
    },
    createApiKey (userId) {
      const key = `flk_${randomBytes(24).toString('base64url')}`
      statements.insertApiKey.run(userId, hashApiKey(key), key.slice(0, 8), Date.now())
      return key
    },
    apiKeysOf: (userId) => statements.apiKeysOf.all(userId),
    deleteApiKey (userId, keyId) {
      statements.deleteApiKey.run(keyId, userId)
    },
    close: () => { db.close() }
  }
}
