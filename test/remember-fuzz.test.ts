// Property-based tests: any remember cookie that is not a genuine, current
// token leaves the request anonymous, never errors, never reaches the user
// loader, and is cleared with the Path and Domain it was set with.
import t, { type Test } from 'tap'
import fc from 'fast-check'
import type { LightMyRequestResponse } from 'fastify'
import { RememberCodec } from '../lib/remember.js'
import { buildApp, LOGIN_SECRET, type BuildOptions, type User } from './helpers.js'

const COOKIE = 'remember_token'
const PATH = '/account'
const DOMAIN = 'example.test'
const RUNS = 200
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.split('')

function sleep (ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms))
}

// An app whose remember cookie lives on PATH and DOMAIN, with a route under
// PATH, and the genuine remember cookie of user 1.
async function setup (login: BuildOptions['login'] = {}) {
  const built = await buildApp({ login: { ...login, remember: { path: PATH, domain: DOMAIN, ...login.remember } } })
  built.app.get(`${PATH}/me`, { config: { login: 'optional' } }, async (request) => ({
    user: request.isAuthenticated() ? (request.user as unknown as User).name : null
  }))
  const response = await built.app.inject({ method: 'POST', url: '/login/1?remember=1' })
  const genuine = response.cookies.find((cookie) => cookie.name === COOKIE)?.value
  if (genuine === undefined) throw new Error('the login set no remember cookie')
  built.loaded.length = 0
  return { ...built, genuine }
}

type Setup = Awaited<ReturnType<typeof setup>>

function sendAlone (app: Setup['app'], value: string): Promise<LightMyRequestResponse> {
  return app.inject({ url: `${PATH}/me`, headers: { cookie: `${COOKIE}=${encodeURIComponent(value)}` } })
}

// What is wrong with the response to a rejected cookie; empty when nothing is.
function problemsOf (response: LightMyRequestResponse, loaderCalls: number): string[] {
  const problems: string[] = []
  if (response.statusCode >= 500) problems.push(`status ${response.statusCode}`)
  else if (response.json().user !== null) problems.push(`authenticated as ${String(response.json().user)}`)
  if (loaderCalls !== 0) problems.push(`${loaderCalls} loader call(s)`)
  const cleared = response.cookies.find((cookie) => cookie.name === COOKIE)
  if (cleared === undefined) {
    problems.push('the cookie is not cleared')
  } else {
    if (cleared.value !== '' || cleared.maxAge !== 0) problems.push(`not a clearing Set-Cookie: ${JSON.stringify(cleared)}`)
    if (cleared.path !== PATH) problems.push(`cleared with Path ${String(cleared.path)}`)
    if (cleared.domain !== DOMAIN) problems.push(`cleared with Domain ${String(cleared.domain)}`)
  }
  return problems
}

// Sends `value` as the only cookie and throws when any property is violated.
async function expectRejected ({ app, loaded }: Setup, value: string): Promise<void> {
  loaded.length = 0
  const problems = problemsOf(await sendAlone(app, value), loaded.length)
  if (problems.length > 0) throw new Error(`${JSON.stringify(value.length > 200 ? value.slice(0, 200) + '…' : value)}: ${problems.join('; ')}`)
}

// Runs the property and asserts it held; the failure message names the counterexample.
async function check (t: Test, setupApp: Setup, values: fc.Arbitrary<string>, numRuns = RUNS): Promise<void> {
  const details = await fc.check(fc.asyncProperty(values, (value) => expectRejected(setupApp, value)), { numRuns })
  t.notOk(details.failed, fc.defaultReportMessage(details) ?? 'property held')
}

// A character that encodeURIComponent accepts (no lone surrogates).
const anyChar = fc.string({ unit: 'binary', minLength: 1, maxLength: 1 })

t.test('control: the genuine cookie alone restores the user through the loader', async (t) => {
  const { app, loaded, genuine } = await setup()
  const response = await sendAlone(app, genuine)
  t.equal(response.json().user, 'Ann')
  t.same(loaded, ['1'])
  t.equal(response.cookies.find((cookie) => cookie.name === COOKIE), undefined, 'not cleared')
})

t.test('control: a rejected cookie is reported by the checker', async (t) => {
  const built = await setup()
  await t.rejects(expectRejected(built, built.genuine), /loader call/)
})

t.test('random strings and bytes are rejected', async (t) => {
  const built = await setup()
  await check(t, built, fc.oneof(
    fc.string({ maxLength: 300 }),
    fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
    fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('base64url')),
    fc.array(fc.stringMatching(/^[A-Za-z0-9_-]{0,50}$/), { minLength: 6, maxLength: 6 }).map((fields) => ['v1', ...fields.slice(1)].join('.'))
  ))
})

t.test('single-character flips of a genuine cookie are rejected', async (t) => {
  const built = await setup()
  const { genuine } = built
  await check(t, built, fc.tuple(fc.nat({ max: genuine.length - 1 }), fc.oneof(fc.constantFrom(...BASE64URL, '.', '='), anyChar))
    .map(([index, char]) => genuine.slice(0, index) + char + genuine.slice(index + 1))
    .filter((value) => value !== genuine))
})

