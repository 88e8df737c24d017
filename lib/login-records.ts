// The login store on the plugin's side: a record for every login, read on
// each request that carries one; remember cookies that name a record, rotate
// on every restore and catch a stolen copy; listing and revoking.
import { randomBytes } from 'node:crypto'
import type { FastifyRequest } from 'fastify'
import type { LoginInfo, LoginRecord, LoginRevokedReason, LoginStore } from '../types/index.js'
import { FST_LOGIN_STORE_FAILED } from './errors.js'
import type { LoginEventHub } from './events.js'
import type { LoginConfig } from './options.js'
import { LOGIN_ID, validatorHashOf, type RememberCodec, type StoreToken } from './remember.js'

/** A login that is not remembered ends after this long without a request (seconds). */
export const IDLE_LOGIN_LIFETIME = 14 * 24 * 60 * 60
/** `lastSeenAt`, `ip` and `userAgent` are written back at most this often. */
export const ACTIVITY_INTERVAL_MS = 60_000
/** Activity writes this process remembers having tried, before it forgets them all. */
const MAX_TOUCHES_REMEMBERED = 10_000

/** Longer User-Agents are cut in the record: it is for showing, not for matching. */
export const MAX_USER_AGENT_LENGTH = 512

/** How long a remembered login lasts. */
export interface RememberedFor {
  readonly seconds: number
  readonly expiresAt?: number
}

/** A new login's record, and its remember cookie when it is remembered. */
export interface NewLogin {
  readonly record: LoginRecord
  readonly cookie: string | null
}

/** What a store cookie turned out to be, once its record was read. */
export type RestoreCheck =
  | { readonly kind: 'gone' }
  | { readonly kind: 'theft', readonly record: LoginRecord }
  | { readonly kind: 'accepted', readonly record: LoginRecord, readonly current: boolean }

/** The outcome of rotating an accepted cookie: the cookie to send, or why there is none. */
export type Rotation =
  | { readonly kind: 'gone' }
  | { readonly kind: 'theft', readonly record: LoginRecord }
  | { readonly kind: 'rotated', readonly record: LoginRecord, readonly cookie: string | null }

function failure (error: unknown): Error {
  return new FST_LOGIN_STORE_FAILED({ cause: error })
}

// Every store call goes through here: a store that throws or rejects fails
// the request with a 503 (it never logs anybody out by itself).
async function call<T> (operation: () => Promise<T>): Promise<T> {
  try {
    return await operation()
  } catch (error) {
    throw failure(error)
  }
}

function clientOf (request: FastifyRequest): { ip: string, userAgent: string } {
  const userAgent = request.headers['user-agent'] ?? ''
  return { ip: request.ip, userAgent: userAgent.length > MAX_USER_AGENT_LENGTH ? userAgent.slice(0, MAX_USER_AGENT_LENGTH) : userAgent }
}

export class LoginRecords {
  readonly #store: LoginStore
  readonly #config: LoginConfig
  readonly #codec: RememberCodec
  readonly #events: LoginEventHub
  // Login id → the `lastSeenAt` an activity write of this process replaces:
  // concurrent requests of one login that read the same record try once.
  readonly #touches = new Map<string, number>()

  constructor (store: LoginStore, config: LoginConfig, codec: RememberCodec, events: LoginEventHub) {
    this.#store = store
    this.#config = config
    this.#codec = codec
    this.#events = events
  }

