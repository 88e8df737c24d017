// Type tests of `fastify-login/testing` imported as an ES module.
import fastify from 'fastify'
import { expect, test } from 'tstyche'
import { loginAs, type LoginAsOptions } from 'fastify-login/testing'

test('loginAs resolves the Cookie header value', () => {
  const app = fastify()
  expect(loginAs(app, { id: 1 })).type.toBe<Promise<string>>()
  expect(loginAs(app, { id: 1 }, { fresh: false, remember: true })).type.toBe<Promise<string>>()
})

test('loginAs needs an app and a user and takes only its own options', () => {
  const app = fastify()
  expect(loginAs).type.not.toBeCallableWith(app)
  expect(loginAs).type.not.toBeCallableWith({ id: 1 }, app)
  expect(loginAs).type.not.toBeCallableWith(app, { id: 1 }, { fresh: 'yes' })
  expect<LoginAsOptions>().type.toBe<{ fresh?: boolean, remember?: boolean }>()
  // @ts-expect-error 'duration' does not exist in type 'LoginAsOptions'
  loginAs(app, { id: 1 }, { duration: 60 })
})