t.test('truncations of a genuine cookie are rejected', async (t) => {
  const built = await setup()
  const { genuine } = built
  await check(t, built, fc.oneof(
    fc.nat({ max: genuine.length - 1 }).map((length) => genuine.slice(0, length)),
    fc.integer({ min: 1, max: genuine.length }).map((start) => genuine.slice(start)),
    fc.tuple(fc.nat({ max: genuine.length - 1 }), fc.integer({ min: 1, max: 10 }))
      .map(([start, count]) => genuine.slice(0, start) + genuine.slice(start + count))
  ))
})

t.test('a genuine cookie with junk appended or inserted is rejected', async (t) => {
  const built = await setup()
  const { genuine } = built
  await check(t, built, fc.oneof(
    fc.string({ minLength: 1, maxLength: 60 }).map((junk) => genuine + junk),
    fc.string({ unit: 'binary', minLength: 1, maxLength: 60 }).map((junk) => genuine + junk),
    fc.tuple(fc.nat({ max: genuine.length }), fc.string({ unit: 'binary', minLength: 1, maxLength: 20 }))
      .map(([index, junk]) => genuine.slice(0, index) + junk + genuine.slice(index))
  ))
})

t.test('unicode values are rejected', async (t) => {
  const built = await setup()
  const { genuine } = built
  await check(t, built, fc.oneof(
    fc.string({ unit: 'binary', maxLength: 200 }),
    fc.string({ unit: 'grapheme', maxLength: 100 }),
    // A genuine layout whose id field is replaced by unicode text.
    fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }).map((id) => {
      const fields = genuine.split('.')
      fields[1] = id
      return fields.join('.')
    })
  ))
})

t.test('values over 4096 bytes are rejected', async (t) => {
  const built = await setup()
  const { genuine } = built
  const fields = genuine.split('.')
  await check(t, built, fc.oneof(
    fc.integer({ min: 4097, max: 64 * 1024 }).map((length) => (genuine + 'A'.repeat(length)).slice(0, length)),
    // A well-formed token with an over-long id field.
    fc.integer({ min: 4097, max: 16 * 1024 }).map((length) => [fields[0], 'A'.repeat(length), ...fields.slice(2)].join('.')),
    fc.integer({ min: 4097, max: 8 * 1024 }).map((length) => 'é'.repeat(length))
  ), 50)
})

t.test('cookies signed with another secret are rejected', async (t) => {
  const built = await setup()
  await check(t, built, fc.tuple(
    fc.string({ minLength: 32, maxLength: 64 }).filter((secret) => secret !== LOGIN_SECRET),
    fc.constantFrom('1', '2', 'ü'),
    fc.integer({ min: 1, max: 10 ** 8 })
  ).map(([secret, id, duration]) => new RememberCodec([secret]).sign(id, duration, '')))
})

t.test('expired cookies signed with the right secret are rejected', async (t) => {
  const built = await setup()
  const codec = new RememberCodec([LOGIN_SECRET])
  await check(t, built, fc.tuple(
    fc.constantFrom('1', '2', 'ü'),
    fc.integer({ min: 1, max: 10 ** 8 }),
    fc.integer({ min: 1, max: 10 ** 8 })
  ).map(([id, duration, overdue]) => codec.sign(id, duration, '', Date.now() - (duration + overdue) * 1000)))
})

t.test('a cookie replayed after its duration is anonymous and cleared, without a loader call', async (t) => {
  const built = await setup({ remember: { duration: 1 } })
  await sleep(2100)
  await t.resolves(expectRejected(built, built.genuine))
})

t.test('a revoked cookie is anonymous and cleared after one loader call', async (t) => {
  // The current version is a property of the user, so the loader runs once
  // to learn it; the revoked user is never authenticated.
  const built = await setup({ sessionVersion: (user) => (user as unknown as User).version })
  built.users.get('1')!.version = '2'
  const response = await sendAlone(built.app, built.genuine)
  t.same(built.loaded, ['1'])
  t.same(problemsOf(response, 0), [])
})

t.test('a bad cookie sent next to a valid session login is cleared too', async (t) => {
  // SPEC 7: a malformed or tampered cookie is treated as absent and cleared on
  // the response; the session login itself stays.
  const built = await setup()
  const login = await built.app.inject({ method: 'POST', url: '/login/2' })
  const session = login.cookies.find((cookie) => cookie.name === 'sessionId')!.value
  const tampered = built.genuine.slice(0, -2) + (built.genuine.endsWith('AA') ? 'BA' : 'AA')
  const response = await built.app.inject({
    url: `${PATH}/me`,
    headers: { cookie: `sessionId=${encodeURIComponent(session)}; ${COOKIE}=${encodeURIComponent(tampered)}` }
  })
  t.equal(response.json().user, 'Bob', 'the session login stays')
  const cleared = response.cookies.find((cookie) => cookie.name === COOKIE)
  t.ok(cleared !== undefined && cleared.value === '' && cleared.maxAge === 0, 'the tampered cookie is cleared')
  t.equal(cleared?.path, PATH)
  t.equal(cleared?.domain, DOMAIN)
})
