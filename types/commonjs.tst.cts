// Type tests of the CommonJS form: `require('fastify-login')` is the plugin
// itself, with `.default`, `.fastifyLogin` and every named export on it.
import fastify = require('fastify')
import fastifyLogin = require('fastify-login')
import testing = require('fastify-login/testing')
import type * as esm from 'fastify-login' with { 'resolution-mode': 'import' }
import type * as esmTesting from 'fastify-login/testing' with { 'resolution-mode': 'import' }
import { describe, expect, test } from 'tstyche'

const secret = 'a-secret-of-at-least-thirty-two-characters'

describe('require(\'fastify-login\')', () => {
  test('is the plugin and registers with its options', () => {
    const app = fastify()
    expect(app.register).type.toBeCallableWith(fastifyLogin, { secret, userLoader: async () => null })
    // @ts-expect-error Property 'secret' is missing
    app.register(fastifyLogin, { userLoader: async () => null })
  })

  test('has the plugin as .default and .fastifyLogin, the same as the ES module export', () => {
    const app = fastify()
    expect(fastifyLogin.default).type.toBe<typeof esm.default>()
    expect(fastifyLogin.fastifyLogin).type.toBe<typeof esm.fastifyLogin>()
    expect(app.register).type.toBeCallableWith(fastifyLogin.default, { secret, userLoader: async () => null })
    expect(app.register).type.toBeCallableWith(fastifyLogin.fastifyLogin, { secret, requestLoader: async () => null })
  })

  test('has the named values of the ES module', () => {
    expect(new fastifyLogin.UserMixin()).type.toBe<esm.UserMixin>()
    expect(new fastifyLogin.AnonymousUserMixin().getId()).type.toBe<null>()
    expect(fastifyLogin.isSafeRedirectUrl).type.toBe<typeof esm.isSafeRedirectUrl>()
    expect(fastifyLogin.SESSION_KEYS).type.toBe<readonly string[]>()
    expect(fastifyLogin.EVENT_NAMES).type.toBe<typeof esm.EVENT_NAMES>()
    expect(new fastifyLogin.FST_LOGIN_UNAUTHORIZED().code).type.toBe<'FST_LOGIN_UNAUTHORIZED'>()
    expect(fastifyLogin.MIN_SECRET_LENGTH).type.toBe<32>()
  })

  test('names the same types as the ES module', () => {
    expect<fastifyLogin.FastifyLoginOptions>().type.toBe<esm.FastifyLoginOptions>()
    expect<fastifyLogin.LoginUser>().type.toBe<esm.LoginUser>()
    expect<fastifyLogin.AnonymousUser>().type.toBe<esm.AnonymousUser>()
    expect<fastifyLogin.LoginUserOptions>().type.toBe<esm.LoginUserOptions>()
    expect<fastifyLogin.LoginManager>().type.toBe<esm.LoginManager>()
    expect<fastifyLogin.LoginEvents>().type.toBe<esm.LoginEvents>()
    expect<fastifyLogin.LoginEventListener<'userLoggedIn'>>().type.toBe<esm.LoginEventListener<'userLoggedIn'>>()
    expect<fastifyLogin.RouteLoginMode>().type.toBe<esm.RouteLoginMode>()
    expect<fastifyLogin.GuardedLoginMode>().type.toBe<esm.GuardedLoginMode>()
    expect<fastifyLogin.RouteUser<{ login: 'required' }>>().type.toBe<esm.RouteUser<{ login: 'required' }>>()
    expect<fastifyLogin.UserMixin>().type.toBe<esm.UserMixin>()
  })

  test('a class can extend UserMixin from the CommonJS export', () => {
    class Member extends fastifyLogin.UserMixin {
      email = 'member@example.com'
    }
    expect(new Member().getId()).type.toBe<string>()
    expect(new Member()).type.toBeAssignableTo<fastifyLogin.UserLike>()
  })

  test('adds the request and instance decorators', () => {
    const app = fastify()
    app.get('/', { preHandler: app.requireLogin, config: { login: 'optional' } }, async (request) => {
      expect(request.user).type.toBe<fastifyLogin.LoginUser | fastifyLogin.AnonymousUser>()
      expect(request.loginUser({ id: 1 }, { remember: true })).type.toBe<Promise<boolean>>()
      expect(request.logoutUser()).type.toBe<Promise<boolean>>()
      return request.safeNextUrl()
    })
    expect(app.loginManager).type.toBe<fastifyLogin.LoginManager>()
  })

  test('types request.user on guarded routes', () => {
    const app = fastify()
    app.get('/account', { config: { login: 'required' } }, async (request) => {
      expect(request.user).type.toBe<fastifyLogin.LoginUser>()
      return 'ok'
    })
  })
})

describe('require(\'fastify-login/testing\')', () => {
  test('has loginAs resolving the Cookie header value', () => {
    const app = fastify()
    expect(testing.loginAs).type.toBe<typeof esmTesting.loginAs>()
    expect(testing.loginAs(app, { id: 1 }, { fresh: false })).type.toBe<Promise<string>>()
  })
})

describe('the named guards from require(\'fastify-login\')', () => {
  test('are the ES module\'s, as async preHandler hooks', () => {
    expect(fastifyLogin.requireLogin).type.toBe<typeof esm.requireLogin>()
    expect(fastifyLogin.requireFreshLogin).type.toBe<fastify.preHandlerAsyncHookHandler>()
    const app = fastify()
    app.get('/account', { preHandler: [fastifyLogin.requireLogin, fastifyLogin.requireFreshLogin] }, async () => 'account')
  })
})
