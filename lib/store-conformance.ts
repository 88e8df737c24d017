// testLoginStore: the rules every LoginStore must follow, checked against a
// real store. It rejects with an AssertionError that names the broken rule,
// so it works under any test runner.
import { AssertionError, deepStrictEqual, strictEqual } from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import type { LoginRecord, LoginStore } from '../types/index.js'

/** Makes a store for one rule: an empty one, or one whose records of earlier rules do not matter. */
export type MakeLoginStore = () => LoginStore | Promise<LoginStore>

interface Rule {
  readonly name: string
  readonly check: (store: LoginStore) => Promise<void>
}

let serial = 0

/** A user id no earlier rule has used, so a shared store does not mix rules. */
function newUserId (label: string): string {
  serial++
  return `testLoginStore ${label} ${serial} ${randomBytes(6).toString('hex')} ü`
}

function newId (store: LoginStore, userId: string): string {
  return store.createId === undefined ? randomBytes(18).toString('base64url') : store.createId(userId)
}

function newRecord (store: LoginStore, userId: string, changes: Partial<LoginRecord> = {}): LoginRecord {
  const now = Date.now()
  return {
    id: newId(store, userId),
    userId,
    createdAt: now - 1000,
    lastSeenAt: now - 500,
    expiresAt: now + 60_000,
    ip: '2001:db8::1',
    userAgent: 'Mozilla/5.0 (testLoginStore) "quoted" ; semi, comma ü',
    remembered: true,
    rememberSeconds: 2592000.5,
    rotation: 0,
    rotatedAt: 0,
    validatorHash: randomBytes(32).toString('base64url'),
    versionTag: randomBytes(16).toString('base64url'),
    ...changes
  }
}

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

const byId = (a: LoginRecord, b: LoginRecord): number => (a.id < b.id ? -1 : 1)

