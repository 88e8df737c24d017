// Unit tests of the remember token format (RememberCodec): layout, key
// derivation, strict decoding, expiry, session-version tags and rotation.
import t from 'tap'
import * as crypto from 'node:crypto'
import Fastify from 'fastify'
import fastifyCookie, { Signer } from '@fastify/cookie'
import fastifySession from '@fastify/session'
import { MAX_COOKIE_LENGTH, RememberCodec } from '../lib/remember.js'
import { buildApp, CookieJar } from './helpers.js'

const SECRET_A = 'secret-a-of-at-least-thirty-two-characters'
const SECRET_B = 'secret-b-of-at-least-thirty-two-characters'
// A whole second, so expiry arithmetic is exact.
const NOW = 1_700_000_000_000
const NOW_SECONDS = NOW / 1000
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'

const codec = new RememberCodec([SECRET_A])

function b64url (text: string): string {
  return Buffer.from(text, 'utf8').toString('base64url')
}

function fieldsOf (token: string): string[] {
  return token.split('.')
}

// White-box: the MAC key as lib/remember.ts derives it (HKDF-SHA256). Used to
// build tokens that carry a correct MAC over a malformed payload, so the
// strict-decoding tests prove the parser, not the MAC, rejects them. The
// first test below fails if the derivation drifts from this.
const DERIVED_KEY = Buffer.from(crypto.hkdfSync('sha256', SECRET_A, 'fastify-login', 'remember-cookie mac v1', 32))

function withMac (payload: string, key: crypto.BinaryLike = DERIVED_KEY): string {
  return `${payload}.${crypto.createHmac('sha256', key).update(payload).digest('base64url')}`
}

// Changes the last base64url character's unused low bits: same bytes, other text.
function nonCanonical (encoded: string): string {
  const last = encoded.at(-1)!
  const swapped = BASE64URL[BASE64URL.indexOf(last) ^ 1]!
  return encoded.slice(0, -1) + swapped
}

t.test('the test derivation reproduces genuine tokens', async (t) => {
  const token = codec.sign('42', 3600, '', NOW)
  t.equal(withMac(fieldsOf(token).slice(0, 5).join('.')), token)
})

t.test('a token is v1 with six dot-separated fields', async (t) => {
  const fields = fieldsOf(codec.sign('42', 3600, '', NOW))
  t.equal(fields.length, 6)
  t.equal(fields[0], 'v1')
  t.equal(fields[1], b64url('42'), 'the id, base64url')
  t.equal(fields[2], String(NOW_SECONDS + 3600), 'the expiry in unix seconds')
  t.equal(fields[3], '3600', 'the duration in seconds')
  t.equal(fields[4], '', 'no version tag without a session version')
  t.match(fields[5], /^[A-Za-z0-9_-]{43}$/, 'a 32-byte MAC, base64url without padding')
})

t.test('a fractional duration is rounded up to whole seconds', async (t) => {
  const fields = fieldsOf(codec.sign('42', 1.2, '', NOW))
  t.equal(fields[2], String(NOW_SECONDS + 2))
  t.equal(fields[3], '2')
})

