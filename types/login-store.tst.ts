// Type tests of the login store (SPEC section 11): the LoginStore interface
// and its two implementations, the request and manager methods, the events,
// testLoginStore, and the redis subpath.
import fastify, { type FastifyRequest } from 'fastify'
import { createClient } from 'redis'
import { describe, expect, test } from 'tstyche'
import {
  DEFAULT_ROTATION_GRACE, FST_LOGIN_NO_STORE, FST_LOGIN_STORE_FAILED, MemoryLoginStore,
  type FastifyLoginOptions, type LoginEvents, type LoginInfo, type LoginRecord, type LoginRecordChanges, type LoginRecordExpected,
  type LoginRevokedEvent, type LoginRevokedReason, type LoginStore, type RememberTheftEvent
} from 'fastify-login'
import { RedisLoginStore, type RedisClientLike, type RedisLoginStoreOptions } from 'fastify-login/redis'
import { LOGIN_STORE_RULES, testLoginStore, type MakeLoginStore } from 'fastify-login/testing'

describe('LoginStore', () => {
  test('both built-in stores are LoginStores', () => {
    expect(new MemoryLoginStore()).type.toBeAssignableTo<LoginStore>()
    expect(new MemoryLoginStore({ maxLogins: 10 })).type.toBeAssignableTo<LoginStore>()
    expect(new RedisLoginStore({ client: createClient() })).type.toBeAssignableTo<LoginStore>()
  })

  test('a store of one\'s own implements five async methods, createId optional', () => {
    const store: LoginStore = {
      async create (record) { expect(record).type.toBe<LoginRecord>() },
      async get (id) { expect(id).type.toBe<string>(); return null },
      async update (id, expected, changes) {
        expect(expected).type.toBe<LoginRecordExpected>()
        expect(changes).type.toBe<LoginRecordChanges>()
        return false
      },
      async delete () { return null },
      async list (userId) { expect(userId).type.toBe<string>(); return [] }
    }
    expect(store.createId).type.toBe<((userId: string) => string) | undefined>()
    expect<LoginStore>().type.not.toBeAssignableFrom<Omit<LoginStore, 'update'>>()
  })

  test('an update compares rotation or lastSeenAt, and changes only what may change', () => {
    expect<LoginRecordExpected>().type.toBeAssignableFrom<{ rotation: number }>()
    expect<LoginRecordExpected>().type.toBeAssignableFrom<{ lastSeenAt: number }>()
    expect<LoginRecordExpected>().type.not.toBeAssignableFrom<{ userId: string }>()
    expect<LoginRecordChanges>().type.toBeAssignableFrom<{ lastSeenAt: number, ip: string, rotation: number }>()
    expect<LoginRecordChanges>().type.not.toBeAssignableFrom<{ userId: string }>()
    expect<LoginRecordChanges>().type.not.toBeAssignableFrom<{ id: string }>()
  })

  test('a record is read-only', () => {
    const record = {} as LoginRecord
    // @ts-expect-error Cannot assign to 'userId' because it is a read-only property
    record.userId = 'x'
  })

  test('the option and the rotation grace', () => {
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string, loginStore: MemoryLoginStore, remember: { rotationGrace: number } }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, loginStore: { get (): null } }>()
    expect(DEFAULT_ROTATION_GRACE).type.toBe<60>()
    expect(fastify().loginManager.options.remember.rotationGrace).type.toBe<number>()
  })
})

describe('RedisLoginStore', () => {
  test('takes a node-redis client and an optional prefix', () => {
    expect<RedisLoginStoreOptions>().type.toBeAssignableFrom<{ client: ReturnType<typeof createClient>, prefix: string }>()
    expect<RedisLoginStoreOptions>().type.not.toBeAssignableFrom<{ prefix: string }>()
    expect<RedisClientLike>().type.not.toBeAssignableFrom<{ get (key: string): Promise<string | null> }>()
    expect(new RedisLoginStore({ client: createClient() }).createId('1')).type.toBe<string>()
  })
})

describe('the request and the manager', () => {
  test('request.loginId and the three methods', () => {
    const request = {} as FastifyRequest
    expect(request.loginId).type.toBe<string | null>()
    expect(request.listLogins()).type.toBe<Promise<LoginInfo[]>>()
    expect(request.revokeLogin('id')).type.toBe<Promise<boolean>>()
    expect(request.revokeOtherLogins()).type.toBe<Promise<number>>()
    expect(request.revokeLogin).type.not.toBeCallableWith(1)
    // @ts-expect-error Cannot assign to 'loginId' because it is a read-only property
    request.loginId = 'x'
  })

  test('a login as listed, dates as Date', () => {
    expect<LoginInfo['createdAt']>().type.toBe<Date>()
    expect<LoginInfo['current']>().type.toBe<boolean>()
    expect<LoginInfo>().type.not.toHaveProperty('validatorHash')
  })

  test('loginManager lists and revokes by user id', () => {
    const { loginManager } = fastify()
    expect(loginManager.listLogins('1')).type.toBe<Promise<LoginInfo[]>>()
    expect(loginManager.revokeLogins(1)).type.toBe<Promise<number>>()
    expect(loginManager.revokeLogins).type.not.toBeCallableWith({ id: 1 })
  })
})

describe('events and errors', () => {
  test('loginRevoked and rememberTheft', () => {
    expect<LoginEvents['loginRevoked']>().type.toBe<LoginRevokedEvent>()
    expect<LoginEvents['rememberTheft']>().type.toBe<RememberTheftEvent>()
    expect<LoginRevokedEvent['request']>().type.toBe<FastifyRequest | undefined>()
    expect<RememberTheftEvent['request']>().type.toBe<FastifyRequest>()
    expect<LoginRevokedReason>().type.toBe<'logout' | 'revoked' | 'theft' | 'expired'>()
    fastify().loginManager.on('loginRevoked', (event) => { expect(event.reason).type.toBe<LoginRevokedReason>() })
  })

  test('FST_LOGIN_STORE_FAILED is a 503 with a cause; FST_LOGIN_NO_STORE a 500', () => {
    expect(new FST_LOGIN_STORE_FAILED({ cause: new Error('down') }).statusCode).type.toBe<503>()
    expect(new FST_LOGIN_STORE_FAILED().code).type.toBe<'FST_LOGIN_STORE_FAILED'>()
    expect(new FST_LOGIN_NO_STORE().statusCode).type.toBe<500>()
  })
})

describe('testLoginStore', () => {
  test('takes a function that makes a store, sync or async', () => {
    expect(testLoginStore(() => new MemoryLoginStore())).type.toBe<Promise<void>>()
    expect(testLoginStore(async () => new MemoryLoginStore())).type.toBe<Promise<void>>()
    expect(testLoginStore).type.not.toBeCallableWith(new MemoryLoginStore())
    expect<MakeLoginStore>().type.toBeAssignableFrom<() => LoginStore>()
    expect(LOGIN_STORE_RULES).type.toBe<readonly string[]>()
  })
})
