// Open redirects: isSafeRedirectUrl and request.safeNextUrl against a corpus
// of known bypasses (public open-redirect payload lists and the bad URLs of
// Django's url_has_allowed_host_and_scheme tests), and the same-site targets
// that must keep working. Flask-Login leaves this check to the application.
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { isSafeRedirectUrl } from '../lib/index.js'
import { buildApp } from './helpers.js'

const HOST = 'good.test'
const BASE = `http://${HOST}/`

// Django's bad URLs (tests/utils_tests/test_http.py), with its allowed host
// `testserver` as good.test, `otherserver` as other.test, and the attacker's
// example.com as evil.test.
const DJANGO_BAD = [
  'http://evil.test',
  'http:///evil.test',
  'https://evil.test',
  'ftp://evil.test',
  '\\\\evil.test',
  '\\\\\\evil.test',
  '/\\\\/evil.test',
  '\\\\//evil.test',
  '/\\/evil.test',
  '\\/evil.test',
  '/\\evil.test',
  'http:/\\//evil.test',
  'http:\\/evil.test',
  'http:/\\evil.test',
  'javascript:alert("XSS")',
  '\njavascript:alert(x)',
  'java\nscript:alert(x)',
  '\x08//evil.test',
  'http://other.test\\@evil.test',
  'http:\\\\good.test\\@evil.test',
  'http://good.test\\me:pass@evil.test',
  'http://good.test\\@evil.test',
  'http:\\\\good.test\\confirm\\me@evil.test',
  'http:999999999',
  'ftp:9999999999',
  '\n',
  'http://[2001:cdba:0000:0000:0000:0000:3257:9652/',
  'http://2001:cdba:0000:0000:0000:0000:3257:9652]/'
]

// Further bypasses from public open-redirect payload lists.
const PAYLOADS = [
  // scheme-relative and extra slashes
  '//evil.test',
  '///evil.test',
  '////evil.test',
  '//EVIL.test',
  '//evil.test/%2F..',
  // control characters and whitespace where browsers drop or fold them
  '/\t/evil.test',
  '\t//evil.test',
  '/\n/evil.test',
  '/\r/evil.test',
  '/\r\n/evil.test',
  ' //evil.test',
  ' https://evil.test',
  'https://evil.test ',
  'ht\ttp://evil.test',
  'https://evil\t.test',
  '\x00//evil.test',
  '//evil.test\x00.good.test',
  '//evil.test%00.good.test',
  '\u00a0//evil.test',
  '\u3000//evil.test',
  '\ufeff//evil.test',
  '\u2028//evil.test',
  '\u200b//evil.test',
  // scripting and other schemes
  'javascript:alert(1)',
  'JaVaScRiPt:alert(1)',
  'java\tscript:alert(1)',
  'java\x00script:alert(1)',
  'javascript://good.test/%0aalert(1)',
  'javascript://%0aalert(1)//good.test',
  'data:text/html,<script>alert(1)</script>',
  'data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==',
  'vbscript:msgbox(1)',
  'file:///etc/passwd',
  'blob:https://good.test/x',
  'ws://good.test/',
  'wss://good.test/',
  // userinfo: the host is what follows the @
  'https://good.test@evil.test',
  'https://good.test:443@evil.test',
  'http://good.test:80@evil.test',
  '//good.test@evil.test',
  'https://evil.test\\@good.test',
  'https://evil.test\\.good.test',
  'https://good.test%40evil.test',
  'http://good.test%2F@evil.test',
  'http://evil.test%23@good.test',
  'https:///good.test@evil.test',
  'https://user:pass@good.test/',
  // the allowed host as a prefix, fragment, query or path of another
  'https://good.test.evil.test',
  'https://GOOD.test.EVIL.test',
  'https://evilgood.test',
  'https://evil.test#good.test',
  'https://evil.test?good.test',
  'https://evil.test/good.test',
  // schemes without (enough) slashes, read differently on http and https pages
  'http:evil.test',
  'https:evil.test',
  'http:/evil.test',
  'https:/evil.test',
  'https:\\\\evil.test',
  'http:%2f%2fevil.test',
  // mixed case, ports and other origins of the same name
  'HTTP://EVIL.TEST',
  'hTtPs://eViL.tEsT/',
  'http://evil.test:80',
  'https://good.test:8443/',
  // IP literals in their many spellings
  'http://127.0.0.1',
  'http://2130706433',
  'http://0x7f000001',
  'http://0177.0.0.1',
  '//127.1',
  'http://[::1]',
  '//[::1]/',
  'http://[::ffff:127.0.0.1]',
  // Unicode and percent-encoded hosts that normalise to evil.test
  '//ⒺⓋⒾⓁ.test',
  'https://ⒺⓋⒾⓁ.test',
  '//evil。test',
  '//evil%E3%80%82test',
  'https://%65vil.test',
  'http://evil%2Etest',
  // dot segments that collapse into a scheme-relative path
  '/.//evil.test',
  '/./\\evil.test',
  '/..//evil.test',
  '/x/..//evil.test',
  './/evil.test',
  '..//evil.test',
  '//%2e%2e/evil.test',
  '/\\@evil.test',
  // empty and degenerate
  '',
  '//',
  '///',
  'http://'
]

