// A session store for @fastify/session that keeps sessions in the SQLite
// file, and forgets them. The store @fastify/session uses by default keeps
// every session in memory forever; this one gives each session an expiry,
// ignores expired rows when reading, and deletes them every few minutes.
//
// @fastify/session calls three methods, each with a Node-style callback:
// set(id, session, cb), get(id, cb) and destroy(id, cb).
import type { Database, Statement } from 'better-sqlite3'
import type { Session } from 'fastify'
import type { SessionStore } from '@fastify/session'

export interface StoreOptions {
  /** Milliseconds a session lives after its last save. Default 1 day. */
  ttl?: number
  /** Milliseconds between deletions of expired rows. Default 10 minutes. */
  cleanupInterval?: number
}

export class SqliteSessionStore implements SessionStore {
  readonly #ttl: number
  readonly #upsert: Statement<[string, string, number]>
  readonly #select: Statement<[string, number], { data: string }>
  readonly #delete: Statement<[string]>
  readonly #deleteExpired: Statement<[number]>
  readonly #timer: NodeJS.Timeout

  /** `db`: with the `sessions` table of db.ts. */
  constructor (db: Database, { ttl = 24 * 60 * 60 * 1000, cleanupInterval = 10 * 60 * 1000 }: StoreOptions = {}) {
    this.#ttl = ttl
    this.#upsert = db.prepare(`INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?)
                               ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`)
    this.#select = db.prepare('SELECT data FROM sessions WHERE id = ? AND expires_at > ?')
    this.#delete = db.prepare('DELETE FROM sessions WHERE id = ?')
    this.#deleteExpired = db.prepare('DELETE FROM sessions WHERE expires_at <= ?')
    this.#timer = setInterval(() => this.deleteExpired(), cleanupInterval)
    this.#timer.unref() // never keeps the process alive on its own
  }

  set (sessionId: string, session: Session, callback: (error?: Error) => void): void {
    // A cookie with its own expiry (a persistent session) sets the row's
    // expiry; a browser-session cookie gets `ttl` from now. @fastify/session
    // saves the session on every request (`rolling`), so `ttl` is an idle timeout.
    const cookieExpiry = session.cookie?.expires ? new Date(session.cookie.expires).getTime() : NaN
    const expiresAt = Number.isFinite(cookieExpiry) ? cookieExpiry : Date.now() + this.#ttl
    this.#run(callback, () => { this.#upsert.run(sessionId, JSON.stringify(session), expiresAt) })
  }

  get (sessionId: string, callback: (error: Error | null, session?: Session | null) => void): void {
    let session: Session | null = null
    try {
      const row = this.#select.get(sessionId, Date.now())
      // The JSON that `set` stored.
      if (row !== undefined) session = JSON.parse(row.data)
    } catch (error) {
      callback(asError(error))
      return
    }
    callback(null, session)
  }

  destroy (sessionId: string, callback: (error?: Error) => void): void {
    this.#run(callback, () => { this.#delete.run(sessionId) })
  }

  /** Deletes every expired session; returns how many. */
  deleteExpired (): number {
    return this.#deleteExpired.run(Date.now()).changes
  }

  /** Stops the cleanup timer (call it when the server closes). */
  close (): void {
    clearInterval(this.#timer)
  }

  /** Runs `work` and reports its outcome to `callback` (called once, outside the try). */
  #run (callback: (error?: Error) => void, work: () => void): void {
    try {
      work()
    } catch (error) {
      callback(asError(error))
      return
    }
    callback()
  }
}

/** What was thrown, as an Error (better-sqlite3 throws `SqliteError`s; anything else is wrapped). */
function asError (thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error(String(thrown))
}
