// LoginRecords' memory of the activity writes it tried: bounded, so a
// process that sees many logins does not keep one entry per login forever.
import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { MemoryLoginStore, type LoginRecord } from '../lib/index.js'
import { LoginEventHub } from '../lib/events.js'
import { ACTIVITY_INTERVAL_MS, LoginRecords } from '../lib/login-records.js'
import { resolveOptions } from '../lib/options.js'
import { RememberCodec } from '../lib/remember.js'
import { LOGIN_SECRET } from './helpers.js'

t.test('after 10,000 logins the memory of tried activity writes starts again: a login is then written at most once more', async (t) => {
  const store = new MemoryLoginStore()
  const config = resolveOptions({ secret: LOGIN_SECRET, userLoader: () => null, loginStore: store })
  const records = new LoginRecords(store, config, new RememberCodec(config.secrets), new LoginEventHub())
  const request = { ip: '127.0.0.1', headers: {} } as unknown as FastifyRequest
  const old = Date.now() - ACTIVITY_INTERVAL_MS - 1
  const made: LoginRecord[] = []
  for (let index = 0; index <= 10_000; index++) {
    const record: LoginRecord = {
      id: `login-${String(index).padStart(20, '0')}`,
      userId: String(index % 7),
      createdAt: old,
      lastSeenAt: old,
      expiresAt: Date.now() + 60_000,
      ip: '',
      userAgent: '',
      remembered: false,
      rememberSeconds: 0,
      rotation: 0,
      rotatedAt: 0,
      validatorHash: '',
      versionTag: ''
    }
    await store.create(record)
    made.push(record)
  }
  let writes = 0
  const update = store.update.bind(store)
  store.update = async (...args) => { writes++; return update(...args) }
  for (const record of made) await records.touch(request, record)
  t.equal(writes, 10_001, 'each login once')
  // The same stale reads again: only the logins remembered since the restart are skipped.
  for (const record of made.slice(0, 5)) await records.touch(request, record)
  t.equal(writes, 10_006, 'forgotten after the bound: tried again (and refused by the store\'s compare-and-set)')
  await records.touch(request, made[10_000]!)
  t.equal(writes, 10_006, 'the last one is still remembered')
})
