// RedisLoginStore (fastify-login/redis) against a real redis-server on
// 127.0.0.1: the conformance rules, the key layout (one hash tag per user,
// for Redis Cluster), expiry in Redis, the commands per request counted by
// Redis itself, and two app processes sharing one Redis (revoke, theft,
// Redis stopped and started with requests in flight).
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { createClient, RESP_TYPES } from 'redis'
import { testLoginStore } from '../lib/testing.js'
import { RedisLoginStore } from '../lib/redis.js'
import { CookieJar } from './helpers.js'
import { childEnv } from './child-env.js'
import { Browser } from './fetch-browser.js'
import { freePort } from './free-port.js'
import { requireProgram } from './programs.js'
import { RedisServer, stopProcess, tempDir } from './redis-server.js'
import { buildStoreApp, ControlledStore, useClock } from './store-helpers.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const LOGIN_SECRET = 'login secret shared by both instances, 32+ characters'
const SESSION_KEY = 'ab'.repeat(32)

function newClient (url: string) {
  return createClient({ url, disableOfflineQueue: true, socket: { reconnectStrategy: () => 50 } })
}

type Client = ReturnType<typeof newClient>

async function connect (t: Test, url: string): Promise<Client> {
  const client = newClient(url)
  client.on('error', () => {})
  await client.connect()
  t.teardown(() => client.close())
  return client
}

/** Every command's calls, from INFO commandstats. */
async function commandCalls (client: Client): Promise<Map<string, number>> {
  const info = await client.info('commandstats')
  const calls = new Map<string, number>()
  for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) calls.set(match[1]!, Number(match[2]))
  return calls
}

/** The commands Redis ran between two snapshots, the INFO that took the first one left out. */
function difference (before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const delta: Record<string, number> = {}
  for (const [name, count] of after) {
    const added = count - (before.get(name) ?? 0) - (name === 'info' ? 1 : 0)
    if (added > 0) delta[name] = added
  }
  return delta
}

interface Instance {
  readonly base: string
  readonly output: { text: string }
}