t.test('tokens for non-ASCII ids are printable ASCII and round-trip', async (t) => {
  for (const id of ['ü', '用户', '🦊👩‍💻', 'a.b;c d,"e"\\', '\u0000']) {
    const token = codec.sign(id, 60, '', NOW)
    t.match(token, /^[\x21-\x7e]+$/, `printable ASCII for ${JSON.stringify(id)}`)
    t.notMatch(token, /[;,"\\\s]/, 'no cookie delimiters')
    t.equal(codec.verify(token, NOW)?.userId, id, `round-trips ${JSON.stringify(id)}`)
  }
})

t.test('verify returns the id, expiry and duration of a genuine token', async (t) => {
  t.same(codec.verify(codec.sign('7', 120, '', NOW), NOW), {
    userId: '7', expires: NOW_SECONDS + 120, duration: 120, versionTag: '', stale: false
  })
})

t.test('a MAC keyed by the raw secret does not verify', async (t) => {
  const payload = fieldsOf(codec.sign('42', 3600, '', NOW)).slice(0, 5).join('.')
  t.equal(codec.verify(withMac(payload, SECRET_A), NOW), null)
  t.equal(codec.verify(withMac(payload, Buffer.from(SECRET_A)), NOW), null)
})

t.test('values signed by @fastify/cookie with the same secret do not verify', async (t) => {
  const signer = new Signer(SECRET_A)
  const payload = fieldsOf(codec.sign('42', 3600, '', NOW)).slice(0, 5).join('.')
  const signed = signer.sign(payload)
  t.equal(codec.verify(signed, NOW), null, 'as signed')
  // The same MAC in base64url, so only the key can make the difference.
  const macText = signed.slice(signed.lastIndexOf('.') + 1)
  const asBase64url = Buffer.from(macText, 'base64').toString('base64url')
  t.equal(codec.verify(`${payload}.${asBase64url}`, NOW), null, 're-encoded as base64url')
  t.equal(codec.verify(signer.sign('42'), NOW), null, 'a signed user id')
})

t.test('an @fastify/session cookie value does not verify', async (t) => {
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: SECRET_A, cookie: { secure: false }, saveUninitialized: false })
  app.get('/', async (request) => {
    (request.session as unknown as { set (key: string, value: unknown): void }).set('_user_id', '42')
    return 'ok'
  })
  const response = await app.inject('/')
  const session = response.cookies.find((cookie) => cookie.name === 'sessionId')
  t.ok(session, 'the session cookie is set')
  t.equal(codec.verify(session!.value, NOW), null)
  t.equal(codec.verify(decodeURIComponent(session!.value), NOW), null)
  await app.close()
})

t.test('strict decoding', async (t) => {
  const exp = String(NOW_SECONDS + 3600)
  const id = b64url('42')
  const genuine = codec.sign('42', 3600, '', NOW)
  const [, , , , , mac = ''] = fieldsOf(genuine)
  const tag = codec.versionTag('42', 'v')

  t.ok(codec.verify(withMac(`v1.${id}.${exp}.3600.`), NOW), 'control: a forged canonical token verifies')
  t.ok(codec.verify(withMac(`v1.${id}.${exp}.3600.${tag}`), NOW), 'control: with a version tag')

  const rejected: Record<string, string> = {
    'a non-canonical MAC encoding': `v1.${id}.${exp}.3600..${nonCanonical(mac)}`,
    'a padded MAC': `${genuine}=`,
    'a MAC in standard base64': `v1.${id}.${exp}.3600..${Buffer.from(mac, 'base64url').toString('base64').replace(/=+$/, '')}`,
    'a short MAC': genuine.slice(0, -1),
    'a non-canonical id encoding': withMac(`v1.${nonCanonical(b64url('ab'))}.${exp}.3600.`),
    'a padded id': withMac(`v1.${Buffer.from('ab').toString('base64')}.${exp}.3600.`),
    'an id in standard base64': withMac(`v1.${Buffer.from([0xfb, 0xff]).toString('base64').replace(/=+$/, '')}.${exp}.3600.`),
    'an id that is not UTF-8': withMac(`v1.${Buffer.from([0xff, 0xfe]).toString('base64url')}.${exp}.3600.`),
    'an empty id': withMac(`v1..${exp}.3600.`),
    'an extra field': withMac(`v1.${id}.${exp}.3600..x`),
    'a missing field': withMac(`v1.${id}.${exp}.3600`),
    'version v2': withMac(`v2.${id}.${exp}.3600.`),
    'version V1': withMac(`V1.${id}.${exp}.3600.`),
    'an empty version': withMac(`.${id}.${exp}.3600.`),
    'a leading zero in the expiry': withMac(`v1.${id}.0${exp}.3600.`),
    'a leading zero in the duration': withMac(`v1.${id}.${exp}.03600.`),
    'a zero duration': withMac(`v1.${id}.${exp}.0.`),
    'a signed expiry': withMac(`v1.${id}.+${exp}.3600.`),
    'an exponent expiry': withMac(`v1.${id}.1e10.3600.`),
    'a hexadecimal duration': withMac(`v1.${id}.${exp}.0xe10.`),
    'an over-long expiry': withMac(`v1.${id}.${'9'.repeat(20)}.3600.`),
    'a short version tag': withMac(`v1.${id}.${exp}.3600.${tag.slice(1)}`),
    'a padded version tag': withMac(`v1.${id}.${exp}.3600.${tag}==`),
    'whitespace around a field': withMac(`v1.${id}.${exp}.3600 .`),
    'an empty value': '',
    'a lone dot': '.'
  }
  for (const [name, value] of Object.entries(rejected)) {
    t.equal(codec.verify(value, NOW), null, `rejects ${name}`)
  }
  for (const value of [undefined, null, 42, ['v1'], { toString: () => genuine }]) {
    t.equal(codec.verify(value, NOW), null, `rejects a ${typeof value} value`)
  }
})

