// The login store with session lifetime (SPEC sections 11 and 12): an expired
// session login ends its record unless a remember cookie may restore it, and
// a record that is not remembered lasts idleTimeout (never less) when set.
import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { CookieJar } from './helpers.js'
import { buildStoreApp, useClock } from './store-helpers.js'

const IDLE = 0.3

t.test('an idle session login that was not remembered ends its record: loginRevoked says expired', async (t) => {
  const { app, store } = await buildStoreApp({ login: { idleTimeout: IDLE } })
  t.teardown(() => app.close())
  const reasons: string[] = []
  app.loginManager.on('loginRevoked', ({ reason }) => { reasons.push(reason) })
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  await sleep(IDLE * 1000 + 200)
  t.equal((await jar.inject('/')).json().authenticated, false)
  t.same(reasons, ['expired'])
  t.same(await store.inner.list('1'), [])
})

t.test('an expired remembered login keeps its record: the cookie restores it, not fresh, as the same device', async (t) => {
  const { app, store } = await buildStoreApp({ login: { absoluteTimeout: IDLE } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1?remember=1' })
  const [before] = await store.inner.list('1')
  await sleep(IDLE * 1000 + 200)
  const response = await jar.inject('/')
  t.match(response.json(), { user: 'Ann', fresh: false }, 'restored by the remember cookie')
  const after = await store.inner.list('1')
  t.equal(after.length, 1)
  t.equal(after[0]!.id, before!.id, 'the same login record')
  t.equal(after[0]!.rotation, 1, 'its validator rotated')
  t.same((await jar.inject('/devices')).json().loginId, before!.id)
})

t.test('with idleTimeout, a record that is not remembered expires after it (plus the minute its activity may lag), never before', async (t) => {
  const clock = useClock(t)
  const idleTimeout = 600
  const { app, store } = await buildStoreApp({ login: { idleTimeout } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  const [created] = await store.inner.list('1')
  t.equal(created!.expiresAt - created!.lastSeenAt, idleTimeout * 1000 + 60_000)
  clock.advance(90_000)
  await jar.inject('/')
  const [seen] = await store.inner.list('1')
  t.equal(seen!.expiresAt - seen!.lastSeenAt, idleTimeout * 1000 + 60_000, 'moved along with the activity')
})