const RULES: readonly Rule[] = [
  {
    name: 'createId, when the store has it, makes distinct ids of 22 to 128 characters of [A-Za-z0-9_-]',
    async check (store) {
      if (store.createId === undefined) return
      const userId = newUserId('ids')
      const ids = new Set<string>()
      for (let index = 0; index < 1000; index++) {
        const id: unknown = store.createId(userId)
        strictEqual(typeof id === 'string' && /^[A-Za-z0-9_-]{22,128}$/.test(id), true, `id ${JSON.stringify(id)}`)
        ids.add(id as string)
      }
      strictEqual(ids.size, 1000, 'distinct ids')
    }
  },
  {
    name: 'get returns a created record with every field as it was',
    async check (store) {
      const record = newRecord(store, newUserId('fields'))
      await store.create(record)
      deepStrictEqual({ ...await store.get(record.id) }, record)
      const plain = newRecord(store, newUserId('fields'), { remembered: false, rememberSeconds: 0, validatorHash: '', versionTag: '', userAgent: '', ip: '' })
      await store.create(plain)
      deepStrictEqual({ ...await store.get(plain.id) }, plain)
    }
  },
  {
    name: 'get of an unknown id resolves null',
    async check (store) {
      strictEqual(await store.get(newId(store, newUserId('unknown'))), null)
    }
  },
  {
    name: 'a record does not change when the store changes later',
    async check (store) {
      const record = newRecord(store, newUserId('snapshot'))
      await store.create(record)
      const before = await store.get(record.id)
      await store.update(record.id, { rotation: 0 }, { lastSeenAt: record.lastSeenAt + 1, rotation: 1 })
      deepStrictEqual({ ...before }, record)
    }
  },
  {
    name: 'an expired record is neither returned, listed nor updated',
    async check (store) {
      const userId = newUserId('expiry')
      const already = newRecord(store, userId, { expiresAt: Date.now() - 1 })
      const soon = newRecord(store, userId, { expiresAt: Date.now() + 150 })
      await store.create(already)
      await store.create(soon)
      strictEqual(await store.get(already.id), null, 'a record created expired')
      await sleep(250)
      strictEqual(await store.get(soon.id), null, 'a record past its expiresAt')
      deepStrictEqual(await store.list(userId), [], 'list')
      strictEqual(await store.update(soon.id, { rotation: 0 }, { lastSeenAt: Date.now(), expiresAt: Date.now() + 60_000 }), false, 'update')
      strictEqual(await store.get(soon.id), null, 'an update must not bring it back')
    }
  },
  {
    name: 'update applies the changes when the expected fields match, and leaves other fields alone',
    async check (store) {
      const record = newRecord(store, newUserId('update'))
      await store.create(record)
      const changes = { lastSeenAt: Date.now(), expiresAt: Date.now() + 120_000, ip: '203.0.113.9', userAgent: 'Other/2' }
      strictEqual(await store.update(record.id, { lastSeenAt: record.lastSeenAt }, changes), true)
      deepStrictEqual({ ...await store.get(record.id) }, { ...record, ...changes })
      const rotated = { rotation: 1, rotatedAt: Date.now(), validatorHash: randomBytes(32).toString('base64url') }
      strictEqual(await store.update(record.id, { rotation: 0 }, rotated), true)
      deepStrictEqual({ ...await store.get(record.id) }, { ...record, ...changes, ...rotated })
    }
  },
  {
    name: 'update with another rotation or lastSeenAt changes nothing and resolves false',
    async check (store) {
      const record = newRecord(store, newUserId('stale'), { rotation: 3 })
      await store.create(record)
      strictEqual(await store.update(record.id, { rotation: 2 }, { rotation: 3, lastSeenAt: Date.now() }), false, 'another rotation')
      strictEqual(await store.update(record.id, { rotation: 4 }, { rotation: 5 }), false, 'a later rotation')
      strictEqual(await store.update(record.id, { lastSeenAt: record.lastSeenAt - 1 }, { lastSeenAt: Date.now() }), false, 'another lastSeenAt')
      strictEqual(await store.update(record.id, { rotation: 3, lastSeenAt: record.lastSeenAt + 1 }, { lastSeenAt: Date.now() }), false, 'one of two fields differs')
      deepStrictEqual({ ...await store.get(record.id) }, record)
    }
  },
  {
    name: 'update never creates a record',
    async check (store) {
      const id = newId(store, newUserId('phantom'))
      strictEqual(await store.update(id, { rotation: 0 }, { lastSeenAt: Date.now(), expiresAt: Date.now() + 60_000 }), false)
      strictEqual(await store.get(id), null)
    }
  },
  {
    name: 'of concurrent updates expecting the same values, exactly one succeeds (compare-and-set)',
    async check (store) {
      const record = newRecord(store, newUserId('race'))
      await store.create(record)
      const hashes = Array.from({ length: 20 }, () => randomBytes(32).toString('base64url'))
      const results = await Promise.all(hashes.map((validatorHash) => store.update(record.id, { rotation: 0 }, { rotation: 1, rotatedAt: Date.now(), validatorHash })))
      strictEqual(results.filter(Boolean).length, 1, 'successful rotations')
      const stored = await store.get(record.id)
      strictEqual(stored?.rotation, 1)
      strictEqual(stored?.validatorHash, hashes[results.indexOf(true)], 'the winner\'s write is the one kept')
      const seen = Array.from({ length: 20 }, (_, index) => record.lastSeenAt + 1 + index)
      const touches = await Promise.all(seen.map((lastSeenAt) => store.update(record.id, { lastSeenAt: record.lastSeenAt }, { lastSeenAt })))
      strictEqual(touches.filter(Boolean).length, 1, 'successful activity writes')
      strictEqual((await store.get(record.id))?.lastSeenAt, seen[touches.indexOf(true)])
    }
  },
  {
    name: 'delete resolves the record as it was and removes it; a second delete resolves null',
    async check (store) {
      const userId = newUserId('delete')
      const record = newRecord(store, userId)
      const other = newRecord(store, userId)
      await store.create(record)
      await store.create(other)
      deepStrictEqual({ ...await store.delete(record.id) }, record)
      strictEqual(await store.get(record.id), null)
      strictEqual(await store.delete(record.id), null)
      strictEqual(await store.update(record.id, { rotation: 0 }, { lastSeenAt: Date.now() }), false, 'update after delete')
      deepStrictEqual((await store.list(userId)).map((item) => item.id), [other.id], 'list after delete')
    }
  },
  {
    name: 'list resolves the user\'s records, and only theirs',
    async check (store) {
      const ann = newUserId('list')
      const bob = newUserId('list')
      const anns = [newRecord(store, ann), newRecord(store, ann, { remembered: false, rememberSeconds: 0, validatorHash: '' }), newRecord(store, ann)]
      const bobs = [newRecord(store, bob)]
      for (const record of [...anns, ...bobs]) await store.create(record)
      deepStrictEqual((await store.list(ann)).map((record) => ({ ...record })).sort(byId), [...anns].sort(byId))
      deepStrictEqual((await store.list(bob)).map((record) => ({ ...record })), bobs)
      deepStrictEqual(await store.list(newUserId('nobody')), [])
    }
  }

]

/**
 * Checks that `makeStore`'s stores follow every rule fastify-login relies on.
 * Rejects with an `AssertionError` whose message names the first broken rule.
 */
export async function testLoginStore (makeStore: MakeLoginStore): Promise<void> {
  if (typeof makeStore !== 'function') throw new TypeError('testLoginStore(makeStore): makeStore must be a function that returns a LoginStore')
  for (const rule of RULES) {
    const store = await makeStore()
    try {
      await rule.check(store)
    } catch (error) {
      const detail = error instanceof Error ? error.message : String(error)
      throw new AssertionError({ message: `LoginStore rule broken: ${rule.name}\n${detail}` })
    }
  }
}

/** The names of the rules, in the order they are checked. */
export const LOGIN_STORE_RULES: readonly string[] = Object.freeze(RULES.map((rule) => rule.name))