const BYPASSES = [...DJANGO_BAD, ...PAYLOADS]

// Values that look like bypasses but are paths on this host once parsed:
// they may be accepted, but only as a percent-encoded same-host path.
const LOOKALIKE_PATHS = [
  '／／evil.test',
  '〱evil.test',
  'ⒺⓋⒾⓁ.test',
  '%2f%2fevil.test',
  '/%2f%2fevil.test',
  '%5c%5cevil.test',
  '/%09/evil.test',
  '%09//evil.test'
]

// Django's good URLs, with the same renaming, then more same-site targets.
const SAME_SITE = [
  '/view/?param=http://example.com',
  '/view/?param=https://example.com',
  '/view?param=ftp://example.com',
  'view/?param=//example.com',
  'https://good.test/',
  'HTTPS://good.test/',
  '//good.test/',
  'http://good.test/confirm?email=me@example.com',
  '/url%20with%20spaces/',
  'path/http:2222222222',
  '/',
  '/path?x=1#frag',
  'path/relative',
  './here',
  '../up',
  '?q=1',
  '#frag',
  'https://good.test/x',
  'http://good.test/x',
  '//good.test/x',
  'HTTPS://GOOD.TEST/',
  'https://good.test:443/',
  'http://good.test:80/',
  '/café',
  '/日本語?q=ü',
  '/confirm/me@example.com',
  '/a//b',
  '/search?q=a+b&next=%2F%2Fevil.test',
  '/x?next=https://evil.test'
]

