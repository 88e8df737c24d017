// Type tests of the named guards and the errors of SPEC section 15, in both
// import forms' ES module view.
import fastify, { type FastifyRequest, type preHandlerAsyncHookHandler } from 'fastify'
import fastifyAuth from '@fastify/auth'
import { describe, expect, test } from 'tstyche'
import fastifyLogin, {
  FST_LOGIN_ALREADY_REGISTERED, FST_LOGIN_NOT_AWAITED, FST_LOGIN_NOT_REGISTERED, requireFreshLogin, requireLogin
} from 'fastify-login'

describe('the named guards', () => {
  test('are async preHandler hooks, like app.requireLogin', () => {
    expect(requireLogin).type.toBe<preHandlerAsyncHookHandler>()
    expect(requireFreshLogin).type.toBe<preHandlerAsyncHookHandler>()
  })

  test('fit any route, before the plugin is registered too', () => {
    const app = fastify()
    app.get('/account', { preHandler: requireLogin }, async () => 'account')
    app.get('/settings', { preHandler: [requireLogin, requireFreshLogin] }, async () => 'settings')
    app.route({ method: 'POST', url: '/password', preHandler: requireFreshLogin, handler: async () => 'password' })
    app.addHook('preHandler', requireLogin)
    app.register(fastifyLogin, { secret: 'a-secret-of-at-least-thirty-two-characters', userLoader: async () => null })
    expect(app.get).type.toBeCallableWith('/typed', { preHandler: requireLogin }, async (request: FastifyRequest<{ Querystring: { q: string } }>) => request.query.q)
  })

  test('compose with @fastify/auth', async () => {
    const app = fastify()
    await app.register(fastifyAuth)
    app.get('/either', { preHandler: app.auth([requireLogin, async () => {}]) }, async () => 'either')
  })

  test('are passed, not called', () => {
    expect(requireLogin).type.not.toBeCallableWith()
    expect(requireFreshLogin).type.not.toBeCallableWith('/path')
  })
})

describe('the errors of section 15', () => {
  test('have their codes and status', () => {
    expect(new FST_LOGIN_NOT_REGISTERED().code).type.toBe<'FST_LOGIN_NOT_REGISTERED'>()
    expect(new FST_LOGIN_NOT_REGISTERED().statusCode).type.toBe<500>()
    expect(new FST_LOGIN_ALREADY_REGISTERED().code).type.toBe<'FST_LOGIN_ALREADY_REGISTERED'>()
    expect(new FST_LOGIN_NOT_AWAITED('loginUser', 'loginUser').code).type.toBe<'FST_LOGIN_NOT_AWAITED'>()
  })
})
