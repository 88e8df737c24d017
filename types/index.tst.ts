// Type tests of the ES module surface, with no user type merged: the plugin,
// its options, the request and instance decorators, route config, events and
// the named exports.
import fastify, {
  type FastifyContextConfig, type FastifyError, type FastifyPluginCallback, type FastifyReply, type FastifyRequest, type preHandlerAsyncHookHandler
} from 'fastify'
import { describe, expect, test } from 'tstyche'
import fastifyLogin, {
  AnonymousUserMixin, EVENT_NAMES, FST_LOGIN_INVALID_DURATION, FST_LOGIN_INVALID_OPTION, FST_LOGIN_INVALID_USER_ID, FST_LOGIN_LOADER_FAILED,
  FST_LOGIN_MISSING_COOKIE, FST_LOGIN_MISSING_LOADER, FST_LOGIN_MISSING_SECRET, FST_LOGIN_MISSING_SESSION,
  FST_LOGIN_NEEDS_REFRESH, FST_LOGIN_NO_SESSION, FST_LOGIN_UNAUTHORIZED, SESSION_KEYS, UserMixin,
  fastifyLogin as namedFastifyLogin, isSafeRedirectUrl,
  type AnonymousUser, type AnonymousUserShape, type DefaultUser, type FastifyLoginOptions, type LoginEventName,
  type LoginEvents, type LoginManager, type LoginUser, type LoginUserOptions, type RequestEvent,
  type ResolvedLoginOptions, type RouteLoginMode, type SafeRedirectOptions, type SessionProtection, type UserEvent, type UserLike
} from 'fastify-login'

const secret = 'a-secret-of-at-least-thirty-two-characters'

// A user type the application did not merge: an interface, so it has no index signature.
interface DbUser {
  id: number
  name: string
}

class Account extends UserMixin {
  name = 'account'
}

describe('plugin', () => {
  test('the default and the named export are the same plugin callback', () => {
    expect(fastifyLogin).type.toBe<FastifyPluginCallback<FastifyLoginOptions>>()
    expect(namedFastifyLogin).type.toBe(fastifyLogin)
  })

  test('registers with a secret and a user loader', () => {
    const app = fastify()
    expect(app.register).type.toBeCallableWith(fastifyLogin, { secret, userLoader: async () => null })
    expect(app.register).type.toBeCallableWith(fastifyLogin, { secret: [secret, 'an-older-secret'], requestLoader: () => undefined })
  })

  test('registering without a secret is an error', () => {
    const app = fastify()
    // @ts-expect-error Property 'secret' is missing
    app.register(fastifyLogin, { userLoader: async () => null })
  })

  test('registering with an invalid option value is an error', () => {
    const app = fastify()
    // @ts-expect-error Type '"medium"' is not assignable to type 'SessionProtection | undefined'
    app.register(fastifyLogin, { secret, userLoader: async () => null, sessionProtection: 'medium' })
    // @ts-expect-error Type 'true' has no properties in common with type 'RememberCookieOptions'
    app.register(fastifyLogin, { secret, userLoader: async () => null, remember: true })
    // @ts-expect-error Type 'number' is not assignable to type 'string | readonly string[]'
    app.register(fastifyLogin, { secret: 42, userLoader: async () => null })
  })
})

