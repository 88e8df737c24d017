// testLoginStore (fastify-login/testing): MemoryLoginStore passes it, and a
// store that breaks any rule is caught with an AssertionError naming it.
// MemoryLoginStore's own bounds.
import t from 'tap'
import { AssertionError } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { MemoryLoginStore, type LoginRecord, type LoginRecordChanges, type LoginRecordExpected, type LoginStore } from '../lib/index.js'
import { LOGIN_STORE_RULES, testLoginStore } from '../lib/testing.js'

function record (userId: string, changes: Partial<LoginRecord> = {}): LoginRecord {
  const now = Date.now()
  return {
    id: randomBytes(18).toString('base64url'),
    userId,
    createdAt: now,
    lastSeenAt: now,
    expiresAt: now + 60_000,
    ip: '127.0.0.1',
    userAgent: 'test',
    remembered: false,
    rememberSeconds: 0,
    rotation: 0,
    rotatedAt: 0,
    validatorHash: '',
    versionTag: '',
    ...changes
  }
}

t.test('MemoryLoginStore passes testLoginStore', async () => {
  await testLoginStore(() => new MemoryLoginStore())
})

t.test('one shared store passes too (rules use their own users)', async () => {
  const shared = new MemoryLoginStore()
  await testLoginStore(() => shared)
})

/** A MemoryLoginStore with one method replaced by a broken one. */
function broken (patch: (inner: MemoryLoginStore) => Partial<LoginStore>): () => LoginStore {
  return () => {
    const inner = new MemoryLoginStore()
    const store: LoginStore = {
      create: (value) => inner.create(value),
      get: (id) => inner.get(id),
      update: (id, expected, changes) => inner.update(id, expected, changes),
      delete: (id) => inner.delete(id),
      list: (userId) => inner.list(userId),
      ...patch(inner)
    }
    return store
  }
}

// Each way of breaking a store, and the rule that must name it.
const breakages: Array<[string, () => LoginStore, string]> = [
  ['get loses a field', broken((inner) => ({ get: async (id) => { const found = await inner.get(id); return found === null ? null : { ...found, ip: '' } } })), 'every field'],
  ['get answers undefined for an unknown id', broken((inner) => ({ get: async (id) => (await inner.get(id)) ?? (undefined as unknown as null) })), 'unknown id'],
  ['get hands out the live object', broken(() => {
    const live = new Map<string, LoginRecord & { [key: string]: unknown }>()
    return {
      create: async (value) => { live.set(value.id, { ...value }) },
      get: async (id) => live.get(id) ?? null,
      update: async (id, expected, changes) => {
        const found = live.get(id)
        if (found === undefined || found.rotation !== expected.rotation) return false
        Object.assign(found, changes)
        return true
      },
      delete: async (id) => { const found = live.get(id) ?? null; live.delete(id); return found },
      list: async (userId) => [...live.values()].filter((item) => item.userId === userId)
    }
  }), 'does not change'],
  ['get returns expired records', broken(() => {
    const all = new Map<string, LoginRecord>()
    return {
      create: async (value) => { all.set(value.id, value) },
      get: async (id) => all.get(id) ?? null,
      update: async () => false,
      delete: async (id) => { const found = all.get(id) ?? null; all.delete(id); return found },
      list: async () => []
    }
  }), 'expired'],
  ['update ignores the expected values', broken((inner) => ({
    update: async (id: string, _expected: LoginRecordExpected, changes: LoginRecordChanges) => inner.update(id, {}, changes)
  })), 'another rotation'],
  ['update forgets the rotation fields', broken((inner) => ({
    update: async (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges) => {
      const { rotation: _rotation, rotatedAt: _rotatedAt, validatorHash: _hash, ...rest } = changes
      return inner.update(id, expected, rest)
    }
  })), 'expected fields match'],
  ['update compares only the rotation', broken((inner) => ({
    update: async (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges) => inner.update(id, { rotation: expected.rotation }, changes)
  })), 'another rotation'],
  ['update creates a record it never had', broken((inner) => {
    const created = new Set<string>()
    return {
      create: async (value: LoginRecord) => { created.add(value.id); await inner.create(value) },
      update: async (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges) => {
        if (!created.has(id)) {
          await inner.create({ ...record('phantom'), id, ...changes })
          return true
        }
        return inner.update(id, expected, changes)
      }
    }
  }), 'never creates'],
  ['update is not atomic', broken((inner) => ({
    update: async (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges) => {
      const found = await inner.get(id)
      if (found === null || (expected.rotation !== undefined && found.rotation !== expected.rotation) ||
        (expected.lastSeenAt !== undefined && found.lastSeenAt !== expected.lastSeenAt)) return false
      await new Promise((resolve) => setTimeout(resolve, 1))
      await inner.delete(id)
      await inner.create({ ...found, ...changes })
      return true
    }
  })), 'exactly one succeeds'],
  ['delete does not say what it deleted', broken((inner) => ({ delete: async (id) => { await inner.delete(id); return null } })), 'delete resolves'],
  ['list shows other users\' logins', broken(() => {
    const inner = new MemoryLoginStore()
    const users = new Set<string>()
    return {
      create: async (value) => { users.add(value.userId); await inner.create(value) },
      get: (id) => inner.get(id),
      update: (id, expected, changes) => inner.update(id, expected, changes),
      delete: (id) => inner.delete(id),
      list: async () => (await Promise.all([...users].map((user) => inner.list(user)))).flat()
    }
  }), 'only theirs'],
  ['createId repeats itself', () => Object.assign(new MemoryLoginStore(), { createId: () => 'always-the-same-id-of-24' }), 'distinct ids'],
  ['createId makes ids with dots', () => Object.assign(new MemoryLoginStore(), { createId: () => `${randomBytes(18).toString('base64url')}.x` }), 'distinct ids']
]

