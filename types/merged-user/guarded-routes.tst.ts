// Type tests of typed guarded routes (SPEC section 14) in an application that
// merged its user type: a guarded route reads the user's own fields with no
// narrowing and no cast; every other route keeps `User | Guest`.
import fastify from 'fastify'
import { Type, type FastifyPluginAsyncTypebox, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import { describe, expect, test } from 'tstyche'
import type { RouteUser } from 'fastify-login'
import type { Guest, User } from './app-types.js'

describe('a guarded route', () => {
  test('reads the user\'s fields in the handler without narrowing', () => {
    const app = fastify()
    app.get('/me', { config: { login: 'required' } }, async (request) => {
      expect(request.user).type.toBe<User>()
      expect(request.user).type.not.toBe<User | Guest>()
      expect(request.user.email).type.toBe<string>()
      return { email: request.user.email }
    })
    app.post('/email', { config: { login: 'fresh' } }, async (request) => {
      expect(request.user).type.toBe<User>()
      return request.user.id
    })
  })

  test('and in the route\'s hooks', () => {
    const app = fastify()
    app.route({
      method: 'GET',
      url: '/settings',
      config: { login: 'fresh' },
      onRequest: async (request) => { expect(request.user).type.toBe<User>() },
      preValidation: async (request) => { expect(request.user).type.toBe<User>() },
      preHandler: async (request) => { expect(request.user.email).type.toBe<string>() },
      onSend: async (request, reply, payload) => {
        expect(request.user).type.toBe<User>()
        return payload
      },
      onResponse: async (request) => { expect(request.user).type.toBe<User>() },
      handler: async (request) => request.user.email
    })
  })

  test('with TypeBox', () => {
    const app = fastify().withTypeProvider<TypeBoxTypeProvider>()
    app.get('/orders/:id', { schema: { params: Type.Object({ id: Type.Number() }) }, config: { login: 'required' } }, async (request) => {
      expect(request.params.id).type.toBe<number>()
      expect(request.user).type.toBe<User>()
      return `${request.user.email} ${request.params.id}`
    })
  })

  test('with json-schema-to-ts', () => {
    const app = fastify().withTypeProvider<JsonSchemaToTsProvider>()
    const body = { type: 'object', properties: { note: { type: 'string' } }, required: ['note'] } as const
    app.post('/notes', { schema: { body }, config: { login: 'required' } }, async (request) => {
      expect(request.body.note).type.toBe<string>()
      expect(request.user).type.toBe<User>()
      return `${request.user.email}: ${request.body.note}`
    })
  })

  test('inside encapsulated plugins', () => {
    const app = fastify()
    app.register(async (child) => {
      child.get('/inside', { config: { login: 'required' } }, async (request) => {
        expect(request.user).type.toBe<User>()
        return request.user.email
      })
    })
    const typebox: FastifyPluginAsyncTypebox = async (child) => {
      child.get('/typed', { schema: { querystring: Type.Object({ q: Type.String() }) }, config: { login: 'fresh' } }, async (request) => {
        expect(request.user).type.toBe<User>()
        return request.user.email + request.query.q
      })
    }
    expect(app.register).type.toBeCallableWith(typebox)
  })

  test('with an explicit route generic, when the config is given as the second type argument', () => {
    const app = fastify()
    app.get<{ Params: { id: string } }>('/items/:id', { config: { login: 'required' } }, async (request) => {
      expect(request.user).type.toBe<User | Guest>()
      return request.params.id
    })
    app.get<{ Params: { id: string } }, { login: 'required' }>('/items/:id', { config: { login: 'required' } }, async (request) => {
      expect(request.user).type.toBe<User>()
      return `${request.user.email} ${request.params.id}`
    })
  })
})

describe('every other route', () => {
  test('keeps the user or the guest, and its fields need narrowing', () => {
    const app = fastify()
    for (const login of ['optional', false, undefined] as const) {
      app.get(`/${String(login)}`, { config: { login } }, async (request) => {
        expect(request.user).type.toBe<User | Guest>()
        expect(request.user).type.not.toBe<User>()
        // @ts-expect-error Property 'email' does not exist on type 'Guest'
        return request.user.email
      })
    }
    app.get('/plain', async (request) => {
      expect(request.user).type.toBe<User | Guest>()
      return request.user.getId()
    })
  })

  test('isAuthenticated() narrows there', () => {
    const app = fastify()
    app.get('/maybe', { config: { login: 'optional' } }, async (request) => {
      if (!request.isAuthenticated()) {
        expect(request.user).type.toBe<User | Guest>()
        return null
      }
      expect(request.user).type.toBe<User>()
      return request.user.email
    })
  })

  test('RouteUser follows the merged types', () => {
    expect<RouteUser<{ login: 'required' }>>().type.toBe<User>()
    expect<RouteUser<{ login: 'optional' }>>().type.toBe<User | Guest>()
    expect<RouteUser>().type.toBe<User | Guest>()
  })
})