describe('FastifyLoginOptions', () => {
  test('only secret is required', () => {
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string }>()
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: readonly string[] }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ userLoader: () => null }>()
  })

  test('userLoader receives the id and the request and may return a user, null or undefined', () => {
    const options: FastifyLoginOptions = {
      secret,
      userLoader (id, request) {
        expect(id).type.toBe<string>()
        expect(request).type.toBe<FastifyRequest>()
        return null
      }
    }
    expect(options.userLoader).type.toBeAssignableFrom(async (id: string) => (id === '1' ? { id: 1 } : undefined))
    expect(options.userLoader).type.toBeAssignableFrom((id: string) => ({ id }))
    expect(options.userLoader).type.not.toBeAssignableFrom(() => 'a user id')
    expect(options.userLoader).type.not.toBeAssignableFrom(async () => 'a user id')
  })

  test('requestLoader receives only the request', () => {
    const options: FastifyLoginOptions = {
      secret,
      requestLoader (request) {
        expect(request).type.toBe<FastifyRequest>()
        return request.headers['x-api-key'] === undefined ? null : { id: 'api' }
      }
    }
    expect(options.requestLoader).type.not.toBeAssignableFrom((request: FastifyRequest) => request.id)
  })

  test('callbacks on users and requests have precise parameter and return types', () => {
    const options: FastifyLoginOptions = {
      secret,
      getUserId (user) {
        expect(user).type.toBe<DefaultUser>()
        return 'id' in user ? user.id : undefined
      },
      sessionVersion (user) {
        expect(user).type.toBe<LoginUser>()
        return 'passwordChangedAt' in user ? String(user.passwordChangedAt) : ''
      },
      anonymousUser (request) {
        expect(request).type.toBe<FastifyRequest>()
        return new AnonymousUserMixin()
      },
      localize (message, request) {
        expect(request).type.toBe<FastifyRequest>()
        return message.toUpperCase()
      },
      unauthorizedHandler (request, reply) {
        expect(request).type.toBe<FastifyRequest>()
        expect(reply).type.toBe<FastifyReply>()
        return reply.redirect('/login')
      },
      sessionIdentifier: (request) => request.ip
    }
    expect(options.sessionVersion).type.not.toBeAssignableFrom((user: LoginUser) => user !== null)
    expect(options.sessionIdentifier).type.not.toBeAssignableFrom(() => 42)
  })

  test('views are paths or functions of the request', () => {
    expect<FastifyLoginOptions['loginView']>().type.toBe<string | ((request: FastifyRequest) => string | null | undefined) | undefined>()
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string, loginView: string, refreshView: (request: FastifyRequest) => string }>()
    // No view for some requests: they get the 401 (Flask-Login's blueprint_login_views without an entry).
    const views = new Map([['/admin', '/admin/login']])
    expect<FastifyLoginOptions>().type.toBeAssignableFrom({ secret, loginView: (request: FastifyRequest) => views.get(request.url) })
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string, refreshView: () => null }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, loginView: () => number }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, loginView: () => false }>()
  })

  test('flashed messages are strings or false', () => {
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string, loginMessage: false, needsRefreshMessage: 'Log in again' }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, loginMessage: true }>()
  })

  test('sessionProtection is basic, strong or false', () => {
    expect<SessionProtection>().type.toBe<'basic' | 'strong' | false>()
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string, sessionProtection: 'strong' }>()
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string, sessionProtection: false }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, sessionProtection: 'medium' }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, sessionProtection: true }>()
  })

  test('remember takes the cookie settings', () => {
    const options: FastifyLoginOptions = {
      secret,
      remember: {
        cookieName: 'remember',
        duration: 14 * 24 * 3600,
        domain: 'example.com',
        path: '/',
        secure: 'auto',
        httpOnly: true,
        sameSite: 'strict',
        refreshEachRequest: true
      }
    }
    expect(options.remember).type.toBe<FastifyLoginOptions['remember']>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, remember: { sameSite: 'sometimes' } }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, remember: { duration: '14d' } }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, remember: { secure: 'always' } }>()
  })

  test('the remaining options have their documented types', () => {
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{
      secret: string
      useSessionForNext: boolean
      nextField: string
      exemptMethods: readonly string[]
      forceHostForRedirects: string
      freshMaxAge: number
      regenerateSession: boolean
      loginRequiredByDefault: boolean
      loginMessageCategory: string
      needsRefreshMessageCategory: string
      dropOnLogin: readonly string[]
    }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, freshMaxAge: '1h' }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, dropOnLogin: '_csrf' }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, exemptMethods: 'OPTIONS' }>()
  })
})

