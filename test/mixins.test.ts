// UserMixin and AnonymousUserMixin, and users that use neither.
import t from 'tap'
import { AnonymousUserMixin, UserMixin, type LoginUser } from '../lib/index.js'
import { buildApp, CookieJar } from './helpers.js'

class Member extends UserMixin {
  constructor (id?: string | number) {
    super()
    if (id !== undefined) this.id = id
  }
}

class Other extends UserMixin {
  constructor (override readonly id: string) {
    super()
  }
}

t.test('UserMixin', async (t) => {
  // Flask: UserMixinTestCase.test_default_values
  t.test('is authenticated, active and not anonymous', async (t) => {
    const user = new Member('1')
    t.equal(user.isAuthenticated, true)
    t.equal(user.isActive, true)
    t.equal(user.isAnonymous, false)
  })

  // Flask: test_get_id_from_id_attribute
  t.test('getId() returns a string id as is', async (t) => {
    t.equal(new Member('abc').getId(), 'abc')
  })

  t.test('getId() stringifies a numeric id', async (t) => {
    t.equal(new Member(1).getId(), '1')
    t.equal(new Member(0).getId(), '0')
  })

  // Flask: test_get_id_not_implemented
  t.test('getId() throws a clear error without an id', async (t) => {
    t.throws(() => new Member().getId(), { name: 'TypeError', message: /UserMixin.*`id`/ })
  })

  t.test('getId() throws for an unusable id', async (t) => {
    for (const id of ['', Number.NaN, Number.POSITIVE_INFINITY]) {
      t.throws(() => new Member(id).getId(), TypeError, String(id))
    }
  })

  t.test('getId() follows the id when it changes', async (t) => {
    const user = new Member('1')
    user.id = '2'
    t.equal(user.getId(), '2')
  })

  // Flask: test_equality
  t.test('equals compares ids', async (t) => {
    t.equal(new Member(1).equals(new Member(1)), true)
    t.equal(new Member('1').equals(new Member(1)), true, 'the id as a string')
    t.equal(new Member(1).equals(new Member(2)), false)
    t.equal(new Member('1').equals(new Other('1')), true, 'any two UserMixins')
  })

  t.test('equals is false for anything that is not a UserMixin', async (t) => {
    const user = new Member('1')
    t.equal(user.equals('1'), false)
    t.equal(user.equals({ id: '1', getId: () => '1' }), false)
    t.equal(user.equals(null), false)
    t.equal(user.equals(undefined), false)
  })

  t.test('a subclass can override the properties', async (t) => {
    class Banned extends UserMixin {
      override get isActive (): boolean { return false }
      override getId (): string { return 'custom' }
    }
    const user = new Banned()
    t.equal(user.isActive, false)
    t.equal(user.getId(), 'custom')
  })
})

// Flask: AnonymousUserTestCase.test_values
t.test('AnonymousUserMixin is not authenticated, not active, anonymous, without id', async (t) => {
  const user = new AnonymousUserMixin()
  t.equal(user.isAuthenticated, false)
  t.equal(user.isActive, false)
  t.equal(user.isAnonymous, true)
  t.equal(user.getId(), null)
})

t.test('the default anonymous user is an AnonymousUserMixin', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  app.get('/kind', async (request) => ({ mixin: request.user instanceof AnonymousUserMixin }))
  t.same((await app.inject('/kind')).json(), { mixin: true })
})

t.test('a logged-in UserMixin is the loaded user', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  app.get('/kind', async (request) => ({ mixin: request.user instanceof UserMixin, id: (request.user as { getId (): unknown }).getId() }))
  await jar.inject({ method: 'POST', url: '/login/2' })
  t.same((await jar.inject('/kind')).json(), { mixin: true, id: '2' })
})

t.test('any plain object works as a user', async (t) => {
  const plain = { id: 7, name: 'Plain' }
  const { app } = await buildApp({ login: { userLoader: (id) => (id === '7' ? plain : null) } })
  t.teardown(() => app.close())
  const jar = new CookieJar(app)
  app.post('/login-plain', async (request) => ({ ok: await request.loginUser(plain as LoginUser) }))
  app.get('/plain', async (request) => ({
    authenticated: request.isAuthenticated(),
    fresh: request.loginFresh,
    name: (request.user as { name?: string }).name
  }))
  t.same((await jar.inject({ method: 'POST', url: '/login-plain' })).json(), { ok: true })
  t.same((await jar.inject('/plain')).json(), { authenticated: true, fresh: true, name: 'Plain' })
})

t.test('a plain object with isActive false is refused unless forced', async (t) => {
  const sleeper = { id: 'z', isActive: false }
  const { app } = await buildApp({ login: { userLoader: (id) => (id === 'z' ? sleeper : null) } })
  t.teardown(() => app.close())
  app.post('/login-sleeper', async (request) => ({ ok: await request.loginUser(sleeper) }))
  app.post('/force-sleeper', async (request) => ({ ok: await request.loginUser(sleeper, { force: true }) }))
  t.same((await app.inject({ method: 'POST', url: '/login-sleeper' })).json(), { ok: false })
  t.same((await app.inject({ method: 'POST', url: '/force-sleeper' })).json(), { ok: true })
})

t.test('a plain object anonymous user works', async (t) => {
  const { app } = await buildApp({ login: { anonymousUser: () => ({ isAuthenticated: false, isActive: false, isAnonymous: true, getId: () => null }) } })
  t.teardown(() => app.close())
  app.get('/anon', async (request) => ({ anonymous: (request.user as { isAnonymous?: boolean }).isAnonymous, authenticated: request.isAuthenticated() }))
  t.same((await app.inject('/anon')).json(), { anonymous: true, authenticated: false })
})
