// Type tests of session lifetime (idleTimeout, absoluteTimeout, the
// sessionExpired event, request.loginExpired, FST_LOGIN_SESSION_EXPIRED) and
// loginDisabled.
import fastify, { type FastifyError, type FastifyRequest } from 'fastify'
import { describe, expect, test } from 'tstyche'
import {
  DEFAULT_EXPIRED_MESSAGE, FST_LOGIN_SESSION_EXPIRED,
  type FastifyLoginOptions, type LoginEvents, type SessionExpiredEvent, type SessionExpiryReason
} from 'fastify-login'

describe('options', () => {
  test('timeouts are numbers of seconds, the message a string or false, loginDisabled a boolean', () => {
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{
      secret: string
      idleTimeout: number
      absoluteTimeout: number
      expiredMessage: string
      expiredMessageCategory: string
      loginDisabled: boolean
    }>()
    expect<FastifyLoginOptions>().type.toBeAssignableFrom<{ secret: string, expiredMessage: false }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, idleTimeout: '15m' }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, absoluteTimeout: null }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, expiredMessage: true }>()
    expect<FastifyLoginOptions>().type.not.toBeAssignableFrom<{ secret: string, loginDisabled: 'yes' }>()
  })

  test('the resolved options show them, read-only', () => {
    const app = fastify()
    const { options } = app.loginManager
    expect(options.idleTimeout).type.toBe<number | undefined>()
    expect(options.absoluteTimeout).type.toBe<number | undefined>()
    expect(options.expiredMessage).type.toBe<string | false>()
    expect(options.expiredMessageCategory).type.toBe<string>()
    expect(options.loginDisabled).type.toBe<boolean>()
    // @ts-expect-error Cannot assign to 'idleTimeout' because it is a read-only property
    options.idleTimeout = 60
  })

  test('the default message is a string constant', () => {
    expect(DEFAULT_EXPIRED_MESSAGE).type.toBe<'Your session has expired. Please log in again.'>()
  })
})

describe('expiry', () => {
  test('request.loginExpired is the reason or null, read-only', () => {
    expect<SessionExpiryReason>().type.toBe<'idle' | 'absolute'>()
    const app = fastify()
    app.get('/', async (request) => {
      expect(request.loginExpired).type.toBe<SessionExpiryReason | null>()
      // @ts-expect-error Cannot assign to 'loginExpired' because it is a read-only property
      request.loginExpired = null
      return 'ok'
    })
  })

  test('sessionExpired passes the request, the user id and the reason', () => {
    const app = fastify()
    app.loginManager.on('sessionExpired', (payload) => {
      expect(payload).type.toBe<SessionExpiredEvent>()
      expect(payload.request).type.toBe<FastifyRequest>()
      expect(payload.userId).type.toBe<string>()
      expect(payload.reason).type.toBe<SessionExpiryReason>()
      expect(payload).type.not.toHaveProperty('user')
    })
    expect<LoginEvents['sessionExpired']>().type.toBe<SessionExpiredEvent>()
  })

  test('FST_LOGIN_SESSION_EXPIRED is a 401 Fastify error', () => {
    expect(new FST_LOGIN_SESSION_EXPIRED().code).type.toBe<'FST_LOGIN_SESSION_EXPIRED'>()
    expect(new FST_LOGIN_SESSION_EXPIRED().statusCode).type.toBe<401>()
    expect(new FST_LOGIN_SESSION_EXPIRED()).type.toBeAssignableTo<FastifyError>()
    expect(FST_LOGIN_SESSION_EXPIRED).type.not.toBeConstructableWith('a message')
  })
})