describe('request decorators without a merged user type', () => {
  test('request.user is the fallback user or the anonymous user', () => {
    const app = fastify()
    app.get('/', async (request) => {
      expect(request.user).type.toBe<LoginUser | AnonymousUser>()
      expect(request.user).type.toBe<DefaultUser | AnonymousUserShape>()
      // @ts-expect-error Property 'email' does not exist on type 'DefaultUser | AnonymousUserShape'
      request.user.email = 'a user field needs a merged user type'
      return 'ok'
    })
  })

  test('the fallback user is any object but a promise', () => {
    expect<LoginUser>().type.toBe<DefaultUser>()
    expect<DefaultUser>().type.toBeAssignableFrom({ id: 1, name: 'Ann' })
    expect<DefaultUser>().type.not.toBeAssignableFrom(Promise.resolve({ id: 1 }))
  })

  test('isAuthenticated() returns a boolean', () => {
    const app = fastify()
    app.get('/', async (request) => {
      expect(request.isAuthenticated()).type.toBe<boolean>()
      return 'ok'
    })
  })

  test('loginUser takes a user and the login options and resolves a boolean', () => {
    const app = fastify()
    app.post('/login', async (request) => {
      expect(request.loginUser({ id: 1 })).type.toBe<Promise<boolean>>()
      expect(request.loginUser({ id: 1 }, { remember: true, duration: 3600, force: false, fresh: true })).type.toBe<Promise<boolean>>()
      expect(request.loginUser).type.not.toBeCallableWith()
      expect(request.loginUser).type.not.toBeCallableWith({ id: 1 }, { remember: 'yes' })
      expect(request.loginUser).type.not.toBeCallableWith({ id: 1 }, { duration: '1d' })
      return 'ok'
    })
  })

  test('loginUser options reject unknown keys', () => {
    const app = fastify()
    app.post('/login', async (request) => {
      // @ts-expect-error 'rememberMe' does not exist in type 'LoginUserOptions'
      await request.loginUser({ id: 1 }, { rememberMe: true })
      return 'ok'
    })
    expect<LoginUserOptions>().type.toBe<{ remember?: boolean, duration?: number, force?: boolean, fresh?: boolean }>()
  })

  test('loginUser accepts any object as a user when no user type is merged', () => {
    const app = fastify()
    app.post('/login', async (request) => {
      const dbUser: DbUser = { id: 1, name: 'ada' }
      expect(request.loginUser).type.toBeCallableWith({ id: 'u1', name: 'ada' })
      expect(request.loginUser).type.toBeCallableWith(dbUser)
      expect(request.loginUser).type.toBeCallableWith(new Account())
      expect(request.loginUser).type.not.toBeCallableWith('u1')
      expect(request.loginUser).type.not.toBeCallableWith(null)
      expect(request.loginUser).type.not.toBeCallableWith(Promise.resolve({ id: 'u1' }))
      return 'ok'
    })
  })

  test('logoutUser, confirmLogin, loginFresh, loginRemembered and safeNextUrl', () => {
    const app = fastify()
    app.post('/logout', async (request) => {
      expect(request.logoutUser()).type.toBe<Promise<boolean>>()
      expect(request.confirmLogin()).type.toBe<Promise<void>>()
      expect(request.loginFresh).type.toBe<boolean>()
      expect(request.loginRemembered).type.toBe<boolean>()
      expect(request.safeNextUrl()).type.toBe<string>()
      expect(request.safeNextUrl('/home')).type.toBe<string>()
      expect(request.safeNextUrl).type.not.toBeCallableWith(404)
      return 'ok'
    })
  })

  test('loginFresh and loginRemembered are read-only', () => {
    const app = fastify()
    app.get('/', async (request) => {
      // @ts-expect-error Cannot assign to 'loginFresh' because it is a read-only property
      request.loginFresh = true
      // @ts-expect-error Cannot assign to 'loginRemembered' because it is a read-only property
      request.loginRemembered = false
      return 'ok'
    })
  })
})

describe('guards and route config', () => {
  test('the guards are async preHandler hooks', () => {
    const app = fastify()
    expect(app.requireLogin).type.toBe<preHandlerAsyncHookHandler>()
    expect(app.requireFreshLogin).type.toBe<preHandlerAsyncHookHandler>()
  })

  test('the guards fit preHandler as a route option, in an array and as a hook', () => {
    const app = fastify()
    app.get('/account', { preHandler: app.requireLogin }, async () => 'account')
    app.get('/settings', { preHandler: [app.requireLogin, app.requireFreshLogin] }, async () => 'settings')
    app.route({ method: 'POST', url: '/password', preHandler: app.requireFreshLogin, handler: async () => 'password' })
    app.addHook('preHandler', app.requireLogin)
    expect(app.get).type.toBeCallableWith('/typed', { preHandler: app.requireLogin }, async (request: FastifyRequest<{ Querystring: { q: string } }>) => request.query.q)
  })

  test('config.login takes the four route modes', () => {
    const app = fastify()
    expect<RouteLoginMode>().type.toBe<'required' | 'fresh' | 'optional' | false>()
    app.get('/required', { config: { login: 'required' } }, async () => 'ok')
    app.get('/fresh', { config: { login: 'fresh' } }, async () => 'ok')
    app.get('/optional', { config: { login: 'optional' } }, async () => 'ok')
    app.get('/health', { config: { login: false } }, async () => 'ok')
    app.route({ method: 'GET', url: '/route', config: { login: 'required' }, handler: async () => 'ok' })
  })

  test('an invalid config.login is an error', () => {
    const app = fastify()
    expect<FastifyContextConfig['login']>().type.toBe<RouteLoginMode | undefined>()
    // @ts-expect-error Type '{ login: string; }' is not assignable to type
    app.get('/sometimes', { config: { login: 'sometimes' } }, async () => 'ok')
    // @ts-expect-error Type '{ login: true; }' is not assignable to type
    app.get('/true', { config: { login: true } }, async () => 'ok')
  })
})