/** A printable name for a payload: TAP output must not carry its control or separator characters. */
function show (value: unknown): string {
  return String(JSON.stringify(value)).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** An app with GET|POST /go → reply.redirect(request.safeNextUrl('/')). */
async function redirectApp (): Promise<FastifyInstance> {
  const { app } = await buildApp()
  app.route({
    method: ['GET', 'POST'],
    url: '/go',
    config: { login: 'optional' },
    handler: async (request, reply) => reply.redirect(request.safeNextUrl('/'))
  })
  return app
}

t.test('the corpus is large enough', async (t) => {
  t.ok(BYPASSES.length >= 60, `${BYPASSES.length} bypass payloads`)
  t.ok(SAME_SITE.length >= 20, `${SAME_SITE.length} same-site targets`)
})

t.test('isSafeRedirectUrl rejects every bypass payload', async (t) => {
  for (const payload of BYPASSES) t.equal(isSafeRedirectUrl(payload, HOST), false, show(payload))
})

t.test('isSafeRedirectUrl accepts same-site targets', async (t) => {
  for (const target of SAME_SITE) t.equal(isSafeRedirectUrl(target, HOST), true, show(target))
})

t.test('isSafeRedirectUrl accepts any host of a list, and only those', async (t) => {
  const hosts = ['other.test', HOST]
  t.equal(isSafeRedirectUrl('https://other.test/x', hosts), true)
  t.equal(isSafeRedirectUrl('//good.test/x', hosts), true)
  t.equal(isSafeRedirectUrl('https://third.test/x', hosts), false)
  t.equal(isSafeRedirectUrl('http://good.com/good', 'good.com'), true)
  t.equal(isSafeRedirectUrl('http://good.co/evil', 'good.com'), false)
})

t.test('isSafeRedirectUrl compares ports', async (t) => {
  t.equal(isSafeRedirectUrl('http://good.test:8080/', 'good.test:8080'), true)
  t.equal(isSafeRedirectUrl('//good.test:8080/x', 'good.test:8080'), true)
  t.equal(isSafeRedirectUrl('http://good.test/', 'good.test:8080'), false)
  t.equal(isSafeRedirectUrl('http://good.test:8080/', 'good.test'), false)
  t.equal(isSafeRedirectUrl('http://good.test:8081/', 'good.test:8080'), false)
})

t.test('isSafeRedirectUrl rejects a non-string', async (t) => {
  for (const value of [undefined, null, 42, {}, ['/'], true]) {
    t.equal(isSafeRedirectUrl(value as unknown as string, HOST), false, String(value))
  }
})

t.test('Unicode and percent-encoded look-alikes only ever become same-host paths', async (t) => {
  const app = await redirectApp()
  for (const payload of LOOKALIKE_PATHS) {
    const response = await app.inject({ url: `/go?next=${encodeURIComponent(payload)}`, headers: { host: HOST } })
    const location = String(response.headers.location)
    t.equal(response.statusCode, 302, show(payload))
    t.match(location, /^\/(?!\/)[\x21-\x7e]*$/, `${show(payload)} → ${location}: an ASCII path, not scheme-relative`)
    // Even a proxy that applies Unicode compatibility folding cannot turn it into another host.
    t.equal(new URL(location.normalize('NFKC'), BASE).host, HOST, `${show(payload)} stays on ${HOST} after NFKC`)
  }
})

t.test('GET /go redirects every bypass payload to the fallback', async (t) => {
  const app = await redirectApp()
  for (const payload of BYPASSES) {
    const response = await app.inject({ url: `/go?next=${encodeURIComponent(payload)}`, headers: { host: HOST } })
    t.equal(response.statusCode, 302, `${show(payload)}: 302, never 500`)
    t.equal(response.headers.location, '/', show(payload))
  }
})

t.test('GET /go keeps every redirect on the host', async (t) => {
  const app = await redirectApp()
  for (const payload of [...BYPASSES, ...LOOKALIKE_PATHS, ...SAME_SITE]) {
    const response = await app.inject({ url: `/go?next=${encodeURIComponent(payload)}`, headers: { host: HOST } })
    t.equal(response.statusCode, 302, `${show(payload)}: 302, never 500`)
    const location = String(response.headers.location)
    t.equal(new URL(location, BASE).host, HOST, `${show(payload)} → ${location}`)
    // A browser reads a leading pair of (back)slashes as scheme-relative: only this host may follow.
    const schemeRelative = /^[\t\n\r ]*[/\\]{2}/.test(location)
    t.ok(!schemeRelative || location.startsWith(`//${HOST}/`), `${show(payload)}: no scheme-relative redirect elsewhere`)
  }
})

t.test('GET /go follows same-site targets', async (t) => {
  const app = await redirectApp()
  for (const target of SAME_SITE.filter((value) => value !== '/')) {
    const response = await app.inject({ url: `/go?next=${encodeURIComponent(target)}`, headers: { host: HOST } })
    t.not(response.headers.location, '/', `${show(target)} is not replaced by the fallback`)
    const expected = new URL(target, BASE)
    const actual = new URL(String(response.headers.location), BASE)
    t.equal(actual.pathname + actual.search + actual.hash, expected.pathname + expected.search + expected.hash, show(target))
  }
})

t.test('an absolute same-host target keeps its scheme; a scheme-relative one stays scheme-relative', async (t) => {
  const app = await redirectApp()
  const go = async (next: string) => (await app.inject({ url: `/go?next=${encodeURIComponent(next)}`, headers: { host: HOST } })).headers.location
  t.equal(await go('HTTPS://GOOD.TEST/x'), 'https://good.test/x')
  t.equal(await go('//good.test/x'), '//good.test/x')
})

t.test('encoded bypasses in the raw query string are decoded once, then rejected', async (t) => {
  const app = await redirectApp()
  const raw = [
    '%2F%2Fevil.test', '%2f%2fevil.test', '%5C%5Cevil.test', '%5c%5cevil.test', '/%5Cevil.test',
    '%09//evil.test', '/%09/evil.test', '%0A//evil.test', '%00//evil.test', '%20//evil.test',
    'https%3A%2F%2Fevil.test', 'javascript%3Aalert(1)', 'java%0ascript:alert(1)', 'https://good.test%40evil.test',
    '%E3%80%80//evil.test', '%2F%2F%65vil.test'
  ]
  for (const query of raw) {
    const response = await app.inject({ url: `/go?next=${query}`, headers: { host: HOST } })
    t.equal(response.statusCode, 302, query)
    t.equal(response.headers.location, '/', query)
  }
})

t.test('a double-encoded bypass stays a same-host path', async (t) => {
  const app = await redirectApp()
  const response = await app.inject({ url: '/go?next=%252F%252Fevil.test', headers: { host: HOST } })
  t.equal(response.headers.location, '/%2F%2Fevil.test')
})

t.test('safeNextUrl re-serialises targets so reply.redirect does not throw', async (t) => {
  const app = await redirectApp()
  app.get('/raw', { config: { login: 'optional' } }, async (request, reply) => reply.redirect((request.query as { next: string }).next))
  const go = (url: string) => app.inject({ url, headers: { host: HOST } })
  t.equal((await go(`/raw?next=${encodeURIComponent('/日本語')}`)).statusCode, 500, 'a raw non-Latin-1 target makes reply.redirect throw')
  const response = await go(`/go?next=${encodeURIComponent('/日本語?q=ü#é')}`)
  t.equal(response.statusCode, 302)
  t.equal(response.headers.location, '/%E6%97%A5%E6%9C%AC%E8%AA%9E?q=%C3%BC#%C3%A9')
  t.equal((await go(`/go?next=${encodeURIComponent('/café')}`)).headers.location, '/caf%C3%A9')
  t.equal((await go(`/go?next=${encodeURIComponent('/url%20with%20spaces/')}`)).headers.location, '/url%20with%20spaces/')
})

t.test('a target with raw spaces falls back instead of reaching reply.redirect', async (t) => {
  const app = await redirectApp()
  const response = await app.inject({ url: `/go?next=${encodeURIComponent('/url with spaces/')}`, headers: { host: HOST } })
  t.equal(response.statusCode, 302)
  t.equal(response.headers.location, '/')
})

t.test('safeNextUrl checks against the request host', async (t) => {
  const app = await redirectApp()
  const go = (host: string) => app.inject({ url: `/go?next=${encodeURIComponent('https://good.test/x')}`, headers: { host } })
  t.equal((await go(HOST)).headers.location, 'https://good.test/x')
  t.equal((await go('other.test')).headers.location, '/', 'good.test is not the host of a request to other.test')
  t.equal((await go('good.test:8080')).headers.location, '/', 'nor of a request to another port')
})

t.test('safeNextUrl reads the parsed body and falls back for bypasses there', async (t) => {
  const app = await redirectApp()
  const post = (next: unknown) => app.inject({ method: 'POST', url: '/go', headers: { host: HOST }, payload: { next } })
  t.equal((await post('/account')).headers.location, '/account')
  t.equal((await post('//evil.test')).headers.location, '/')
  t.equal((await post('https://good.test@evil.test')).headers.location, '/')
})

t.test('safeNextUrl falls back for values that are not strings', async (t) => {
  const app = await redirectApp()
  for (const next of [42, true, null, { url: '/x' }, [['//evil.test']]]) {
    const response = await app.inject({ method: 'POST', url: '/go', headers: { host: HOST }, payload: { next } })
    t.equal(response.statusCode, 302, show(next))
    t.equal(response.headers.location, '/', show(next))
  }
})

t.test('a repeated next parameter cannot smuggle a bypass', async (t) => {
  const app = await redirectApp()
  const response = await app.inject({ url: '/go?next=%2F%2Fevil.test&next=%2Fsafe', headers: { host: HOST } })
  t.equal(response.statusCode, 302)
  t.equal(new URL(String(response.headers.location), BASE).host, HOST)
})

t.test('safeNextUrl uses the given fallback', async (t) => {
  const { app } = await buildApp()
  app.get('/go', { config: { login: 'optional' } }, async (request, reply) => reply.redirect(request.safeNextUrl('/home')))
  const response = await app.inject({ url: '/go?next=%2F%2Fevil.test', headers: { host: HOST } })
  t.equal(response.headers.location, '/home')
  t.equal((await app.inject({ url: '/go', headers: { host: HOST } })).headers.location, '/home', 'no next at all')
})

// No scheme downgrade (SPEC section 16): a page served over HTTPS never sends
// the user on to plain HTTP, even on its own host.
t.test('isSafeRedirectUrl with requireHttps refuses http: targets', async (t) => {
  const strict = { requireHttps: true }
  for (const url of ['http://good.test/x', 'HTTP://GOOD.TEST/x', 'http://good.test:443/x', 'http:\\\\good.test/x']) {
    t.equal(isSafeRedirectUrl(url, HOST, strict), false, `${show(url)} is refused`)
    t.equal(isSafeRedirectUrl(url, ['good.test', 'good.test:443'], strict), false, `${show(url)} is refused for a list of hosts`)
  }
  t.equal(isSafeRedirectUrl('http://good.test/x', HOST), true, 'accepted without requireHttps')
  t.equal(isSafeRedirectUrl('http://good.test/x', HOST, { requireHttps: false }), true)
  t.equal(isSafeRedirectUrl('http://good.test/x', HOST, {}), true)
  for (const url of ['https://good.test/x', '//good.test/x', '/x', 'x?y#z', '?q=1']) {
    t.equal(isSafeRedirectUrl(url, HOST, strict), true, `${show(url)} stays on https: accepted`)
  }
  for (const url of BYPASSES) t.equal(isSafeRedirectUrl(url, HOST, strict), false, show(url))
})

t.test('safeNextUrl on an HTTPS request refuses an http: target, and keeps https ones', async (t) => {
  const { app } = await buildApp({ fastify: { trustProxy: true } })
  app.get('/go', { config: { login: 'optional' } }, async (request, reply) => reply.redirect(request.safeNextUrl('/')))
  const go = async (next: string, proto: string) => (await app.inject({
    url: `/go?next=${encodeURIComponent(next)}`,
    headers: { host: HOST, 'x-forwarded-proto': proto }
  })).headers.location
  t.equal(await go('http://good.test/account', 'https'), '/', 'a downgrade falls back')
  t.equal(await go('https://good.test/account', 'https'), 'https://good.test/account')
  t.equal(await go('//good.test/account', 'https'), '//good.test/account', 'scheme-relative stays on https')
  t.equal(await go('/account', 'https'), '/account')
  t.equal(await go('http://good.test/account', 'http'), 'http://good.test/account', 'a plain-HTTP page may name http:')
})