  /**
   * When a record that is not remembered ends, seen at `now`: after
   * `idleTimeout` when that is set (plus the minute its activity time may
   * lag, so never earlier), else after 14 days.
   */
  #idleExpiry (now: number): number {
    const idle = this.#config.idleTimeout
    return now + (idle === undefined ? IDLE_LOGIN_LIFETIME * 1000 : idle * 1000 + ACTIVITY_INTERVAL_MS)
  }

  #newId (userId: string): string {
    if (this.#store.createId === undefined) return randomBytes(18).toString('base64url')
    let id: unknown
    try {
      id = this.#store.createId(userId)
    } catch (error) {
      throw failure(error)
    }
    if (typeof id !== 'string' || !LOGIN_ID.test(id)) {
      throw failure(new TypeError('loginStore.createId() must return 22 to 128 characters of [A-Za-z0-9_-]'))
    }
    return id
  }

  /**
   * Makes and stores the record of a new login. A remembered one lasts
   * `remember.seconds`, or until `remember.expiresAt` (a cookie from before
   * the store keeps its own expiry).
   */
  async create (request: FastifyRequest, userId: string, remember: RememberedFor | null, versionTag: string): Promise<NewLogin> {
    const now = Date.now()
    const id = this.#newId(userId)
    const cookie = remember === null ? null : this.#codec.signStore(id, 0)
    const record: LoginRecord = {
      id,
      userId,
      createdAt: now,
      lastSeenAt: now,
      expiresAt: remember === null ? this.#idleExpiry(now) : remember.expiresAt ?? now + remember.seconds * 1000,
      ...clientOf(request),
      remembered: remember !== null,
      rememberSeconds: remember?.seconds ?? 0,
      rotation: 0,
      rotatedAt: 0,
      validatorHash: cookie === null ? '' : validatorHashOf(cookie),
      versionTag
    }
    await call(() => this.#store.create(record))
    return { record, cookie }
  }

  /**
   * The record of a session's login when it still holds for `userId`; `null`
   * when it is gone (logged out, revoked, expired) or is another user's.
   */
  async read (request: FastifyRequest, loginId: string, userId: string): Promise<LoginRecord | null> {
    const record = await call(() => this.#store.get(loginId))
    if (record === null || record.userId !== userId) return null
    if (record.expiresAt > Date.now()) return record
    // A store that keeps expired records: this one is over.
    await this.end(request, loginId, 'expired')
    return null
  }

  /** Writes back the request's activity when the record has not been written for a minute. */
  async touch (request: FastifyRequest, record: LoginRecord): Promise<void> {
    const now = Date.now()
    if (now - record.lastSeenAt < ACTIVITY_INTERVAL_MS || this.#touches.get(record.id) === record.lastSeenAt) return
    if (this.#touches.size >= MAX_TOUCHES_REMEMBERED) this.#touches.clear()
    this.#touches.set(record.id, record.lastSeenAt)
    let expiresAt = record.expiresAt
    if (!record.remembered) expiresAt = this.#idleExpiry(now)
    else if (this.#config.remember.refreshEachRequest) expiresAt = now + record.rememberSeconds * 1000
    // Only if nobody wrote it meanwhile (concurrent requests of this login, on
    // any instance): one write a minute. A false answer means it is done or
    // the login is gone: nothing to do.
    try {
      await call(() => this.#store.update(record.id, { lastSeenAt: record.lastSeenAt }, { lastSeenAt: now, expiresAt, ...clientOf(request) }))
    } catch (error) {
      // Not written: the next request tries again.
      this.#touches.delete(record.id)
      throw error
    }
  }

  /** Deletes a login's record; `loginRevoked` fires when there was one. */
  async end (request: FastifyRequest | undefined, loginId: string, reason: LoginRevokedReason): Promise<LoginRecord | null> {
    const record = await call(() => this.#store.delete(loginId))
    if (record !== null && this.#events.wanted('loginRevoked')) {
      this.#events.emit('loginRevoked', { ...(request === undefined ? {} : { request }), userId: record.userId, loginId, reason })
    }
    return record
  }

  /**
   * A session login expired (idleTimeout, absoluteTimeout): its record ends
   * with it, unless it is remembered (its cookie may restore it).
   */
  async expired (request: FastifyRequest, loginId: string): Promise<void> {
    const record = await call(() => this.#store.get(loginId))
    if (record !== null && !record.remembered) await this.end(request, loginId, 'expired')
  }

  /** Reads the record a verified store cookie names and tells current, grace or theft. */
  async check (token: StoreToken): Promise<RestoreCheck> {
    const record = await call(() => this.#store.get(token.loginId))
    if (record === null || !record.remembered || record.expiresAt <= Date.now()) return { kind: 'gone' }
    return this.#classify(record, token)
  }

  #classify (record: LoginRecord, token: StoreToken): RestoreCheck {
    if (token.rotation === record.rotation && token.validatorHash === record.validatorHash) {
      return { kind: 'accepted', record, current: true }
    }
    // The cookie just rotated out: parallel requests, restored tabs, a lost response.
    if (token.rotation === record.rotation - 1 && Date.now() - record.rotatedAt <= this.#config.remember.rotationGrace * 1000) {
      return { kind: 'accepted', record, current: false }
    }
    return { kind: 'theft', record }
  }

  /**
   * Rotates the validator of an accepted cookie and returns the cookie to
   * send. A cookie accepted in the grace window is not rotated again: it is
   * sent the current cookie, so a browser that lost a response catches up.
   * When another request rotated first, the record is read again.
   */
  async rotate (request: FastifyRequest, check: RestoreCheck & { kind: 'accepted' }, token: StoreToken): Promise<Rotation> {
    let { record } = check
    if (check.current) {
      const now = Date.now()
      const rotation = record.rotation + 1
      const cookie = this.#codec.signStore(record.id, rotation)
      const changes = { rotation, rotatedAt: now, validatorHash: validatorHashOf(cookie), lastSeenAt: now, ...clientOf(request) }
      if (await call(() => this.#store.update(record.id, { rotation: record.rotation }, changes))) {
        return { kind: 'rotated', record: { ...record, ...changes }, cookie }
      }
      const again = await this.check(token)
      if (again.kind !== 'accepted') return again
      record = again.record
    }
    return { kind: 'rotated', record, cookie: this.#codec.storeCookieMatching(record.id, record.rotation, record.validatorHash) }
  }

  /** A stolen remember cookie came back: the login ends everywhere. */
  async theft (request: FastifyRequest, record: LoginRecord): Promise<void> {
    await this.end(request, record.id, 'theft')
    if (this.#events.wanted('rememberTheft')) this.#events.emit('rememberTheft', { request, userId: record.userId, loginId: record.id })
  }

  /** The user's logins, newest first; `current` marks `currentId`. */
  async list (userId: string, currentId: string | null): Promise<LoginInfo[]> {
    const now = Date.now()
    const records = await call(() => this.#store.list(userId))
    return records
      .filter((record) => record.userId === userId && record.expiresAt > now)
      .sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? -1 : 1))
      .map((record) => ({
        id: record.id,
        current: record.id === currentId,
        createdAt: new Date(record.createdAt),
        lastSeenAt: new Date(record.lastSeenAt),
        expiresAt: new Date(record.expiresAt),
        ip: record.ip,
        userAgent: record.userAgent,
        remembered: record.remembered
      }))
  }

  /** Revokes the user's logins but `exceptId`; resolves how many were revoked. */
  async revokeAll (request: FastifyRequest | undefined, userId: string, exceptId: string | null): Promise<number> {
    const records = await call(() => this.#store.list(userId))
    let revoked = 0
    for (const record of records) {
      if (record.id === exceptId || record.userId !== userId) continue
      if (await this.end(request, record.id, 'revoked') !== null) revoked++
    }
    return revoked
  }

  /** The record `loginId` when it is one of `userId`'s. */
  async own (loginId: string, userId: string): Promise<LoginRecord | null> {
    const record = await call(() => this.#store.get(loginId))
    return record !== null && record.userId === userId ? record : null
  }
}