t.test('a token expires at its embedded expiry', async (t) => {
  const token = codec.sign('1', 60, '', NOW)
  t.ok(codec.verify(token, NOW + 60_000 - 1), 'valid a millisecond before')
  t.equal(codec.verify(token, NOW + 60_000), null, 'refused at the expiry')
  t.equal(codec.verify(token, NOW + 10 * 365 * 86_400_000), null, 'refused long after')
})

t.test('verify uses the current time by default', async (t) => {
  t.equal(codec.verify(codec.sign('1', 60, '', Date.now() - 61_000)), null, 'expired a second ago')
  t.ok(codec.verify(codec.sign('1', 60, '', Date.now() - 50_000)), 'still valid')
})

t.test('an expiry cannot be extended without the key', async (t) => {
  const fields = fieldsOf(codec.sign('1', 60, '', NOW))
  fields[2] = String(NOW_SECONDS + 86_400)
  t.equal(codec.verify(fields.join('.'), NOW + 120_000), null)
})

t.test('versionTag is empty without a version and a 16-byte tag with one', async (t) => {
  t.equal(codec.versionTag('1', undefined), '')
  const tag = codec.versionTag('1', 'v1')
  t.match(tag, /^[A-Za-z0-9_-]{22}$/)
  t.not(tag, codec.versionTag('1', 'v2'), 'depends on the version')
  t.not(tag, codec.versionTag('2', 'v1'), 'depends on the user')
  t.not(tag, new RememberCodec([SECRET_B]).versionTag('1', 'v1'), 'depends on the secret')
  t.equal(tag, codec.versionTag('1', 'v1'), 'deterministic')
})

t.test('the version tag is covered by the MAC', async (t) => {
  const fields = fieldsOf(codec.sign('1', 60, codec.versionTag('1', 'v1'), NOW))
  fields[4] = codec.versionTag('1', 'v2')
  t.equal(codec.verify(fields.join('.'), NOW), null)
})

t.test('versionMatches compares the token with the current version', async (t) => {
  const tagged = codec.verify(codec.sign('1', 60, codec.versionTag('1', 'v1'), NOW), NOW)!
  t.equal(codec.versionMatches(tagged, 'v1'), true, 'same version')
  t.equal(codec.versionMatches(tagged, 'v2'), false, 'changed version')
  t.equal(codec.versionMatches(tagged, undefined), false, 'no version any more')
  const untagged = codec.verify(codec.sign('1', 60, '', NOW), NOW)!
  t.equal(codec.versionMatches(untagged, undefined), true, 'no version either side')
  t.equal(codec.versionMatches(untagged, 'v1'), false, 'a version appeared')
})

t.test('a version tag of another user does not match', async (t) => {
  const token = codec.verify(codec.sign('1', 60, codec.versionTag('2', 'v1'), NOW), NOW)!
  t.equal(codec.versionMatches(token, 'v1'), false)
})

t.test('rotation: an older listed secret verifies and marks the token stale', async (t) => {
  const old = new RememberCodec([SECRET_A]).sign('1', 60, '', NOW)
  const token = new RememberCodec([SECRET_B, SECRET_A]).verify(old, NOW)
  t.equal(token?.userId, '1')
  t.equal(token?.stale, true)
})

