// Bounded work per request whatever the headers (SPEC section 16): the
// session-identifier cache is bounded in entries and in characters and keeps
// no oversized keys, and the Accept header is read up to fixed limits. Work
// and memory are counted (entries, characters, string operations, heap
// bytes), never timed: timing belongs in bench/.
import t from 'tap'
import { createHash } from 'node:crypto'
import { getHeapStatistics, setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import type { FastifyRequest } from 'fastify'
import {
  defaultSessionIdentifier, IDENTIFIER_CACHE_CHARACTERS, IDENTIFIER_CACHE_ENTRIES, identifierCacheFootprint, MAX_CACHED_CLIENT_LENGTH
} from '../lib/options.js'
import { MAX_ACCEPT_RANGES, MAX_RANGE_PARAMETERS, prefersJson } from '../lib/responses.js'
import { buildApp } from './helpers.js'

const ADDRESS = '203.0.113.7'

function client (userAgent: string, ip = ADDRESS): FastifyRequest {
  return { headers: { 'user-agent': userAgent }, ip } as unknown as FastifyRequest
}

function sha512 (ip: string, userAgent: string): string {
  return createHash('sha512').update(`${ip}|${userAgent}`, 'utf8').digest('hex')
}

// A distinct string of `length` characters, on the V8 heap.
function distinct (length: number, index: number): string {
  return `${index}:`.padEnd(length, 'x')
}

setFlagsFromString('--expose-gc')
const collectGarbage = runInNewContext('gc') as () => void

function heapUsed (): number {
  collectGarbage()
  collectGarbage()
  return getHeapStatistics().used_heap_size
}

t.test('the identifier cache', async (t) => {
  t.test('200 distinct 1 MiB User-Agents do not stay in memory', async (t) => {
    const before = heapUsed()
    for (let index = 0; index < 200; index++) defaultSessionIdentifier(client(distinct(1 << 20, index)))
    const retained = heapUsed() - before
    t.ok(retained < 16 * 1024 * 1024, `${(retained / 1024 / 1024).toFixed(1)} MiB retained after 200 MiB of User-Agents`)
  })

  t.test('a client whose keys are longer than any browser\'s is hashed on every request, not kept', async (t) => {
    const huge = distinct(MAX_CACHED_CLIENT_LENGTH, 1)
    const before = identifierCacheFootprint()
    t.equal(defaultSessionIdentifier(client(huge)), sha512(ADDRESS, huge), 'the right identifier')
    t.equal(defaultSessionIdentifier(client(huge)), sha512(ADDRESS, huge), 'again')
    t.same(identifierCacheFootprint(), before, 'nothing was cached')
    const longest = huge.slice(0, MAX_CACHED_CLIENT_LENGTH - ADDRESS.length)
    t.equal(defaultSessionIdentifier(client(longest)), sha512(ADDRESS, longest))
    t.equal(identifierCacheFootprint().entries, before.entries + 1, 'the longest cached client is cached')
  })

  t.test('at most IDENTIFIER_CACHE_ENTRIES identifiers are kept, however many clients come', async (t) => {
    let most = 0
    let wrong = 0
    for (let index = 0; index < 5 * IDENTIFIER_CACHE_ENTRIES; index++) {
      const userAgent = `Browser/${index}`
      if (defaultSessionIdentifier(client(userAgent)) !== sha512(ADDRESS, userAgent)) wrong++
      most = Math.max(most, identifierCacheFootprint().entries)
    }
    t.equal(wrong, 0, 'every identifier is right')
    t.equal(most, IDENTIFIER_CACHE_ENTRIES, `never more than ${IDENTIFIER_CACHE_ENTRIES}, and full before it is emptied`)
  })

  t.test('at most IDENTIFIER_CACHE_CHARACTERS characters are kept', async (t) => {
    let most = 0
    let entriesAtMost = 0
    for (let index = 0; index < 2 * IDENTIFIER_CACHE_ENTRIES; index++) {
      defaultSessionIdentifier(client(distinct(MAX_CACHED_CLIENT_LENGTH - ADDRESS.length, index)))
      const { entries, characters } = identifierCacheFootprint()
      if (characters > most) {
        most = characters
        entriesAtMost = entries
      }
    }
    t.ok(most <= IDENTIFIER_CACHE_CHARACTERS, `${most} characters at most`)
    t.ok(most > IDENTIFIER_CACHE_CHARACTERS - 2 * MAX_CACHED_CLIENT_LENGTH, 'and the budget is used')
    t.ok(entriesAtMost < IDENTIFIER_CACHE_ENTRIES, `the characters bound came first (${entriesAtMost} entries)`)
  })

  t.test('one User-Agent from many addresses is one key with many entries', async (t) => {
    const userAgent = 'Shared/1.0'
    for (let index = 0; index < 10; index++) {
      const ip = `198.51.100.${index}`
      t.equal(defaultSessionIdentifier(client(userAgent, ip)), sha512(ip, userAgent))
    }
    const footprint = identifierCacheFootprint()
    t.ok(footprint.entries >= 10)
  })
})

// Counts the String.prototype calls `run` makes: work that does not depend on time.
function stringOperations (run: () => void): number {
  const names = ['indexOf', 'slice', 'split', 'trim', 'toLowerCase', 'substring', 'charCodeAt'] as const
  const originals = names.map((name) => [name, String.prototype[name]] as const)
  let calls = 0
  for (const [name, original] of originals) {
    // eslint-disable-next-line no-extend-native -- wrapped to count, and restored below
    Object.defineProperty(String.prototype, name, {
      configurable: true,
      writable: true,
      value: function (this: string, ...args: unknown[]) {
        calls++
        return (original as (...args: unknown[]) => unknown).apply(this, args)
      }
    })
  }
  try {
    run()
  } finally {
    // eslint-disable-next-line no-extend-native -- the original methods back
    for (const [name, original] of originals) Object.defineProperty(String.prototype, name, { configurable: true, writable: true, value: original })
  }
  return calls
}

function accepts (accept: string): FastifyRequest {
  return { headers: { accept } } as unknown as FastifyRequest
}

t.test('the Accept header', async (t) => {
  const BROWSER = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8'
  const hostile = (size: number): Record<string, string> => ({
    commas: ','.repeat(size),
    semicolons: `application/json${';'.repeat(size)}`,
    'json ranges with parameters': 'application/json;a=1;b=2;c=3;d=4;e=5;f=6;g=7;q=0.5,'.repeat(size / 50),
    'one long media type': `text/${'h'.repeat(size)}`,
    'q values': 'text/html;q=0.1;q=0.2;q=0.3;q=0.4;q=0.5;q=0.6;q=0.7,'.repeat(size / 50)
  })

  t.test('a 16 KB header makes no more string operations than a 32 KB one', async (t) => {
    const browser = stringOperations(() => prefersJson(accepts(BROWSER)))
    t.ok(browser > 0, `a browser's header: ${browser} operations`)
    const small = hostile(16 * 1024)
    const large = hostile(32 * 1024)
    for (const [label, header] of Object.entries(small)) {
      const operations = stringOperations(() => prefersJson(accepts(header)))
      t.equal(operations, stringOperations(() => prefersJson(accepts(large[label]!))), `${label}: ${operations} operations, whatever the length`)
      t.ok(operations <= MAX_ACCEPT_RANGES * (8 + 6 * MAX_RANGE_PARAMETERS), `${label}: within the limits`)
    }
  })

  async function answerTo (accept: string): Promise<number> {
    const { app } = await buildApp({ login: { loginView: '/login' } })
    return (await app.inject({ url: '/protected', headers: { accept } })).statusCode
  }

  t.test(`only the first ${MAX_ACCEPT_RANGES} media ranges are read`, async (t) => {
    const padding = 'text/plain,'.repeat(MAX_ACCEPT_RANGES - 1)
    t.equal(await answerTo(`${padding}application/json`), 401, `application/json as range ${MAX_ACCEPT_RANGES} is read`)
    t.equal(await answerTo(`${padding}text/plain,application/json`), 302, `as range ${MAX_ACCEPT_RANGES + 1} it is not`)
  })

  t.test(`a range with more than ${MAX_RANGE_PARAMETERS} parameters counts as not listed`, async (t) => {
    const parameters = (count: number) => Array.from({ length: count - 1 }, (_, index) => `p${index}=1`).concat('q=1').join(';')
    t.equal(await answerTo(`text/html;q=0.5,application/json;${parameters(MAX_RANGE_PARAMETERS)}`), 401)
    t.equal(await answerTo(`text/html;q=0.5,application/json;${parameters(MAX_RANGE_PARAMETERS + 1)}`), 302)
  })

  t.test('a 16 KB header still gets the right answer', async (t) => {
    t.equal(await answerTo(`application/json,${','.repeat(16 * 1024)}`), 401)
    t.equal(await answerTo(`text/html,${','.repeat(16 * 1024)}application/json`), 302)
  })
})