describe('app.loginManager', () => {
  test('is a LoginManager with the resolved options', () => {
    const app = fastify()
    expect(app.loginManager).type.toBe<LoginManager>()
    expect(app.loginManager.options).type.toBe<ResolvedLoginOptions>()
    expect(app.loginManager.options.sessionProtection).type.toBe<SessionProtection>()
    expect(app.loginManager.options.remember.duration).type.toBe<number>()
    expect(app.loginManager.options.remember.domain).type.toBe<string | undefined>()
    expect(app.loginManager.options.dropOnLogin).type.toBe<readonly string[]>()
    expect(app.loginManager.options).type.not.toHaveProperty('secret')
  })

  test('the resolved options are read-only', () => {
    const app = fastify()
    // @ts-expect-error Cannot assign to 'freshMaxAge' because it is a read-only property
    app.loginManager.options.freshMaxAge = 60
  })

  test('user events pass the request and the user', () => {
    const app = fastify()
    app.loginManager.on('userLoggedIn', ({ request, user }) => {
      expect(request).type.toBe<FastifyRequest>()
      expect(user).type.toBe<LoginUser>()
    })
    app.loginManager.once('userLoadedFromCookie', (payload) => {
      expect(payload).type.toBe<UserEvent>()
    })
    expect<LoginEvents['userLoggedOut']>().type.toBe<UserEvent>()
    expect<LoginEvents['userLoadedFromRequest']>().type.toBe<UserEvent>()
    expect<LoginEvents['userLoginConfirmed']>().type.toBe<UserEvent>()
  })

  test('request events pass only the request', () => {
    const app = fastify()
    app.loginManager.on('userUnauthorized', (payload) => {
      expect(payload).type.toBe<RequestEvent>()
      expect(payload).type.not.toHaveProperty('user')
    })
    expect<LoginEvents['userNeedsRefresh']>().type.toBe<RequestEvent>()
    expect<LoginEvents['userAccessed']>().type.toBe<RequestEvent>()
    expect<LoginEvents['sessionProtected']>().type.toBe<RequestEvent>()
  })

  test('on, once and off chain and know every event name', () => {
    const app = fastify()
    const listener = ({ user }: UserEvent): void => { expect(user).type.toBe<LoginUser>() }
    expect(app.loginManager.on('userLoggedIn', listener)).type.toBe<LoginManager>()
    expect(app.loginManager.off('userLoggedIn', listener)).type.toBe<LoginManager>()
    expect(app.loginManager.once('sessionProtected', () => {})).type.toBe<LoginManager>()
    expect<LoginEventName>().type.toBe<
      'userLoggedIn' | 'userLoggedOut' | 'userLoadedFromCookie' | 'userLoadedFromRequest' | 'userLoginConfirmed' |
      'userUnauthorized' | 'userNeedsRefresh' | 'userAccessed' | 'sessionProtected' | 'sessionExpired' |
      'loginRevoked' | 'rememberTheft'
    >()
    expect(EVENT_NAMES).type.toBe<readonly LoginEventName[]>()
  })

  test('an unknown event name or a listener of another event is an error', () => {
    const app = fastify()
    // @ts-expect-error Argument of type '"userLoggedInn"' is not assignable to parameter
    app.loginManager.on('userLoggedInn', () => {})
    expect(app.loginManager.on).type.not.toBeCallableWith('userUnauthorized', (payload: UserEvent) => payload.user)
  })

  test('unauthorized and needsRefresh take the request and reply and resolve once the response is sent', () => {
    const app = fastify()
    app.get('/manual', async (request, reply) => {
      expect(app.loginManager.unauthorized(request, reply)).type.toBe<Promise<void>>()
      expect(app.loginManager.needsRefresh(request, reply)).type.toBe<Promise<void>>()
      expect(app.loginManager.unauthorized).type.not.toBeCallableWith(request)
      return reply
    })
  })

  test('loginUrl builds a string from the login view, the next URL and the field', () => {
    const app = fastify()
    expect(app.loginManager.loginUrl('/login')).type.toBe<string>()
    expect(app.loginManager.loginUrl('/login', '/account?tab=1', 'return_to')).type.toBe<string>()
    expect(app.loginManager.loginUrl).type.not.toBeCallableWith()
  })
})