t.test('rotation: the current secret is not stale', async (t) => {
  const rotated = new RememberCodec([SECRET_B, SECRET_A])
  t.equal(rotated.verify(rotated.sign('1', 60, '', NOW), NOW)?.stale, false)
})

t.test('rotation: a dropped secret stops verifying', async (t) => {
  const old = new RememberCodec([SECRET_A]).sign('1', 60, '', NOW)
  t.equal(new RememberCodec([SECRET_B]).verify(old, NOW), null)
})

t.test('rotation: a version tag made under an older secret still matches', async (t) => {
  const oldCodec = new RememberCodec([SECRET_A])
  const rotated = new RememberCodec([SECRET_B, SECRET_A])
  const token = rotated.verify(oldCodec.sign('1', 60, oldCodec.versionTag('1', 'v1'), NOW), NOW)!
  t.equal(rotated.versionMatches(token, 'v1'), true)
  t.equal(rotated.versionMatches(token, 'v2'), false)
  t.equal(new RememberCodec([SECRET_B]).versionMatches(token, 'v1'), false, 'not once the old secret is dropped')
})

t.test('resign re-issues under the current secret, keeping expiry and duration', async (t) => {
  const rotated = new RememberCodec([SECRET_B, SECRET_A])
  const later = NOW + 30_000
  const old = rotated.verify(new RememberCodec([SECRET_A]).sign('ü', 60, '', NOW), later)!
  const resigned = rotated.resign(old, rotated.versionTag('ü', 'v1'))
  const token = new RememberCodec([SECRET_B]).verify(resigned, later)
  t.ok(token, 'verifies with the new secret alone')
  t.equal(token?.userId, 'ü')
  t.equal(token?.expires, NOW_SECONDS + 60, 'same expiry')
  t.equal(token?.duration, 60, 'same duration')
  t.equal(token?.stale, false)
  t.equal(rotated.versionMatches(token!, 'v1'), true, 'carries the new tag')
})

t.test('values longer than 4096 characters are rejected before any MAC', async (t) => {
  let macs = 0
  const counting = {
    ...crypto,
    createHmac (...args: Parameters<typeof crypto.createHmac>) {
      macs++
      return crypto.createHmac(...args)
    }
  }
  const mocked = await t.mockImport<typeof import('../lib/remember.js')>('../lib/remember.js', { 'node:crypto': counting })
  t.equal(mocked.MAX_COOKIE_LENGTH, 4096)
  const counted = new mocked.RememberCodec([SECRET_A])
  // Well-formed tokens with a wrong MAC, padded through the id to `length`.
  const shaped = (length: number): string => {
    const tail = `.${NOW_SECONDS + 60}.60..${'A'.repeat(43)}`
    return `v1.${'A'.repeat(length - 3 - tail.length)}${tail}`
  }
  const atLimit = shaped(MAX_COOKIE_LENGTH)
  t.equal(atLimit.length, MAX_COOKIE_LENGTH)
  macs = 0
  t.equal(counted.verify(atLimit, NOW), null)
  t.equal(macs, 1, 'control: a 4096-character value is MACed')
  for (const length of [MAX_COOKIE_LENGTH + 1, 5000, 1_000_000]) {
    macs = 0
    t.equal(counted.verify(shaped(length), NOW), null, `${length} characters rejected`)
    t.equal(macs, 0, `no MAC for ${length} characters`)
  }
})

t.test('a genuine token over 4096 characters does not verify', async (t) => {
  const token = codec.sign('x'.repeat(3100), 60, '', NOW)
  t.ok(token.length > MAX_COOKIE_LENGTH)
  t.equal(codec.verify(token, NOW), null)
})

// The cookie as an app issues it.

function rememberCookie (response: { cookies: Array<{ name: string, value: string, maxAge?: number }> }) {
  return response.cookies.find((cookie) => cookie.name === 'remember_token')
}