for (const [name, makeStore, rule] of breakages) {
  t.test(`testLoginStore catches a store where ${name}`, async (t) => {
    const error = await testLoginStore(makeStore).then(() => null, (caught: unknown) => caught)
    t.ok(error instanceof AssertionError, 'an AssertionError')
    t.match((error as Error).message, new RegExp(`LoginStore rule broken: .*${rule}`))
  })
}

t.test('every rule has a breakage that it catches, and the rules are listed', async (t) => {
  t.equal(LOGIN_STORE_RULES.length, 11)
  t.equal(new Set(breakages.map(([, , rule]) => LOGIN_STORE_RULES.find((name) => name.includes(rule)))).size, 11, 'each rule, once at least')
  for (const name of LOGIN_STORE_RULES) {
    t.ok(breakages.some(([, , rule]) => name.includes(rule)), `a breakage for: ${name}`)
  }
})

t.test('testLoginStore needs a function', async (t) => {
  await t.rejects(testLoginStore('store' as unknown as () => LoginStore), { name: 'TypeError' })
})

t.test('MemoryLoginStore is bounded: when full, the oldest login makes room', async (t) => {
  const store = new MemoryLoginStore({ maxLogins: 3 })
  const records = ['a', 'b', 'c', 'd'].map((user) => record(user))
  for (const item of records) await store.create(item)
  t.equal(store.size, 3)
  t.equal(await store.get(records[0]!.id), null, 'the oldest went')
  t.same(await store.list('a'), [])
  for (const item of records.slice(1)) t.ok(await store.get(item.id))
})

t.test('MemoryLoginStore drops expired records first when it is full', async (t) => {
  const store = new MemoryLoginStore({ maxLogins: 3 })
  const old = record('a')
  const expiring = record('b', { expiresAt: Date.now() + 50 })
  const kept = record('c')
  for (const item of [old, expiring, kept]) await store.create(item)
  await new Promise((resolve) => setTimeout(resolve, 80))
  const next = record('d')
  await store.create(next)
  t.equal(store.size, 3)
  t.ok(await store.get(old.id), 'the oldest live login stays: an expired one made room')
  t.ok(await store.get(next.id))
})

t.test('MemoryLoginStore drops an expired record when it meets it', async (t) => {
  const store = new MemoryLoginStore()
  await store.create(record('a', { expiresAt: Date.now() - 1 }))
  t.equal(store.size, 1)
  t.same(await store.list('a'), [])
  t.equal(store.size, 0)
})

t.test('MemoryLoginStore: creating a record with an id again replaces it', async (t) => {
  const store = new MemoryLoginStore()
  const first = record('a')
  await store.create(first)
  await store.create({ ...first, userId: 'b' })
  t.same(await store.list('a'), [])
  t.equal((await store.list('b')).length, 1)
  t.equal(store.size, 1)
})

t.test('MemoryLoginStore: maxLogins must be a positive integer', async (t) => {
  for (const maxLogins of [0, -1, 1.5, Number.NaN, '10']) {
    t.throws(() => new MemoryLoginStore({ maxLogins: maxLogins as number }), { name: 'TypeError', message: /maxLogins/ })
  }
})
