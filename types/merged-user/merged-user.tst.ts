// Type tests of an application that names its user and anonymous user types
// by declaration merging (in ./app-types.ts). Merging changes the whole
// program, so this folder has its own tsconfig.json and is checked apart from
// the other type tests.
import fastify, { type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyLogin, {
  AnonymousUserMixin,
  type AnonymousUser, type FastifyLoginOptions, type LoginUser, type UserEvent
} from 'fastify-login'
import { loginAs } from 'fastify-login/testing'
import { Guest, User } from './app-types.js'

const secret = 'a-secret-of-at-least-thirty-two-characters'
const users = new Map<string, User>()

describe('merged user type', () => {
  test('LoginUser and AnonymousUser follow the merged types', () => {
    expect<LoginUser>().type.toBe<User>()
    expect<AnonymousUser>().type.toBe<Guest>()
  })

  test('request.user is the user or the anonymous user', () => {
    const app = fastify()
    app.get('/', async (request) => {
      expect(request.user).type.toBe<User | Guest>()
      expect(request.user.getId()).type.toBe<string | null>()
      return 'ok'
    })
  })

  test('isAuthenticated() narrows request.user to the user without a cast', () => {
    const app = fastify()
    app.get('/me', async (request) => {
      if (request.isAuthenticated()) {
        expect(request.user).type.toBeAssignableTo<User>()
        expect(request.user.email).type.toBe<string>()
        expect(request.user.id).type.toBe<number>()
        expect(request.user).type.toBe<User>()
        return { email: request.user.email }
      }
      return { email: null }
    })
  })

  test('the user\'s own properties are an error before the check', () => {
    const app = fastify()
    app.get('/me', async (request) => {
      // @ts-expect-error Property 'email' does not exist on type 'Guest'
      return request.user.email
    })
  })

  test('the narrowing works in a hook and keeps the route\'s own types', () => {
    const app = fastify()
    app.addHook('preHandler', async (request) => {
      if (request.isAuthenticated()) expect(request.user.email).type.toBe<string>()
    })
    app.get<{ Querystring: { tab: string } }>('/account', async (request) => {
      if (!request.isAuthenticated()) return 'anonymous'
      expect(request.query.tab).type.toBe<string>()
      return `${request.user.email} ${request.query.tab}`
    })
  })

  test('a function taking the request narrows with the same guard', () => {
    function emailOf (request: FastifyRequest): string | null {
      return request.isAuthenticated() ? request.user.email : null
    }
    expect(emailOf).type.toBe<(request: FastifyRequest) => string | null>()
  })
})

describe('merged user type in options', () => {
  test('loaders return the user type', () => {
    const app = fastify()
    const options: FastifyLoginOptions = {
      secret,
      userLoader: async (id) => users.get(id),
      requestLoader: (request) => users.get(String(request.headers['x-user'])) ?? null,
      anonymousUser: () => new Guest()
    }
    expect(app.register).type.toBeCallableWith(fastifyLogin, options)
    expect(options.userLoader).type.not.toBeAssignableFrom(async (id: string) => ({ id }))
    expect(options.requestLoader).type.not.toBeAssignableFrom(() => ({ email: 'a@example.com' }))
    expect(options.anonymousUser).type.not.toBeAssignableFrom(() => new AnonymousUserMixin())
  })

  test('callbacks on users receive the user type', () => {
    const options: FastifyLoginOptions = {
      secret,
      userLoader: (id) => users.get(id),
      getUserId: (user) => {
        expect(user).type.toBe<User>()
        return user.id
      },
      sessionVersion: (user) => {
        expect(user).type.toBe<User>()
        return user.email
      }
    }
    expect(options.sessionVersion).type.not.toBeAssignableFrom((user: { name: string }) => user.name)
  })
})

describe('merged user type in actions and events', () => {
  test('loginUser takes only the user type', () => {
    const app = fastify()
    app.post('/login', async (request) => {
      expect(request.loginUser(new User(1, 'a@example.com'), { remember: true })).type.toBe<Promise<boolean>>()
      // @ts-expect-error Argument of type '{ id: number; }' is not assignable to parameter of type 'User'
      await request.loginUser({ id: 1 })
      return 'ok'
    })
  })

  test('user events carry the user type', () => {
    const app = fastify()
    app.loginManager.on('userLoggedIn', ({ request, user }) => {
      expect(request).type.toBe<FastifyRequest>()
      expect(user).type.toBe<User>()
      expect(user.email).type.toBe<string>()
    })
    expect<UserEvent['user']>().type.toBe<User>()
  })

  test('loginAs takes only the user type', () => {
    const app = fastify()
    expect(loginAs(app, new User(1, 'a@example.com'))).type.toBe<Promise<string>>()
    expect(loginAs).type.not.toBeCallableWith(app, { id: 1 })
  })
})