describe('named exports', () => {
  test('isSafeRedirectUrl takes a URL, one or more hosts and optionally requireHttps', () => {
    expect(isSafeRedirectUrl).type.toBe<(url: string, allowedHosts: string | readonly string[], options?: SafeRedirectOptions) => boolean>()
    expect(isSafeRedirectUrl).type.toBeCallableWith('/next', 'example.com')
    expect(isSafeRedirectUrl).type.toBeCallableWith('//example.com/next', ['example.com', 'www.example.com'])
    expect(isSafeRedirectUrl).type.toBeCallableWith('https://example.com/next', 'example.com', { requireHttps: true })
    expect(isSafeRedirectUrl).type.not.toBeCallableWith('/next')
    expect(isSafeRedirectUrl).type.not.toBeCallableWith('/next', 'example.com', { requireHttps: 'yes' })
    expect<SafeRedirectOptions>().type.toBe<{ requireHttps?: boolean }>()
  })

  test('UserMixin is a logged-in user with getId and equals', () => {
    const user = new Account()
    expect(user.getId()).type.toBe<string>()
    expect(user.id).type.toBe<string | number | undefined>()
    expect(user.isAuthenticated).type.toBe<boolean>()
    expect(user.isActive).type.toBe<boolean>()
    expect(user.isAnonymous).type.toBe<boolean>()
    expect(user.equals(new Account())).type.toBe<boolean>()
    expect(user).type.toBeAssignableTo<UserLike>()
  })

  test('AnonymousUserMixin fits the anonymous user type', () => {
    const anonymous = new AnonymousUserMixin()
    expect(anonymous.getId()).type.toBe<null>()
    expect(anonymous.isAnonymous).type.toBe<boolean>()
    expect(anonymous).type.toBeAssignableTo<AnonymousUser>()
    expect<AnonymousUser>().type.toBe<AnonymousUserShape>()
  })

  test('SESSION_KEYS is a read-only list of strings', () => {
    expect(SESSION_KEYS).type.toBe<readonly string[]>()
    // @ts-expect-error Property 'push' does not exist on type 'readonly string[]'
    SESSION_KEYS.push('extra')
  })

  test('the error classes carry their code and status code', () => {
    expect(new FST_LOGIN_UNAUTHORIZED().code).type.toBe<'FST_LOGIN_UNAUTHORIZED'>()
    expect(new FST_LOGIN_UNAUTHORIZED().statusCode).type.toBe<401>()
    expect(new FST_LOGIN_NEEDS_REFRESH().code).type.toBe<'FST_LOGIN_NEEDS_REFRESH'>()
    expect(new FST_LOGIN_NEEDS_REFRESH().statusCode).type.toBe<401>()
    expect(new FST_LOGIN_MISSING_SECRET().code).type.toBe<'FST_LOGIN_MISSING_SECRET'>()
    expect(new FST_LOGIN_MISSING_LOADER().code).type.toBe<'FST_LOGIN_MISSING_LOADER'>()
    expect(new FST_LOGIN_MISSING_SESSION().code).type.toBe<'FST_LOGIN_MISSING_SESSION'>()
    expect(new FST_LOGIN_MISSING_COOKIE().code).type.toBe<'FST_LOGIN_MISSING_COOKIE'>()
    expect(new FST_LOGIN_NO_SESSION().code).type.toBe<'FST_LOGIN_NO_SESSION'>()
    expect(new FST_LOGIN_UNAUTHORIZED()).type.toBeAssignableTo<FastifyError>()
    expect(new FST_LOGIN_INVALID_OPTION('`nextField` must be a string')).type.toBeAssignableTo<FastifyError>()
  })

  test('the errors with a message argument require a string', () => {
    expect(FST_LOGIN_INVALID_OPTION).type.toBeConstructableWith('`nextField` must be a string')
    expect(FST_LOGIN_INVALID_OPTION).type.not.toBeConstructableWith(42)
    expect(FST_LOGIN_INVALID_DURATION).type.toBeConstructableWith('-1')
    expect(FST_LOGIN_INVALID_USER_ID).type.toBeConstructableWith('its id is null')
    expect(new FST_LOGIN_INVALID_OPTION('x').code).type.toBe<'FST_LOGIN_INVALID_OPTION'>()
    expect(new FST_LOGIN_INVALID_DURATION('x').code).type.toBe<'FST_LOGIN_INVALID_DURATION'>()
    expect(new FST_LOGIN_INVALID_USER_ID('x').code).type.toBe<'FST_LOGIN_INVALID_USER_ID'>()
    expect(FST_LOGIN_LOADER_FAILED).type.toBeConstructableWith('undefined')
    expect(new FST_LOGIN_LOADER_FAILED('x').code).type.toBe<'FST_LOGIN_LOADER_FAILED'>()
  })
})
