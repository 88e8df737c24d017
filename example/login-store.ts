// fastify-login's login store in the SQLite file: every login is a row, so
// users can see their devices and sign them out, and logout is real. This is
// the README's recipe for a SQL-backed store; test/login-store-sqlite.test.ts
// checks it with `testLoginStore`. With several instances, the app uses
// RedisLoginStore instead (see app).
import type { Database, Statement } from 'better-sqlite3'
import type { LoginRecord, LoginRecordChanges, LoginRecordExpected, LoginStore } from 'fastify-login'

const SCHEMA = `
CREATE TABLE IF NOT EXISTS logins (
  id               TEXT PRIMARY KEY,
  user_id          TEXT NOT NULL,
  created_at       INTEGER NOT NULL,
  last_seen_at     INTEGER NOT NULL,
  expires_at       INTEGER NOT NULL,
  ip               TEXT NOT NULL,
  user_agent       TEXT NOT NULL,
  remembered       INTEGER NOT NULL,
  remember_seconds REAL NOT NULL,
  rotation         INTEGER NOT NULL,
  rotated_at       INTEGER NOT NULL,
  validator_hash   TEXT NOT NULL,
  version_tag      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logins_by_user ON logins (user_id, expires_at);
`

interface Row {
  id: string
  user_id: string
  created_at: number
  last_seen_at: number
  expires_at: number
  ip: string
  user_agent: string
  remembered: number
  remember_seconds: number
  rotation: number
  rotated_at: number
  validator_hash: string
  version_tag: string
}

/** The column of each field `update` may change. */
const COLUMNS: Record<keyof LoginRecordChanges, string> = {
  lastSeenAt: 'last_seen_at',
  expiresAt: 'expires_at',
  ip: 'ip',
  userAgent: 'user_agent',
  rotation: 'rotation',
  rotatedAt: 'rotated_at',
  validatorHash: 'validator_hash'
}

function toRecord (row: Row): LoginRecord {
  return {
    id: row.id,
    userId: row.user_id,
    createdAt: row.created_at,
    lastSeenAt: row.last_seen_at,
    expiresAt: row.expires_at,
    ip: row.ip,
    userAgent: row.user_agent,
    remembered: row.remembered === 1,
    rememberSeconds: row.remember_seconds,
    rotation: row.rotation,
    rotatedAt: row.rotated_at,
    validatorHash: row.validator_hash,
    versionTag: row.version_tag
  }
}

export class SqliteLoginStore implements LoginStore {
  readonly #db: Database
  readonly #insert: Statement<[Row]>
  readonly #select: Statement<[string, number], Row>
  readonly #selectByUser: Statement<[string, number], Row>
  readonly #delete: Statement<[string], Row>
  readonly #deleteExpired: Statement<[number]>
  // The UPDATE of each set of fields, prepared once: fastify-login uses two.
  readonly #updates = new Map<string, Statement<Array<string | number>>>()

  constructor (db: Database) {
    db.exec(SCHEMA)
    this.#db = db
    this.#insert = db.prepare(`INSERT OR REPLACE INTO logins VALUES (@id, @user_id, @created_at, @last_seen_at, @expires_at,
      @ip, @user_agent, @remembered, @remember_seconds, @rotation, @rotated_at, @validator_hash, @version_tag)`)
    this.#select = db.prepare('SELECT * FROM logins WHERE id = ? AND expires_at > ?')
    this.#selectByUser = db.prepare('SELECT * FROM logins WHERE user_id = ? AND expires_at > ?')
    this.#delete = db.prepare('DELETE FROM logins WHERE id = ? RETURNING *')
    this.#deleteExpired = db.prepare('DELETE FROM logins WHERE expires_at <= ?')
  }

  async create (record: LoginRecord): Promise<void> {
    // Expired rows go when logins are made: the table stays as big as the live logins.
    this.#deleteExpired.run(Date.now())
    this.#insert.run({
      id: record.id,
      user_id: record.userId,
      created_at: record.createdAt,
      last_seen_at: record.lastSeenAt,
      expires_at: record.expiresAt,
      ip: record.ip,
      user_agent: record.userAgent,
      remembered: record.remembered ? 1 : 0,
      remember_seconds: record.rememberSeconds,
      rotation: record.rotation,
      rotated_at: record.rotatedAt,
      validator_hash: record.validatorHash,
      version_tag: record.versionTag
    })
  }

  async get (id: string): Promise<LoginRecord | null> {
    const row = this.#select.get(id, Date.now())
    return row === undefined ? null : toRecord(row)
  }

  // The compare-and-set: one UPDATE whose WHERE holds the expected values.
  // SQLite runs it atomically; on a server database the same statement is too.
  async update (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges): Promise<boolean> {
    const fields = (Object.keys(COLUMNS) as Array<keyof LoginRecordChanges>).filter((field) => changes[field] !== undefined)
    const compared = (['rotation', 'lastSeenAt'] as const).filter((field) => expected[field] !== undefined)
    if (fields.length === 0) return false
    const assignments = fields.map((field) => `${COLUMNS[field]} = ?`).join(', ')
    const conditions = compared.map((field) => ` AND ${COLUMNS[field]} = ?`).join('')
    const sql = `UPDATE logins SET ${assignments} WHERE id = ? AND expires_at > ?${conditions}`
    let statement = this.#updates.get(sql)
    if (statement === undefined) this.#updates.set(sql, statement = this.#db.prepare(sql))
    const result = statement.run(...fields.map((field) => changes[field]!), id, Date.now(), ...compared.map((field) => expected[field]!))
    return result.changes === 1
  }

  async delete (id: string): Promise<LoginRecord | null> {
    const row = this.#delete.get(id)
    return row === undefined ? null : toRecord(row)
  }

  async list (userId: string): Promise<LoginRecord[]> {
    return this.#selectByUser.all(userId, Date.now()).map(toRecord)
  }
}
