// A session store for @fastify/session that keeps sessions in the SQLite
// file, and forgets them. The store @fastify/session uses by default keeps
// every session in memory forever; this one gives each session an expiry,
// ignores expired rows when reading, and deletes them every few minutes.
//
// @fastify/session calls three methods, each with a Node-style callback:
// set(id, session, cb), get(id, cb) and destroy(id, cb).

/**
 * @typedef {object} StoreOptions
 * @property {number} [ttl] milliseconds a session lives after its last save (default 1 day)
 * @property {number} [cleanupInterval] milliseconds between deletions of expired rows (default 10 minutes)
 */

export class SqliteSessionStore {
  #ttl
  #upsert
  #select
  #delete
  #deleteExpired
  #timer

  /**
   * @param {import('better-sqlite3').Database} db with the `sessions` table of db.js
   * @param {StoreOptions} [options]
   */
  constructor (db, { ttl = 24 * 60 * 60 * 1000, cleanupInterval = 10 * 60 * 1000 } = {}) {
    this.#ttl = ttl
    this.#upsert = db.prepare(`INSERT INTO sessions (id, data, expires_at) VALUES (?, ?, ?)
                               ON CONFLICT (id) DO UPDATE SET data = excluded.data, expires_at = excluded.expires_at`)
    this.#select = db.prepare('SELECT data FROM sessions WHERE id = ? AND expires_at > ?')
    this.#delete = db.prepare('DELETE FROM sessions WHERE id = ?')
    this.#deleteExpired = db.prepare('DELETE FROM sessions WHERE expires_at <= ?')
    this.#timer = setInterval(() => this.deleteExpired(), cleanupInterval)
    this.#timer.unref() // never keeps the process alive on its own
  }

  /**
   * @param {string} sessionId
   * @param {{ cookie?: { expires?: Date | string | null } }} session
   * @param {(error?: Error) => void} callback
   */
  set (sessionId, session, callback) {
    // A cookie with its own expiry (a persistent session) sets the row's
    // expiry; a browser-session cookie gets `ttl` from now. @fastify/session
    // saves the session on every request (`rolling`), so `ttl` is an idle timeout.
    const cookieExpiry = session.cookie?.expires ? new Date(session.cookie.expires).getTime() : NaN
    const expiresAt = Number.isFinite(cookieExpiry) ? cookieExpiry : Date.now() + this.#ttl
    this.#run(callback, () => { this.#upsert.run(sessionId, JSON.stringify(session), expiresAt) })
  }

  /**
   * @param {string} sessionId
   * @param {(error: Error | null, session?: object | null) => void} callback
   */
  get (sessionId, callback) {
    let session = null
    try {
      const row = /** @type {{ data: string } | undefined} */ (this.#select.get(sessionId, Date.now()))
      if (row !== undefined) session = JSON.parse(row.data)
    } catch (error) {
      callback(/** @type {Error} */ (error))
      return
    }
    callback(null, session)
  }

  /**
   * @param {string} sessionId
   * @param {(error?: Error) => void} callback
   */
  destroy (sessionId, callback) {
    this.#run(callback, () => { this.#delete.run(sessionId) })
  }

  /** Deletes every expired session; returns how many. */
  deleteExpired () {
    return this.#deleteExpired.run(Date.now()).changes
  }

  /** Stops the cleanup timer (call it when the server closes). */
  close () {
    clearInterval(this.#timer)
  }

  /**
   * Runs `work` and reports its outcome to `callback` (called once, outside the try).
   * @param {(error?: Error) => void} callback
   * @param {() => void} work
   */
  #run (callback, work) {
    try {
      work()
    } catch (error) {
      callback(/** @type {Error} */ (error))
      return
    }
    callback()
  }
}
