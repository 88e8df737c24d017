// MemoryLoginStore: the login store of a single process. Bounded, and
// expired records are dropped as they are met and when it is full.
import type { LoginRecord, LoginRecordChanges, LoginRecordExpected, LoginStore, MemoryLoginStoreOptions } from '../types/index.js'

const DEFAULT_MAX_LOGINS = 100_000
// When full, look for expired records at most this often; in between, the
// oldest login makes room (a full scan on every login would be quadratic).
const SWEEP_INTERVAL_MS = 60_000

/** Keeps logins in this process's memory: for one instance, development and tests. */
export class MemoryLoginStore implements LoginStore {
  readonly #records = new Map<string, LoginRecord>()
  readonly #byUser = new Map<string, Set<string>>()
  readonly #maxLogins: number
  #lastSweep = 0

  constructor (options: MemoryLoginStoreOptions = {}) {
    const max = options.maxLogins ?? DEFAULT_MAX_LOGINS
    if (!Number.isInteger(max) || max < 1) throw new TypeError('MemoryLoginStore: `maxLogins` must be a positive integer')
    this.#maxLogins = max
  }

  /** How many records are kept now, expired ones not yet dropped included. */
  get size (): number {
    return this.#records.size
  }

  async create (record: LoginRecord): Promise<void> {
    this.#remove(record.id)
    if (this.#records.size >= this.#maxLogins) this.#makeRoom()
    this.#records.set(record.id, Object.freeze({ ...record }))
    let ids = this.#byUser.get(record.userId)
    if (ids === undefined) this.#byUser.set(record.userId, ids = new Set())
    ids.add(record.id)
  }

  async get (id: string): Promise<LoginRecord | null> {
    return this.#live(id, Date.now())
  }

  async update (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges): Promise<boolean> {
    const record = this.#live(id, Date.now())
    if (record === null) return false
    if (expected.rotation !== undefined && record.rotation !== expected.rotation) return false
    if (expected.lastSeenAt !== undefined && record.lastSeenAt !== expected.lastSeenAt) return false
    // Only the fields an update may change; the identity of a login stays.
    const next: LoginRecord = {
      ...record,
      lastSeenAt: changes.lastSeenAt ?? record.lastSeenAt,
      expiresAt: changes.expiresAt ?? record.expiresAt,
      ip: changes.ip ?? record.ip,
      userAgent: changes.userAgent ?? record.userAgent,
      rotation: changes.rotation ?? record.rotation,
      rotatedAt: changes.rotatedAt ?? record.rotatedAt,
      validatorHash: changes.validatorHash ?? record.validatorHash
    }
    this.#records.set(id, Object.freeze(next))
    return true
  }

  async delete (id: string): Promise<LoginRecord | null> {
    return this.#remove(id)
  }

  async list (userId: string): Promise<LoginRecord[]> {
    const ids = this.#byUser.get(userId)
    if (ids === undefined) return []
    const now = Date.now()
    const records: LoginRecord[] = []
    for (const id of [...ids]) {
      const record = this.#live(id, now)
      if (record !== null) records.push(record)
    }
    return records
  }

  // The record, or null when there is none; an expired one is dropped.
  #live (id: string, now: number): LoginRecord | null {
    const record = this.#records.get(id)
    if (record === undefined) return null
    if (record.expiresAt > now) return record
    this.#remove(id)
    return null
  }

  #remove (id: string): LoginRecord | null {
    const record = this.#records.get(id)
    if (record === undefined) return null
    this.#records.delete(id)
    const ids = this.#byUser.get(record.userId)
    ids?.delete(id)
    if (ids?.size === 0) this.#byUser.delete(record.userId)
    return record
  }

  #makeRoom (): void {
    const now = Date.now()
    if (now - this.#lastSweep >= SWEEP_INTERVAL_MS) {
      this.#lastSweep = now
      for (const [id, record] of this.#records) if (record.expiresAt <= now) this.#remove(id)
    }
    // Still full: the login made longest ago goes (a Map iterates in insertion order).
    while (this.#records.size >= this.#maxLogins) {
      const oldest = this.#records.keys().next().value as string
      this.#remove(oldest)
    }
  }
}
