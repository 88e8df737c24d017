// The open-redirect guard: isSafeRedirectUrl and request.safeNextUrl
// (SPEC sections 4 and 9).
import t from 'tap'
import fc from 'fast-check'
import fastifyFormbody from '@fastify/formbody'
import type { FastifyInstance } from 'fastify'
import { isSafeRedirectUrl } from '../lib/index.js'
import { buildApp, type BuildOptions } from './helpers.js'

// A test name that shows invisible and line-breaking characters.
function show (value: string): string {
  return JSON.stringify(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

// What a browser does with `url` on a page of `host`: where does it end up?
function staysOn (url: string, host: string): boolean {
  for (const page of [`http://${host}/a/b`, `https://${host}/a/b`]) {
    let target: URL
    try {
      target = new URL(url, page)
    } catch {
      return false
    }
    if (target.host !== host || (target.protocol !== 'http:' && target.protocol !== 'https:')) return false
  }
  return true
}

t.test('isSafeRedirectUrl allows', async (t) => {
  const good = [
    '/',
    '/dashboard',
    '/a/b?c=d&e=f#g',
    'relative/path',
    '?page=2',
    '#section',
    '/caf%C3%A9',
    '/café',
    'https://good.com/x',
    'http://good.com/x?y=1',
    'HTTPS://GOOD.COM/x',
    '//good.com/x',
    '//good.com',
    'http://good.com:8080/x'
  ]
  for (const url of good) t.equal(isSafeRedirectUrl(url, ['good.com', 'good.com:8080']), true, show(url))
})

t.test('isSafeRedirectUrl rejects', async (t) => {
  const bad = [
    '',
    'http://evil.com/',
    'https://evil.com',
    '//evil.com',
    '//evil.com/good.com',
    'https://good.com.evil.com/',
    'https://evilgood.com/',
    'http://good.com:8081/',
    'ftp://good.com/',
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    ' javascript:alert(1)',
    'java\tscript:alert(1)',
    'data:text/html,<script>alert(1)</script>',
    'blob:http://good.com/uuid',
    'file:///etc/passwd',
    '/\\evil.com',
    '\\\\evil.com',
    '\\/evil.com',
    '/\\/evil.com',
    'https:\\\\evil.com',
    '/\n/evil.com',
    '/\t/evil.com',
    '\n//evil.com',
    ' //evil.com',
    ' /dashboard',
    '/dashboard ',
    '/\u0000/evil.com',
    '\u0008//evil.com',
    '/\u00a0/evil.com',
    '/\u200b/evil.com',
    '/\u2028/evil.com',
    '\u3000//evil.com',
    'http://good.com@evil.com',
    'http://good.com:80@evil.com/',
    '//good.com@evil.com',
    'http://evil.com@good.com',
    'http://good.com\\@evil.com',
    'http:evil.com',
    'https:evil.com',
    'http:/evil.com',
    'https:/evil.com',
    'http:good.com',
    '///evil.com',
    '////evil.com',
    '/.//evil.com',
    '/..//evil.com',
    './..//evil.com',
    'http:%2F%2Fevil.com',
    'https:%2f%2fevil.com',
    '//evil.com%2F@good.com',
    '//good.com%2F@evil.com',
    '//evil%2Ecom',
    'http://evil.com%23@good.com/'
  ]
  for (const url of bad) t.equal(isSafeRedirectUrl(url, ['good.com']), false, show(url))
})

t.test('isSafeRedirectUrl rejects non-strings', async (t) => {
  for (const value of [undefined, null, 42, ['/'], { toString: () => '/' }]) {
    t.equal(isSafeRedirectUrl(value as unknown as string, ['good.com']), false, String(value))
  }
})

t.test('isSafeRedirectUrl accepts a single host string', async (t) => {
  t.equal(isSafeRedirectUrl('http://good.com/good', 'good.com'), true)
  t.equal(isSafeRedirectUrl('http://good.co/evil', 'good.com'), false)
})

t.test('isSafeRedirectUrl with no allowed hosts allows only relative targets', async (t) => {
  t.equal(isSafeRedirectUrl('/confirm/me@example.com', []), true)
  t.equal(isSafeRedirectUrl('http://testserver\\@example.com', []), false)
  t.equal(isSafeRedirectUrl('//testserver/', []), false)
})

// Django: tests/utils_tests/test_http.py, URLHasAllowedHostAndSchemeTests.
t.test("Django's url_has_allowed_host_and_scheme cases", async (t) => {
  const cases: Array<[string, readonly string[], boolean]> = [
    // test_bad_urls
    ['http://example.com', ['testserver', 'testserver2'], false],
    ['http:///example.com', ['testserver', 'testserver2'], false],
    ['https://example.com', ['testserver', 'testserver2'], false],
    ['ftp://example.com', ['testserver', 'testserver2'], false],
    ['\\\\example.com', ['testserver', 'testserver2'], false],
    ['\\\\\\example.com', ['testserver', 'testserver2'], false],
    ['/\\\\/example.com', ['testserver', 'testserver2'], false],
    ['\\\\//example.com', ['testserver', 'testserver2'], false],
    ['/\\/example.com', ['testserver', 'testserver2'], false],
    ['\\/example.com', ['testserver', 'testserver2'], false],
    ['/\\example.com', ['testserver', 'testserver2'], false],
    ['http:/\\//example.com', ['testserver', 'testserver2'], false],
    ['http:\\/example.com', ['testserver', 'testserver2'], false],
    ['http:/\\example.com', ['testserver', 'testserver2'], false],
    ['javascript:alert("XSS")', ['testserver', 'testserver2'], false],
    ['\njavascript:alert(x)', ['testserver', 'testserver2'], false],
    ['java\nscript:alert(x)', ['testserver', 'testserver2'], false],
    ['\x08//example.com', ['testserver', 'testserver2'], false],
    ['http://otherserver\\@example.com', ['testserver', 'testserver2'], false],
    ['http:\\\\testserver\\@example.com', ['testserver', 'testserver2'], false],
    ['http://testserver\\me:pass@example.com', ['testserver', 'testserver2'], false],
    ['http://testserver\\@example.com', ['testserver', 'testserver2'], false],
    ['http:\\\\testserver\\confirm\\me@example.com', ['testserver', 'testserver2'], false],
    ['http:999999999', ['testserver', 'testserver2'], false],
    ['ftp:9999999999', ['testserver', 'testserver2'], false],
    ['\n', ['testserver', 'testserver2'], false],
    ['http://[2001:cdba:0000:0000:0000:0000:3257:9652/', ['testserver', 'testserver2'], false],
    ['http://2001:cdba:0000:0000:0000:0000:3257:9652]/', ['testserver', 'testserver2'], false],
    // test_good_urls
    ['/view/?param=http://example.com', ['otherserver', 'testserver'], true],
    ['/view/?param=https://example.com', ['otherserver', 'testserver'], true],
    ['/view?param=ftp://example.com', ['otherserver', 'testserver'], true],
    ['view/?param=//example.com', ['otherserver', 'testserver'], true],
    ['https://testserver/', ['otherserver', 'testserver'], true],
    ['HTTPS://testserver/', ['otherserver', 'testserver'], true],
    ['//testserver/', ['otherserver', 'testserver'], true],
    ['http://testserver/confirm?email=me@example.com', ['otherserver', 'testserver'], true],
    ['/url%20with%20spaces/', ['otherserver', 'testserver'], true],
    ['path/http:2222222222', ['otherserver', 'testserver'], true]
  ]
  for (const [url, hosts, expected] of cases) {
    t.equal(isSafeRedirectUrl(url, hosts), expected, `${show(url)} → ${expected}`)
  }
})

// Fragments a redirect attack is built from; random joins of them probe the
// parser's corners.
const piece = fc.constantFrom(
  '/', '//', '\\', ':', '@', '.', '..', '?', '#', '%', '%2F', '%2f', '%5C', '%09', '%00', '%40',
  'good.com', 'evil.com', 'http', 'https', 'javascript', 'data', 'ftp', ':80', ':443',
  '\t', '\n', '\r', ' ', '\u0000', '\u00a0', '\u3002', '\uff0f', '\uff20', 'ü', '[', ']', '::1', '0x7f000001'
)
const attack = fc.array(piece, { maxLength: 10 }).map((parts) => parts.join(''))

t.test('whatever isSafeRedirectUrl accepts, a browser resolves onto the allowed host', async (t) => {
  let accepted = 0
  fc.assert(fc.property(fc.oneof(attack, fc.string({ unit: 'binary', maxLength: 30 })), (url) => {
    if (!isSafeRedirectUrl(url, ['good.com'])) return true
    accepted++
    return staysOn(url, 'good.com')
  }), { numRuns: 5000 })
  t.ok(accepted > 0, 'the generator produced accepted URLs too')
})

async function redirectApp (options: BuildOptions = {}): Promise<FastifyInstance> {
  const { app } = await buildApp({ routes: false, ...options })
  await app.register(fastifyFormbody)
  app.get('/next', async (request) => ({ next: request.safeNextUrl() }))
  app.get<{ Querystring: { fallback: string } }>('/next-or', async (request) => ({ next: request.safeNextUrl(request.query.fallback) }))
  app.post('/next', async (request) => ({ next: request.safeNextUrl() }))
  app.get('/go', async (request, reply) => reply.redirect(request.safeNextUrl()))
  return app
}

function withNext (path: string, next: string): string {
  return `${path}?next=${encodeURIComponent(next)}`
}

t.test('request.safeNextUrl', async (t) => {
  t.test('returns a safe next from the query', async (t) => {
    const app = await redirectApp()
    t.same((await app.inject(withNext('/next', '/dashboard?tab=1'))).json(), { next: '/dashboard?tab=1' })
  })

  t.test('returns a same-host absolute next', async (t) => {
    const app = await redirectApp()
    const response = await app.inject({ url: withNext('/next', 'https://app.example/dashboard'), headers: { host: 'app.example' } })
    t.same(response.json(), { next: 'https://app.example/dashboard' })
  })

  t.test('defaults to / without a next', async (t) => {
    const app = await redirectApp()
    t.same((await app.inject('/next')).json(), { next: '/' })
  })

  t.test('returns the fallback without a next', async (t) => {
    const app = await redirectApp()
    t.same((await app.inject('/next-or?fallback=%2Fhome')).json(), { next: '/home' })
  })

  t.test('returns the fallback for an unsafe next', async (t) => {
    const app = await redirectApp()
    for (const next of ['https://evil.com/', '//evil.com', '/\\evil.com', 'javascript:alert(1)', 'http://localhost@evil.com/']) {
      t.same((await app.inject(withNext('/next', next))).json(), { next: '/' }, JSON.stringify(next))
      const response = await app.inject(`/next-or?fallback=%2Fhome&next=${encodeURIComponent(next)}`)
      t.same(response.json(), { next: '/home' }, `${JSON.stringify(next)} with a fallback`)
    }
  })

  t.test('checks absolute targets against request.host', async (t) => {
    const app = await redirectApp()
    const response = await app.inject({ url: withNext('/next', 'https://app.example/x'), headers: { host: 'other.example' } })
    t.same(response.json(), { next: '/' })
  })

  t.test('ignores X-Forwarded-Host without trustProxy', async (t) => {
    const app = await redirectApp()
    const response = await app.inject({
      url: withNext('/next', 'https://proxy.example/x'),
      headers: { host: 'app.example', 'x-forwarded-host': 'proxy.example' }
    })
    t.same(response.json(), { next: '/' })
  })

  t.test('reads next from a form body', async (t) => {
    const app = await redirectApp()
    const response = await app.inject({
      method: 'POST',
      url: '/next',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'user=ann&next=%2Faccount'
    })
    t.same(response.json(), { next: '/account' })
  })

  t.test('reads next from a JSON body', async (t) => {
    const app = await redirectApp()
    const response = await app.inject({ method: 'POST', url: '/next', payload: { next: '/account' } })
    t.same(response.json(), { next: '/account' })
  })

  t.test('rejects an unsafe or non-string next in the body', async (t) => {
    const app = await redirectApp()
    for (const next of ['//evil.com', 42, { url: '/x' }, null]) {
      const response = await app.inject({ method: 'POST', url: '/next', payload: { next } })
      t.same(response.json(), { next: '/' }, JSON.stringify(next))
    }
  })

  t.test('prefers the query over the body', async (t) => {
    const app = await redirectApp()
    const response = await app.inject({ method: 'POST', url: withNext('/next', '/from-query'), payload: { next: '/from-body' } })
    t.same(response.json(), { next: '/from-query' })
  })

  t.test('uses a custom nextField', async (t) => {
    const app = await redirectApp({ login: { nextField: 'goto' } })
    t.same((await app.inject('/next?goto=%2Fa&next=%2Fb')).json(), { next: '/a' })
  })

  t.test('a redirect to it lands on the target', async (t) => {
    const app = await redirectApp()
    const response = await app.inject(withNext('/go', '/dashboard?tab=1'))
    t.equal(response.statusCode, 302)
    t.equal(response.headers.location, '/dashboard?tab=1')
  })

  t.test('a redirect to it never fails, whatever next holds', async (t) => {
    const app = await redirectApp()
    const values = [
      '/café', '/ü?q=ü#ü', '/a b', '/a%20b', '/日本語', '/emoji/😀', '/%', '/%E0%A4%A', '/a"b', '/<script>',
      '/a\r\nSet-Cookie: x=1', '/\u2028', '/x\u0000', '%', '?next=//evil.com', '/' + 'a'.repeat(9000)
    ]
    for (const next of values) {
      const response = await app.inject(withNext('/go', next))
      t.equal(response.statusCode, 302, show(next))
      const location = response.headers.location as string
      t.match(location, /^[\x21-\x7e]+$/, 'Location is printable ASCII')
      t.ok(staysOn(location, 'localhost'), `${show(location)} stays on the host`)
      t.equal(response.headers['set-cookie'], undefined)
    }
  })

  t.test('a redirect to it stays on the host for arbitrary next values', async (t) => {
    const app = await redirectApp()
    await fc.assert(fc.asyncProperty(fc.oneof(attack, fc.string({ unit: 'binary', maxLength: 30 })), async (next) => {
      const response = await app.inject(withNext('/go', next))
      const location = response.headers.location
      return response.statusCode === 302 && typeof location === 'string' &&
        /^[\x21-\x7e]+$/.test(location) && staysOn(location, 'localhost')
    }), { numRuns: 300 })
    t.pass('every redirect stayed on the host')
  })
})
