// `fastify-login/redis`: RedisLoginStore, the login store over a node-redis
// client (the `redis` package, the client connect-redis uses). The main entry
// never loads this file, and this file never loads `redis`: it only calls the
// client it is given.
//
// Layout, for a prefix P and a user whose tag is T (8 characters of a
// SHA-256 of the user id, the first 8 of each of the user's login ids):
//   P{T}:login:<id>   a hash: the record; it expires in Redis with the login
//   P{T}:logins       a sorted set: login ids of the users tagged T, by expiry
// Both keys of a login share the hash tag {T}, so every script below touches
// one slot, and the store runs on Redis Cluster too.
import { createHash, randomBytes } from 'node:crypto'
import type { LoginRecord, LoginRecordChanges, LoginRecordExpected, LoginStore } from '../types/index.js'

/** The part of a node-redis client (or cluster) that RedisLoginStore uses. */
export interface RedisClientLike {
  hGetAll (key: string): Promise<unknown>
  eval (script: string, options: { keys: string[], arguments: string[] }): Promise<unknown>
}

/** Options of `RedisLoginStore`. */
export interface RedisLoginStoreOptions {
  /**
   * A connected node-redis client or cluster. Create it with
   * `disableOfflineQueue: true`, so that requests fail at once (503) while
   * Redis is down instead of waiting for it.
   */
  client: RedisClientLike
  /** Prefix of every key. Default `'fastify-login:'`. */
  prefix?: string
}

const DEFAULT_PREFIX = 'fastify-login:'
const TAG_LENGTH = 8
const ID = /^[A-Za-z0-9_-]{22,128}$/

const CREATE = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[3])
redis.call('ZADD', KEYS[2], ARGV[1], ARGV[2])
local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[2], last[2])
return 1`

// Compare-and-set on the expected fields (ARGV[5], an even count of
// field and value after it); never creates a record.
const UPDATE = `
local current = redis.call('HMGET', KEYS[1], 'expiresAt')
if not current[1] or tonumber(current[1]) <= tonumber(ARGV[1]) then return 0 end
local compared = tonumber(ARGV[4])
for index = 5, 4 + compared, 2 do
  if redis.call('HGET', KEYS[1], ARGV[index]) ~= ARGV[index + 1] then return 0 end
