// Type tests of SPEC section 14: on a route whose `config.login` is 'required'
// or 'fresh', `request.user` is the user type; elsewhere it stays the user or
// the anonymous user. No user type is merged here, so the user type is
// `DefaultUser`; ./merged-user has the same promise with an application's type.
// Every `toBe` is exact: a union where the user belongs fails, and so does the
// user where the union belongs.
import fastify, {
  type FastifyReply, type FastifyRequest, type FastifySchema, type FastifyTypeProviderDefault, type RawRequestDefaultExpression,
  type RawServerDefault, type RouteGenericInterface
} from 'fastify'
import fp from 'fastify-plugin'
import { Type, type FastifyPluginAsyncTypebox, type TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { FastifyPluginAsyncJsonSchemaToTs, JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts'
import { describe, expect, test } from 'tstyche'
import type {
  AnonymousUser, AnonymousUserShape, DefaultUser, GuardedLoginMode, LoginUser, RouteLoginMode, RouteUser
} from 'fastify-login'

type Either = LoginUser | AnonymousUser

// A request of a route declared with `config: { login: 'required' }`, spelled out.
type GuardedRequest = FastifyRequest<
  RouteGenericInterface, RawServerDefault, RawRequestDefaultExpression, FastifySchema, FastifyTypeProviderDefault, { login: 'required' }
>

const itemSchema = {
  type: 'object',
  properties: { id: { type: 'string' } },
  required: ['id']
} as const

describe('config.login on shorthand routes', () => {
  test('\'required\' and \'fresh\' give the user type in the handler, without narrowing', () => {
    const app = fastify()
    app.get('/account', { config: { login: 'required' } }, async (request) => {
      expect(request.user).type.toBe<LoginUser>()
      expect(request.user).type.not.toBe<Either>()
      return 'ok'
    })
    app.post('/password', { config: { login: 'fresh' } }, async (request) => {
      expect(request.user).type.toBe<LoginUser>()
      expect(request.user).type.not.toBe<Either>()
      return 'ok'
    })
  })

  test('every shorthand method follows config.login', () => {
    const app = fastify()
    const guarded = { config: { login: 'required' } } as const
    app.put('/a', guarded, async (request) => { expect(request.user).type.toBe<LoginUser>() })
    app.patch('/a', guarded, async (request) => { expect(request.user).type.toBe<LoginUser>() })
    app.delete('/a', guarded, async (request) => { expect(request.user).type.toBe<LoginUser>() })
    app.head('/a', guarded, async (request) => { expect(request.user).type.toBe<LoginUser>() })
    app.all('/b', guarded, async (request) => { expect(request.user).type.toBe<LoginUser>() })
    app.get('/c', { ...guarded, handler: async (request) => { expect(request.user).type.toBe<LoginUser>() } })
  })

  test('\'optional\', false and no config.login give the user or the anonymous user', () => {
    const app = fastify()
    app.get('/optional', { config: { login: 'optional' } }, async (request) => {
      expect(request.user).type.toBe<Either>()
      expect(request.user).type.not.toBe<LoginUser>()
      return 'ok'
    })
    app.get('/health', { config: { login: false } }, async (request) => {
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
    app.get('/other-config', { config: {} }, async (request) => {
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
    app.get('/no-options', async (request) => {
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
  })

  test('a mode known only as RouteLoginMode stays the union; a config declared apart keeps its literal with `as const`', () => {
    const app = fastify()
    const mode = 'required' as RouteLoginMode
    app.get('/mode', { config: { login: mode } }, async (request) => {
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
    const widened = { login: 'required' }
    expect(app.get).type.not.toBeCallableWith('/widened', { config: widened }, async () => 'ok')
    const kept = { login: 'required' } as const
    app.get('/kept', { config: kept }, async (request) => {
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
    const either = 'fresh' as GuardedLoginMode
    app.get('/either', { config: { login: either } }, async (request) => {
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
  })

  test('config.login sits beside other route config', () => {
    const app = fastify()
    app.get('/rate', { config: { login: 'required', rateLimit: { max: 5 } } }, async (request) => {
      expect(request.user).type.toBe<LoginUser>()
      expect(request.routeOptions.config.login).type.toBe<'required'>()
      return 'ok'
    })
  })
})

describe('config.login on app.route', () => {
  test('the handler and every route hook of a guarded route see the user type', () => {
    const app = fastify()
    app.route({
      method: ['GET', 'POST'],
      url: '/settings',
      config: { login: 'fresh' },
      onRequest: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      preParsing: async (request, reply, payload) => {
        expect(request.user).type.toBe<LoginUser>()
        return payload
      },
      preValidation: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      preHandler: [
        async (request) => { expect(request.user).type.toBe<LoginUser>() },
        (request, reply, done) => {
          expect(request.user).type.toBe<LoginUser>()
          done()
        }
      ],
      preSerialization: async (request, reply, payload) => {
        expect(request.user).type.toBe<LoginUser>()
        return payload
      },
      onSend: async (request, reply, payload) => {
        expect(request.user).type.toBe<LoginUser>()
        return payload
      },
      onResponse: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      onError: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      onTimeout: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      onRequestAbort: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      errorHandler: (error, request, reply) => {
        expect(request.user).type.toBe<LoginUser>()
        reply.send(error)
      },
      handler: async (request) => {
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      }
    })
  })

  test('the hooks of a route without a guard see the user or the anonymous user', () => {
    const app = fastify()
    app.route({
      method: 'GET',
      url: '/',
      config: { login: 'optional' },
      onRequest: async (request) => { expect(request.user).type.toBe<Either>() },
      preHandler: async (request) => { expect(request.user).type.toBe<Either>() },
      onSend: async (request, reply, payload) => {
        expect(request.user).type.toBe<Either>()
        return payload
      },
      handler: async (request) => {
        expect(request.user).type.toBe<Either>()
        return 'ok'
      }
    })
    app.route({
      method: 'GET',
      url: '/plain',
      handler: async (request) => {
        expect(request.user).type.toBe<Either>()
        return 'ok'
      }
    })
  })

  test('the shorthand options take the same route hooks', () => {
    const app = fastify()
    app.get('/hooks', {
      config: { login: 'required' },
      onRequest: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      preHandler: async (request) => { expect(request.user).type.toBe<LoginUser>() }
    }, async (request) => {
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
  })

  test('an invalid mode is still an error', () => {
    const app = fastify()
    // @ts-expect-error Type '{ login: string; }' is not assignable to type
    app.route({ method: 'GET', url: '/x', config: { login: 'sometimes' }, handler: async () => 'ok' })
  })
})

describe('route generics', () => {
  test('with an explicit route generic, config.login is not inferred: the union stays, the route types hold', () => {
    const app = fastify()
    app.get<{ Params: { id: string } }>('/items/:id', { config: { login: 'required' } }, async (request) => {
      expect(request.params.id).type.toBe<string>()
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
  })

  test('giving the route config as the second type argument types the user', () => {
    const app = fastify()
    app.get<{ Params: { id: string } }, { login: 'required' }>('/items/:id', { config: { login: 'required' } }, async (request) => {
      expect(request.params.id).type.toBe<string>()
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
    app.route<{ Body: { name: string } }, { login: 'fresh' }>({
      method: 'POST',
      url: '/items',
      config: { login: 'fresh' },
      handler: async (request) => {
        expect(request.body.name).type.toBe<string>()
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      }
    })
  })

  test('a type argument that contradicts config.login is an error', () => {
    const app = fastify()
    expect(app.get<{ Params: { id: string } }, { login: 'required' }>)
      .type.not.toBeCallableWith('/items/:id', { config: { login: 'optional' as const } }, async () => 'ok')
  })
})

describe('type providers', () => {
  test('TypeBox: the schema types the request and config.login the user', () => {
    const app = fastify().withTypeProvider<TypeBoxTypeProvider>()
    const params = Type.Object({ id: Type.String() })
    app.get('/items/:id', { schema: { params }, config: { login: 'required' } }, async (request) => {
      expect(request.params.id).type.toBe<string>()
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
    app.route({
      method: 'PUT',
      url: '/items/:id',
      schema: { params, body: Type.Object({ name: Type.String() }) },
      config: { login: 'fresh' },
      preHandler: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      handler: async (request) => {
        expect(request.body.name).type.toBe<string>()
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      }
    })
    app.get('/items', { schema: { querystring: Type.Object({ q: Type.String() }) } }, async (request) => {
      expect(request.query.q).type.toBe<string>()
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
  })

  test('json-schema-to-ts: the schema types the request and config.login the user', () => {
    const app = fastify().withTypeProvider<JsonSchemaToTsProvider>()
    app.post('/items', { schema: { body: itemSchema }, config: { login: 'required' } }, async (request) => {
      expect(request.body.id).type.toBe<string>()
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
    app.route({
      method: 'POST',
      url: '/items/check',
      schema: { body: itemSchema },
      config: { login: 'fresh' },
      onRequest: async (request) => { expect(request.user).type.toBe<LoginUser>() },
      handler: async (request) => {
        expect(request.body.id).type.toBe<string>()
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      }
    })
    app.post('/items/preview', { schema: { body: itemSchema }, config: { login: 'optional' } }, async (request) => {
      expect(request.body.id).type.toBe<string>()
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
  })
})

describe('encapsulated plugins', () => {
  test('routes of a plugin follow config.login', () => {
    const app = fastify()
    app.register(async (child) => {
      child.get('/inside', { config: { login: 'required' } }, async (request) => {
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      })
      child.get('/inside/open', async (request) => {
        expect(request.user).type.toBe<Either>()
        return 'ok'
      })
    }, { prefix: '/plugin' })
  })

  test('a plugin wrapped with fastify-plugin too', () => {
    const app = fastify()
    app.register(fp(async (child) => {
      child.route({
        method: 'GET',
        url: '/wrapped',
        config: { login: 'fresh' },
        handler: async (request) => {
          expect(request.user).type.toBe<LoginUser>()
          return 'ok'
        }
      })
    }))
  })

  test('a TypeBox plugin', () => {
    const plugin: FastifyPluginAsyncTypebox = async (child) => {
      child.get('/items/:id', { schema: { params: Type.Object({ id: Type.String() }) }, config: { login: 'required' } }, async (request) => {
        expect(request.params.id).type.toBe<string>()
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      })
      child.get('/items', async (request) => {
        expect(request.user).type.toBe<Either>()
        return 'ok'
      })
    }
    expect(fastify().register).type.toBeCallableWith(plugin)
  })

  test('a json-schema-to-ts plugin', () => {
    const plugin: FastifyPluginAsyncJsonSchemaToTs = async (child) => {
      child.post('/items', { schema: { body: itemSchema }, config: { login: 'fresh' } }, async (request) => {
        expect(request.body.id).type.toBe<string>()
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      })
    }
    expect(fastify().register).type.toBeCallableWith(plugin)
  })

  test('a plugin given a type provider inside', () => {
    const app = fastify()
    app.register(async (child) => {
      const typed = child.withTypeProvider<TypeBoxTypeProvider>()
      typed.get('/typed', { schema: { querystring: Type.Object({ q: Type.String() }) }, config: { login: 'required' } }, async (request) => {
        expect(request.query.q).type.toBe<string>()
        expect(request.user).type.toBe<LoginUser>()
        return 'ok'
      })
    })
  })
})

describe('isAuthenticated()', () => {
  test('narrows the union to the user type; the other branch keeps the request', () => {
    const app = fastify()
    app.get('/', async (request) => {
      if (request.isAuthenticated()) {
        expect(request.user).type.toBe<LoginUser>()
        return 'user'
      }
      expect(request.user).type.toBe<Either>()
      return 'anonymous'
    })
  })

  test('on a guarded route there is nothing to narrow: the other branch is never', () => {
    const app = fastify()
    app.get('/account', { config: { login: 'required' } }, async (request, reply) => {
      if (!request.isAuthenticated()) {
        expect(request).type.toBe<never>()
        return reply.code(401).send()
      }
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
  })
})

describe('where the union stays', () => {
  test('instance hooks run for every route', () => {
    const app = fastify()
    app.addHook('preHandler', async (request) => { expect(request.user).type.toBe<Either>() })
    app.addHook('onSend', async (request, reply, payload) => {
      expect(request.user).type.toBe<Either>()
      return payload
    })
  })

  test('a guard in preHandler is invisible to the types: use config.login for a typed user', () => {
    const app = fastify()
    app.get('/account', { preHandler: app.requireLogin }, async (request) => {
      expect(request.user).type.toBe<Either>()
      return 'ok'
    })
  })

  test('reply.request does not carry the route config in Fastify\'s types', () => {
    const app = fastify()
    app.get('/account', { config: { login: 'required' } }, async (request, reply) => {
      expect(reply.request.user).type.toBe<Either>()
      return 'ok'
    })
  })

  test('a guarded request goes wherever a request goes, not the other way round', () => {
    const app = fastify()
    const nameOf = (request: FastifyRequest): string => String(request.id)
    app.get('/account', { config: { login: 'required' } }, async (request) => nameOf(request))
    expect<FastifyRequest>().type.toBeAssignableFrom<GuardedRequest>()
    expect<GuardedRequest>().type.not.toBeAssignableFrom<FastifyRequest>()
    expect<GuardedRequest['user']>().type.toBe<LoginUser>()
  })

  test('a handler written for guarded requests does not fit a route whose config says otherwise', () => {
    const app = fastify()
    const account = async (request: GuardedRequest, reply: FastifyReply): Promise<string> => String(request.user)
    expect(app.get).type.toBeCallableWith('/account', { config: { login: 'required' } }, account)
    expect(app.get).type.not.toBeCallableWith('/account', { config: { login: 'optional' } }, account)
  })
})

// These hold in the types but not at run time; the README documents them.
describe('what the types cannot see', () => {
  test('a guarded route that accepts an exempt method is typed as guarded (OPTIONS passes every guard by default)', () => {
    const app = fastify()
    app.options('/account', { config: { login: 'required' } }, async (request) => {
      expect(request.user).type.toBe<LoginUser>()
      return 'ok'
    })
  })

  test('a config given only as a type argument, or through the handler\'s own request type, needs no config.login', () => {
    const app = fastify()
    const account = async (request: GuardedRequest): Promise<string> => String(request.user)
    expect(app.get).type.toBeCallableWith('/open', account)
    expect(app.get<RouteGenericInterface, { login: 'required' }>).type.toBeCallableWith('/open', async () => 'ok')
  })
})

describe('RouteUser', () => {
  test('is the user type for guarded configs and the union for the rest', () => {
    expect<RouteUser<{ login: 'required' }>>().type.toBe<LoginUser>()
    expect<RouteUser<{ login: 'fresh', other: number }>>().type.toBe<LoginUser>()
    expect<RouteUser<{ login: GuardedLoginMode }>>().type.toBe<LoginUser>()
    expect<RouteUser<{ login: 'optional' }>>().type.toBe<Either>()
    expect<RouteUser<{ login: false }>>().type.toBe<Either>()
    expect<RouteUser<{ login?: 'required' }>>().type.toBe<Either>()
    expect<RouteUser<{ login: RouteLoginMode }>>().type.toBe<Either>()
    expect<RouteUser<{ login: 'required' } | { login: 'optional' }>>().type.toBe<Either>()
    expect<RouteUser<unknown>>().type.toBe<Either>()
    expect<RouteUser>().type.toBe<Either>()
    expect<GuardedLoginMode>().type.toBe<'required' | 'fresh'>()
  })

  test('counts an unknown (any) or impossible (never) config as unguarded', () => {
    expect<RouteUser<any>>().type.toBe<Either>()
    expect<RouteUser<never>>().type.toBe<Either>()
  })
})

describe('without a merged user type', () => {
  test('a guarded route gives DefaultUser: any object but a promise, read with `in` checks', () => {
    const app = fastify()
    app.get('/account', { config: { login: 'required' } }, async (request) => {
      expect(request.user).type.toBe<DefaultUser>()
      expect(request.user).type.not.toBeAssignableTo<AnonymousUserShape>()
      // @ts-expect-error Property 'name' does not exist on type 'DefaultUser'
      return request.user.name
    })
    app.get('/name', { config: { login: 'required' } }, async (request) => {
      const name = 'name' in request.user ? request.user.name : undefined
      expect(name).type.toBe<unknown>()
      return String(name)
    })
  })
})
