// Type tests of a CommonJS application that names its user type by
// declaration merging; `require('fastify-login')` resolves to the CommonJS
// declarations, whose re-exports lead to the same `FastifyLoginTypes`.
import fastify = require('fastify')
import fastifyLogin = require('fastify-login')
import { expect, test } from 'tstyche'

interface Member {
  id: string
  displayName: string
}

declare module 'fastify-login' {
  interface FastifyLoginTypes {
    user: Member
  }
}

const members = new Map<string, Member>()

test('LoginUser follows the merged type', () => {
  expect<fastifyLogin.LoginUser>().type.toBe<Member>()
  expect<fastifyLogin.UserEvent['user']>().type.toBe<Member>()
})

test('request.user is the member after isAuthenticated()', () => {
  const app = fastify()
  app.get('/me', async (request) => {
    expect(request.user).type.toBe<Member | fastifyLogin.AnonymousUser>()
    if (!request.isAuthenticated()) return null
    expect(request.user).type.toBeAssignableTo<Member>()
    return request.user.displayName
  })
})

test('the loader and loginUser take the member type', () => {
  const app = fastify()
  expect(app.register).type.toBeCallableWith(fastifyLogin, { secret: 'x'.repeat(32), userLoader: async (id: string) => members.get(id) })
  expect(app.register).type.not.toBeCallableWith(fastifyLogin, { secret: 'x'.repeat(32), userLoader: async (id: string) => ({ id }) })
  app.post('/login', async (request) => {
    // @ts-expect-error Argument of type '{ id: string; }' is not assignable to parameter of type 'Member'
    return request.loginUser({ id: 'm1' })
  })
})

test('a guarded route gives the member without narrowing; other routes keep the union', () => {
  const app = fastify()
  app.get('/me', { config: { login: 'required' } }, async (request) => {
    expect(request.user).type.toBe<Member>()
    return request.user.displayName
  })
  app.route({
    method: 'POST',
    url: '/name',
    config: { login: 'fresh' },
    preHandler: async (request) => { expect(request.user).type.toBe<Member>() },
    handler: async (request) => request.user.displayName
  })
  app.get('/maybe', { config: { login: 'optional' } }, async (request) => {
    expect(request.user).type.toBe<Member | fastifyLogin.AnonymousUser>()
    expect(request.user).type.not.toBe<Member>()
    return null
  })
  expect<fastifyLogin.RouteUser<{ login: 'fresh' }>>().type.toBe<Member>()
})