end
redis.call('HSET', KEYS[1], unpack(ARGV, 5 + compared))
if ARGV[2] ~= '' then
  redis.call('PEXPIREAT', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIREAT', KEYS[2], last[2])
end
return 1`

const DELETE = `
local fields = redis.call('HGETALL', KEYS[1])
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return fields`

// Every record of a tag's logins that has not expired, in one round trip.
const LIST = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
local out = {}
for _, id in ipairs(ids) do
  out[#out + 1] = id
  out[#out + 1] = redis.call('HGETALL', ARGV[2] .. id)
end
return out`

const NUMBER_FIELDS = ['createdAt', 'lastSeenAt', 'expiresAt', 'rememberSeconds', 'rotation', 'rotatedAt'] as const
const STRING_FIELDS = ['userId', 'ip', 'userAgent', 'validatorHash', 'versionTag'] as const

/** The fields of a record as Redis keeps them, in HSET's argument order. */
function toFields (record: LoginRecordChanges | LoginRecordExpected | LoginRecord): string[] {
  const fields: string[] = []
  for (const [name, value] of Object.entries(record)) {
    if (name === 'id' || value === undefined) continue
    fields.push(name, typeof value === 'boolean' ? (value ? '1' : '0') : String(value))
  }
  return fields
}

/**
 * A record from HGETALL's answer: a flat array (from a script), an object
 * (node-redis), or a Map (a client that maps RESP3 maps to Maps); `null` when
 * it is not a whole record.
 */
function toRecord (id: string, reply: unknown[] | object): LoginRecord | null {
  const map = new Map<string, string>()
  if (Array.isArray(reply)) {
    for (let index = 0; index + 1 < reply.length; index += 2) map.set(String(reply[index]), String(reply[index + 1]))
  } else {
    for (const [name, value] of reply instanceof Map ? reply : Object.entries(reply)) map.set(String(name), String(value))
  }
  const numbers: Partial<Record<typeof NUMBER_FIELDS[number], number>> = {}
  for (const name of NUMBER_FIELDS) {
    const value = Number(map.get(name))
    if (!map.has(name) || !Number.isFinite(value)) return null
    numbers[name] = value
  }
  const strings: Partial<Record<typeof STRING_FIELDS[number], string>> = {}
  for (const name of STRING_FIELDS) {
    const value = map.get(name)
    if (value === undefined) return null
    strings[name] = value
  }
  const remembered = map.get('remembered')
  if (remembered !== '1' && remembered !== '0') return null
  return { id, ...numbers, ...strings, remembered: remembered === '1' } as LoginRecord
}

/** Keeps logins in Redis (or Redis Cluster): for several instances of an app. */
export class RedisLoginStore implements LoginStore {
  readonly #client: RedisClientLike
  readonly #prefix: string

  constructor (options: RedisLoginStoreOptions) {
    const client = options?.client as Partial<RedisClientLike> | undefined
    if (typeof client?.hGetAll !== 'function' || typeof client.eval !== 'function') {
      throw new TypeError('RedisLoginStore needs `client`: a connected node-redis client (createClient from the `redis` package)')
    }
    const prefix = options.prefix ?? DEFAULT_PREFIX
    if (typeof prefix !== 'string' || /[{}]/.test(prefix)) {
      throw new TypeError('RedisLoginStore: `prefix` must be a string without { or } (they would change the hash tag)')
    }
    this.#client = client as RedisClientLike
    this.#prefix = prefix
  }

  /** The user's tag, then 144 random bits: every key of a user's logins lands in one Redis Cluster slot. */
  createId (userId: string): string {
    return tagOf(userId) + randomBytes(18).toString('base64url')
  }

  async create (record: LoginRecord): Promise<void> {
    const tag = this.#tag(record.id)
    if (tag === null) throw new TypeError('RedisLoginStore: the login id was not made by its createId()')
    await this.#client.eval(CREATE, {
      keys: [this.#recordKey(tag, record.id), this.#indexKey(tag)],
      arguments: [String(record.expiresAt), record.id, String(Date.now()), ...toFields(record)]
    })
  }

  async get (id: string): Promise<LoginRecord | null> {
    const tag = this.#tag(id)
    if (tag === null) return null
    const record = toRecord(id, await this.#client.hGetAll(this.#recordKey(tag, id)) as object)
    return record !== null && record.expiresAt > Date.now() ? record : null
  }

  async update (id: string, expected: LoginRecordExpected, changes: LoginRecordChanges): Promise<boolean> {
    const tag = this.#tag(id)
    if (tag === null) return false
    const expiresAt = changes.expiresAt === undefined ? '' : String(changes.expiresAt)
    const fields = toFields(changes)
    if (fields.length === 0) return false
    const compared = toFields(expected)
    const done = await this.#client.eval(UPDATE, {
      keys: [this.#recordKey(tag, id), this.#indexKey(tag)],
      arguments: [String(Date.now()), expiresAt, id, String(compared.length), ...compared, ...fields]
    })
    return Number(done) === 1
  }

  async delete (id: string): Promise<LoginRecord | null> {
    const tag = this.#tag(id)
    if (tag === null) return null
    const fields = await this.#client.eval(DELETE, { keys: [this.#recordKey(tag, id), this.#indexKey(tag)], arguments: [id] }) as unknown[]
    return toRecord(id, fields)
  }

  async list (userId: string): Promise<LoginRecord[]> {
    const tag = tagOf(userId)
    const now = Date.now()
    const replies = await this.#client.eval(LIST, { keys: [this.#indexKey(tag)], arguments: [String(now), this.#recordKey(tag, '')] }) as unknown[]
    const records: LoginRecord[] = []
    // Pairs of an id and its fields; a tag may be shared by other users.
    for (let index = 0; index + 1 < replies.length; index += 2) {
      const record = toRecord(String(replies[index]), replies[index + 1] as unknown[])
      if (record !== null && record.userId === userId && record.expiresAt > now) records.push(record)
    }
    return records
  }

  #tag (id: string): string | null {
    return ID.test(id) && id.length >= TAG_LENGTH + 22 ? id.slice(0, TAG_LENGTH) : null
  }

  #recordKey (tag: string, id: string): string {
    return `${this.#prefix}{${tag}}:login:${id}`
  }

  #indexKey (tag: string): string {
    return `${this.#prefix}{${tag}}:logins`
  }
}

function tagOf (userId: string): string {
  return createHash('sha256').update(userId, 'utf8').digest('base64url').slice(0, TAG_LENGTH)
}