t.test('the cookie\'s Max-Age matches the expiry inside the token', async (t) => {
  const { app } = await buildApp()
  const before = Math.floor(Date.now() / 1000)
  const cookie = rememberCookie(await app.inject({ method: 'POST', url: '/login/1?remember=1&duration=7200' }))
  const after = Math.floor(Date.now() / 1000)
  const expires = Number(fieldsOf(cookie!.value)[2])
  t.equal(fieldsOf(cookie!.value)[3], '7200', 'the login\'s duration is embedded')
  t.ok(expires >= before + 7200 && expires <= after + 7200, 'the expiry is login time plus the duration')
  const issuedAt = expires - cookie!.maxAge!
  t.ok(issuedAt >= before && issuedAt <= after, `Max-Age ${cookie!.maxAge} ends at the embedded expiry`)
})

t.test('refreshEachRequest re-signs with the login\'s own duration', async (t) => {
  const { app } = await buildApp({ login: { remember: { refreshEachRequest: true } } })
  const jar = new CookieJar(app)
  const first = rememberCookie(await jar.inject({ method: 'POST', url: '/login/1?remember=1&duration=3600' }))!
  await new Promise((resolve) => setTimeout(resolve, 1100))
  jar.delete('sessionId')
  const refreshed = rememberCookie(await jar.inject('/'))
  t.ok(refreshed, 're-issued')
  const [, id, expires, duration] = fieldsOf(refreshed!.value)
  t.equal(id, fieldsOf(first.value)[1])
  t.equal(duration, '3600', 'not the default year')
  t.ok(Number(expires) > Number(fieldsOf(first.value)[2]), 'a later expiry')
  t.ok(Math.abs(refreshed!.maxAge! - 3600) <= 1, `Max-Age ${refreshed!.maxAge}`)
  t.equal((await jar.inject('/')).json().user, 'Ann', 'the re-issued cookie works')
})

t.test('a cookie of an older secret is re-issued under the current one with its own expiry', async (t) => {
  const { app: oldApp } = await buildApp({ login: { secret: SECRET_A } })
  const old = rememberCookie(await oldApp.inject({ method: 'POST', url: '/login/1?remember=1&duration=3600' }))!
  const { app } = await buildApp({ login: { secret: [SECRET_B, SECRET_A] } })
  const response = await app.inject({ url: '/', headers: { cookie: `remember_token=${encodeURIComponent(old.value)}` } })
  t.equal(response.json().user, 'Ann', 'accepted')
  const reissued = rememberCookie(response)
  t.ok(reissued, 're-issued')
  const token = new RememberCodec([SECRET_B]).verify(reissued!.value)
  t.ok(token, 'verifies with the current secret alone')
  t.equal(token?.expires, Number(fieldsOf(old.value)[2]), 'the original expiry, not a new one')
  t.equal(token?.duration, 3600)
  t.ok(reissued!.maxAge! <= 3600 && reissued!.maxAge! >= 3598, `Max-Age ${reissued!.maxAge} matches the original expiry`)
})

t.test('a cookie of the current secret is not re-issued without refreshEachRequest', async (t) => {
  const { app } = await buildApp({ login: { secret: [SECRET_B, SECRET_A] } })
  const cookie = rememberCookie(await app.inject({ method: 'POST', url: '/login/1?remember=1' }))!
  const response = await app.inject({ url: '/', headers: { cookie: `remember_token=${encodeURIComponent(cookie.value)}` } })
  t.equal(response.json().user, 'Ann')
  t.equal(rememberCookie(response), undefined)
})

t.test('every listed secret must be at least 32 characters', async (t) => {
  await t.rejects(buildApp({ login: { secret: [SECRET_A, 'x'.repeat(31)] } }), { code: 'FST_LOGIN_MISSING_SECRET' })
  await t.rejects(buildApp({ login: { secret: ['x'.repeat(31), SECRET_A] } }), { code: 'FST_LOGIN_MISSING_SECRET' })
  await t.resolves(buildApp({ login: { secret: [SECRET_A, 'x'.repeat(32)] } }), 'control: 32 characters is enough')
})