/** `test/fixtures/store-server.mjs` as its own process, on the built package. */
async function startInstance (t: Test, redisUrl: string, grace: number): Promise<Instance> {
  const port = await freePort()
  const env = childEnv({ PORT: String(port), REDIS_URL: redisUrl, LOGIN_SECRET, SESSION_KEY, GRACE: String(grace) })
  const child = spawn(process.execPath, [join(ROOT, 'test', 'fixtures', 'store-server.mjs')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => stopProcess(child))
  const output = { text: '' }
  child.stdout.on('data', (chunk: Buffer) => { output.text += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { output.text += chunk.toString() })
  for (let index = 0; index < 200 && !output.text.includes('listening '); index++) {
    if (child.exitCode !== null) break
    await sleep(50)
  }
  if (!output.text.includes('listening ')) throw new Error(`the instance did not start:\n${output.text}`)
  return { base: `http://127.0.0.1:${port}`, output }
}

async function me (browser: Browser, instance: Instance): Promise<{ status: number, user: string | null }> {
  const response = await browser.request(instance.base, '/me', { accept: 'application/json' })
  const body = await response.json() as { user?: string | null }
  return { status: response.status, user: body.user ?? null }
}

async function post (browser: Browser, instance: Instance, path: string): Promise<unknown> {
  const response = await browser.request(instance.base, path, { method: 'POST', accept: 'application/json' })
  return response.json()
}

if (requireProgram(t, 'redis-server', 'the RedisLoginStore tests') !== null) {
  const redis = new RedisServer(await freePort(), tempDir(t, 'login-store'), { persistent: true })
  await redis.start()
  t.teardown(() => redis.stop())

  t.test('RedisLoginStore passes testLoginStore', async (t) => {
    const client = await connect(t, redis.url)
    await testLoginStore(() => new RedisLoginStore({ client, prefix: 'conformance:' }))
  })

  t.test('RedisLoginStore passes testLoginStore over RESP3 with maps as Maps too', async (t) => {
    const client = createClient({ url: redis.url, RESP: 3, disableOfflineQueue: true })
    client.on('error', () => {})
    await client.connect()
    t.teardown(() => client.close())
    const mapped = client.withTypeMapping({ [RESP_TYPES.MAP]: Map })
    t.ok(await mapped.hGetAll('no-such-key') instanceof Map, 'this client answers HGETALL with a Map')
    await testLoginStore(() => new RedisLoginStore({ client: mapped, prefix: 'resp3:' }))
  })

  t.test('a damaged record in Redis reads as none; an update with nothing to change changes nothing', async (t) => {
    const client = await connect(t, redis.url)
    const store = new RedisLoginStore({ client, prefix: 'damaged:' })
    const now = Date.now()
    const record = { id: store.createId('1'), userId: '1', createdAt: now, lastSeenAt: now, expiresAt: now + 60_000, ip: '', userAgent: '', remembered: false, rememberSeconds: 0, rotation: 0, rotatedAt: 0, validatorHash: '', versionTag: '' }
    const key = `damaged:{${record.id.slice(0, 8)}}:login:${record.id}`
    await store.create(record)
    t.equal(await store.update(record.id, { rotation: 0 }, {}), false, 'no changes')
    t.equal(await store.update(record.id, { rotation: 0 }, { ip: undefined, userAgent: 'Other/1' }), true, 'an undefined change is left out')
    t.equal((await store.get(record.id))?.ip, '', 'not written as "undefined"')
    await client.hSet(key, 'remembered', 'maybe')
    t.equal(await store.get(record.id), null, 'remembered neither 1 nor 0')
    await client.hSet(key, 'remembered', '0')
    await client.hSet(key, 'rotation', 'many')
    t.equal(await store.get(record.id), null, 'a number that is not one')
    await client.hSet(key, 'rotation', '0')
    await client.hDel(key, 'versionTag')
    t.equal(await store.get(record.id), null, 'a field missing')
    t.same(await store.list('1'), [], 'not listed either')
  })

  t.test('every key of a user\'s logins shares one hash tag, and records expire in Redis with the login', async (t) => {
    const client = await connect(t, redis.url)
    const store = new RedisLoginStore({ client, prefix: 'layout:' })
    const { app } = await buildStoreApp({ store: new ControlledStore(store) })
    t.teardown(() => app.close())
    for (let index = 0; index < 3; index++) await new CookieJar(app).inject({ method: 'POST', url: `/login/1${index === 0 ? '?remember=1&duration=600' : ''}` })
    await new CookieJar(app).inject({ method: 'POST', url: '/login/2' })
    const keys = await client.keys('layout:*')
    t.equal(keys.length, 6, 'four records and two index keys')
    const annsRecords = (await store.list('1')).map((record) => `layout:{${record.id.slice(0, 8)}}:login:${record.id}`)
    t.equal(annsRecords.length, 3)
    t.equal(new Set(annsRecords.map((key) => /\{([^}]+)\}/.exec(key)![1])).size, 1, 'one tag for Ann\'s logins')
    t.ok(annsRecords.every((key) => keys.includes(key)))
    t.ok(keys.includes(`layout:{${annsRecords[0]!.slice(8, 16)}}:logins`), 'her index shares it')
    for (const key of keys) {
      const ttl = await client.pTTL(key)
      t.ok(ttl > 0, `${key} expires by itself`)
    }
    const remembered = (await store.list('1')).find((record) => record.remembered)!
    const ttl = await client.pTTL(`layout:{${remembered.id.slice(0, 8)}}:login:${remembered.id}`)
    t.ok(Math.abs(ttl - 600_000) < 5000, `the remembered one expires with its cookie (${ttl} ms)`)
    const short = store.createId('3')
    const now = Date.now()
    await store.create({ id: short, userId: '3', createdAt: now, lastSeenAt: now, expiresAt: now + 150, ip: '', userAgent: '', remembered: false, rememberSeconds: 0, rotation: 0, rotatedAt: 0, validatorHash: '', versionTag: '' })
    await sleep(300)
    t.equal(await client.exists(`layout:{${short.slice(0, 8)}}:login:${short}`), 0, 'Redis dropped the expired record itself')
  })

  t.test('RedisLoginStore refuses a missing client and a prefix with braces; ids of other stores are unknown to it', async (t) => {
    const client = await connect(t, redis.url)
    t.throws(() => new RedisLoginStore({} as never), { name: 'TypeError', message: /client/ })
    t.throws(() => new RedisLoginStore({ client, prefix: 'a{b}:' }), { name: 'TypeError', message: /prefix/ })
    const store = new RedisLoginStore({ client })
    t.equal(await store.get('not-one-of-its-ids'), null)
    t.equal(await store.update('x', { rotation: 0 }, { lastSeenAt: 1 }), false)
    t.equal(await store.delete('x'), null)
    await t.rejects(store.create({ id: 'AAAAAAAAAAAAAAAAAAAAAAAA', userId: '1' } as never), { name: 'TypeError' })
  })

  t.test('counted by Redis: one command per authenticated request, one write a minute, none for anonymous requests', async (t) => {
    const clock = useClock(t)
    const client = await connect(t, redis.url)
    const { app } = await buildStoreApp({ store: new ControlledStore(new RedisLoginStore({ client, prefix: 'counted:' })) })
    t.teardown(() => app.close())
    const jars = [new CookieJar(app), new CookieJar(app)]
    await jars[0]!.inject({ method: 'POST', url: '/login/1' })
    await jars[1]!.inject({ method: 'POST', url: '/login/2?remember=1' })
    let before = await commandCalls(client)
    for (let index = 0; index < 50; index++) await jars[index % 2]!.inject('/')
    t.same(difference(before, await commandCalls(client)), { hgetall: 50 }, '50 requests, 50 reads')
    before = await commandCalls(client)
    const anonymous = new CookieJar(app)
    for (let index = 0; index < 20; index++) await anonymous.inject('/')
    t.same(difference(before, await commandCalls(client)), {}, 'anonymous requests: none')
    clock.advance(61_000)
    before = await commandCalls(client)
    for (let index = 0; index < 50; index++) await jars[index % 2]!.inject('/')
    // INFO commandstats counts the commands a script runs as well as the EVAL itself.
    const writes = { eval: 2, hmget: 2, hget: 2, hset: 2, pexpireat: 4, zadd: 2, zrange: 2 }
    t.same(difference(before, await commandCalls(client)), { hgetall: 50, ...writes }, 'a minute later: one write (one EVAL) per login')
  })

  t.test('two app processes sharing Redis', async (t) => {
    const a = await startInstance(t, redis.url, 0.3)
    const b = await startInstance(t, redis.url, 0.3)

    t.test('revoke on one instance: the other device is anonymous at its next request on the other', async (t) => {
      const laptop = new Browser('Laptop/1')
      const phone = new Browser('Phone/1')
      await post(laptop, a, '/login/1')
      await post(phone, b, '/login/1?remember=1')
      t.same(await me(laptop, b), { status: 200, user: 'Ann' }, 'one login, both instances')
      const devices = await (await phone.request(b.base, '/devices', { accept: 'application/json' })).json() as { logins: Array<{ id: string, userAgent: string }> }
      t.same(devices.logins.map((login) => login.userAgent).sort(), ['Laptop/1', 'Phone/1'])
      const laptopLogin = devices.logins.find((login) => login.userAgent === 'Laptop/1')!
      t.same(await post(phone, b, `/revoke/${laptopLogin.id}`), { revoked: true })
      t.same(await me(laptop, a), { status: 200, user: null }, 'anonymous on A')
      t.same(await me(phone, a), { status: 200, user: 'Ann' })
    })

    t.test('logout on one instance: a copy of the stateless session cookie is anonymous on the other', async (t) => {
      const browser = new Browser()
      await post(browser, a, '/login/2')
      const copy = browser.copy()
      await post(browser, a, '/logout')
      t.same(await me(copy, b), { status: 200, user: null })
    })

    t.test('theft caught across processes: an old remember cookie on B ends the login the owner restored on A', async (t) => {
      const owner = new Browser('Owner/1')
      await post(owner, a, '/login/1?remember=1')
      owner.cookies.delete('session')
      const thief = owner.copy()
      t.same(await me(owner, a), { status: 200, user: 'Ann' }, 'the owner restores on A (rotated)')
      await sleep(500)
      t.same(await me(thief, b), { status: 200, user: null }, 'the thief is anonymous on B')
      t.notOk(thief.cookies.has('remember_token'), 'and its cookie is cleared')
      t.same(await me(owner, a), { status: 200, user: null }, 'the owner\'s login is over on A too')
    })

    t.test('Redis stopped and started with requests in flight: 503 meanwhile, nobody logged out, nothing let through', async (t) => {
      const user = new Browser('Steady/1')
      await post(user, a, '/login/2')
      const revoked = new Browser('Revoked/1')
      await post(revoked, b, '/login/2')
      const stolen = revoked.copy()
      await post(revoked, b, '/logout')
      const seen = { ok: 0, unavailable: 0, wrong: [] as string[] }
      const control = { running: true }
      const traffic = (async () => {
        while (control.running) {
          const results = await Promise.all([me(user, a), me(user, b), me(stolen, a), me(stolen, b)])
          results.forEach((result, index) => {
            const expected = index < 2 ? 'Bob' : null
            if (result.status === 503) seen.unavailable++
            else if (result.status === 200 && result.user === expected) seen.ok++
            else seen.wrong.push(`${index < 2 ? 'user' : 'stolen'}: ${result.status} ${String(result.user)}`)
          })
        }
      })()
      await sleep(200)
      await redis.stop()
      await sleep(500)
      await redis.start()
      // Until both clients have reconnected.
      for (let index = 0; index < 100 && (await me(user, a)).status !== 200; index++) await sleep(50)
      for (let index = 0; index < 100 && (await me(user, b)).status !== 200; index++) await sleep(50)
      await sleep(200)
      control.running = false
      await traffic
      t.same(seen.wrong, [], 'never anonymous by itself, never a revoked login let in')
      t.ok(seen.unavailable > 0, `the outage was seen (${seen.unavailable} answers 503)`)
      t.ok(seen.ok > 0)
      t.same(await me(user, a), { status: 200, user: 'Bob' }, 'still logged in after the outage')
      t.same(await me(stolen, b), { status: 200, user: null }, 'the revoked login stays revoked')
    })
  })
}
