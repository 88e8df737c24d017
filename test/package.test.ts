// The package as a new user gets it. `npm pack` runs in a copy of the
// sources without dist/ (so `prepare` has to build it), the tarball is
// installed into a throwaway consumer beside fastify, @fastify/cookie and
// @fastify/session (from npm's cache, which `npm ci` filled), and the
// consumer uses it from ESM, from CommonJS and from strict TypeScript. Last,
// README.md's quick start runs as pasted against the installed package.
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { childEnv } from './child-env.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const run = promisify(execFile)
const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string
  engines: { node: string }
  files: string[]
}

// Packing builds the package (two TypeScript compilations); installing reads npm's cache.
t.setTimeout(300_000)

const work = mkdtempSync(join(tmpdir(), 'fastify-login-package-'))
t.teardown(() => rmSync(work, { recursive: true, force: true }))

/** The installed version of one of this project's dependencies: the consumer gets what the tests ran against. */
function versionOf (name: string): string {
  return (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version
}

/** Runs npm; resolves with its output (npm prints its warnings on stderr). */
async function npm (cwd: string, args: string[]): Promise<{ stdout: string, stderr: string }> {
  return run('npm', args, { cwd, env: childEnv(), maxBuffer: 16 * 1024 * 1024 })
}

const source = join(work, 'source')
const consumer = join(work, 'consumer')
// Directories of this checkout that a fresh clone does not have.
const SKIPPED = new Set(['node_modules', 'dist', '.git', '.tap', 'coverage', 'test/screenshots', 'example/data'])
const APP_DEPENDENCIES = ['fastify', '@fastify/cookie', '@fastify/session', '@fastify/formbody', 'typescript', '@types/node']
let packedFiles: string[] = []
let installOutput = ''

interface PackResult { filename: string, files: Array<{ path: string }> }

t.before(async () => {
  // The sources as a fresh clone has them: no dist/, no build output.
  cpSync(ROOT, source, { recursive: true, filter: (path) => !SKIPPED.has(relative(ROOT, path)) })
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(source, 'node_modules'))
  const packed = (JSON.parse((await npm(source, ['pack', '--json', '--pack-destination', work])).stdout) as PackResult[])[0]!
  packedFiles = packed.files.map((file) => file.path).sort()

  // The consumer: the tarball beside the application's own dependencies.
  mkdirSync(consumer)
  writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2))
  installOutput = (await npm(consumer, [
    'install', '--prefer-offline', '--no-audit', '--no-fund', join(work, packed.filename),
    ...APP_DEPENDENCIES.map((name) => `${name}@${versionOf(name)}`)
  ])).stderr
})

t.test('npm pack builds the package and ships only what users need', async (t) => {
  for (const file of ['package.json', 'README.md', 'LICENSE', 'dist/esm/lib/index.js', 'dist/esm/lib/index.d.ts', 'dist/esm/types/index.d.ts',
    'dist/cjs/main.js', 'dist/cjs/main.d.ts', 'dist/cjs/package.json', 'dist/esm/entries/testing.js', 'dist/cjs/entries/testing.js']) {
    t.ok(packedFiles.includes(file), `ships ${file}`)
  }
  t.same(packedFiles.filter((file) => !/^(?:package\.json|README\.md|LICENSE|dist\/(?:esm|cjs)\/.+\.(?:js|d\.ts|json))$/.test(file)), [],
    'nothing else: no sources, tests, source maps or build stamps')
  t.same(packedFiles.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts')), [], 'no TypeScript sources')
})

t.test('installs without an engine warning on the Node.js versions it claims', async (t) => {
  const [major] = process.versions.node.split('.').map(Number)
  const lowest = Number(/^>=(\d+)$/.exec(manifest.engines.node)?.[1])
  t.ok(Number.isInteger(lowest), `engines.node is ">=N" (${manifest.engines.node})`)
  if (major! >= lowest) {
    t.notMatch(installOutput, /EBADENGINE/, `no EBADENGINE on Node.js ${process.version}`)
  } else {
    t.match(installOutput, /EBADENGINE[\s\S]*fastify-login/, `Node.js ${process.version} is below engines.node: npm says so`)
  }
})

/** Runs a script in the consumer and parses the JSON it prints. */
async function runInConsumer (code: string, type: 'module' | 'commonjs'): Promise<unknown> {
  const args = type === 'module' ? ['--input-type=module', '-e', code] : ['-e', code]
  const { stdout } = await run(process.execPath, args, { cwd: consumer, env: childEnv() })
  return JSON.parse(stdout)
}

// A small app that logs user 1 in through a route, then asks who it is, and
// is refused on a guarded route without a login.
const APP_SCRIPT = `
async function tryLogin (Fastify, fastifyCookie, fastifySession, fastifyLogin, loginAs) {
  const users = new Map([['1', { id: '1', name: 'Ann' }]])
  const app = Fastify()
  await app.register(fastifyCookie)
  await app.register(fastifySession, { secret: 'session-secret-of-at-least-32-characters!', cookie: { secure: false }, saveUninitialized: false })
  await app.register(fastifyLogin, { secret: 'login-secret-of-at-least-32-characters!!', userLoader: (id) => users.get(id) ?? null })
  app.post('/login', async (request) => ({ ok: await request.loginUser(users.get('1'), { remember: true }) }))
  app.get('/me', async (request) => ({ user: request.isAuthenticated() ? request.user.name : null, fresh: request.loginFresh }))
  app.get('/private', { config: { login: 'required' } }, async (request) => ({ user: request.user.name }))
  const login = await app.inject({ method: 'POST', url: '/login' })
  const cookie = login.cookies.map((item) => item.name + '=' + item.value).join('; ')
  const me = await app.inject({ url: '/me', headers: { cookie } })
  const privatePage = await app.inject({ url: '/private', headers: { cookie } })
  const anonymous = await app.inject({ url: '/me' })
  const refused = await app.inject({ url: '/private' })
  const testCookie = await loginAs(app, users.get('1'), { fresh: false })
  const asTest = await app.inject({ url: '/me', headers: { cookie: testCookie } })
  await app.close()
  return {
    login: login.json(),
    cookies: login.cookies.map((item) => item.name).sort(),
    me: me.json(),
    private: privatePage.json(),
    anonymous: anonymous.json(),
    refused: { status: refused.statusCode, code: refused.json().code },
    asTest: asTest.json()
  }
}
`

const EXPECTED_APP = {
  login: { ok: true },
  cookies: ['remember_token', 'sessionId'],
  me: { user: 'Ann', fresh: true },
  private: { user: 'Ann' },
  anonymous: { user: null, fresh: false },
  refused: { status: 401, code: 'FST_LOGIN_UNAUTHORIZED' },
  asTest: { user: 'Ann', fresh: false }
}

t.test('ESM: default and named imports are the plugin, with the helpers beside it', async (t) => {
  const result = await runInConsumer(`
    import fastifyLogin, { fastifyLogin as named, UserMixin, isSafeRedirectUrl, SESSION_KEYS } from 'fastify-login'
    import { loginAs } from 'fastify-login/testing'
    class User extends UserMixin { constructor (id) { super(); this.id = id } }
    console.log(JSON.stringify({
      plugin: typeof fastifyLogin,
      same: fastifyLogin === named,
      pluginName: fastifyLogin[Symbol.for('plugin-meta')]?.name,
      userId: new User(7).getId(),
      safe: isSafeRedirectUrl('/next', ['example.com']),
      unsafe: isSafeRedirectUrl('https://evil.test/', ['example.com']),
      hasUserIdKey: SESSION_KEYS.includes('_user_id'),
      loginAs: typeof loginAs
    }))
  `, 'module')
  t.same(result, {
    plugin: 'function',
    same: true,
    pluginName: 'fastify-login',
    userId: '7',
    safe: true,
    unsafe: false,
    hasUserIdKey: true,
    loginAs: 'function'
  })
})

t.test('ESM: an app logs a user in, and a guarded route refuses an anonymous request', async (t) => {
  const result = await runInConsumer(`
    import Fastify from 'fastify'
    import fastifyCookie from '@fastify/cookie'
    import fastifySession from '@fastify/session'
    import fastifyLogin from 'fastify-login'
    import { loginAs } from 'fastify-login/testing'
    ${APP_SCRIPT}
    console.log(JSON.stringify(await tryLogin(Fastify, fastifyCookie, fastifySession, fastifyLogin, loginAs)))
  `, 'module')
  t.same(result, EXPECTED_APP)
})

t.test('CommonJS: require gives the plugin itself with .default, .fastifyLogin and every named export', async (t) => {
  const result = await runInConsumer(`
    const fastifyLogin = require('fastify-login')
    const testing = require('fastify-login/testing')
    import('fastify-login').then(async (esm) => {
      const esmTesting = await import('fastify-login/testing')
      const names = Object.keys(esm).filter((name) => name !== 'default')
      console.log(JSON.stringify({
        plugin: typeof fastifyLogin,
        pluginName: fastifyLogin[Symbol.for('plugin-meta')]?.name,
        defaultIsPlugin: fastifyLogin.default === fastifyLogin,
        namedIsPlugin: fastifyLogin.fastifyLogin === fastifyLogin,
        names,
        missing: names.filter((name) => !(name in fastifyLogin)),
        differentType: names.filter((name) => typeof fastifyLogin[name] !== typeof esm[name]),
        differentValue: names.filter((name) => typeof esm[name] !== 'function' &&
          JSON.stringify(fastifyLogin[name]) !== JSON.stringify(esm[name])),
        testing: Object.keys(testing).sort(),
        esmTesting: Object.keys(esmTesting).sort()
      }))
    })
  `, 'commonjs') as { names: string[], testing: string[], esmTesting: string[] }
  t.match(result, {
    plugin: 'function',
    pluginName: 'fastify-login',
    defaultIsPlugin: true,
    namedIsPlugin: true,
    missing: [],
    differentType: [],
    differentValue: []
  })
  for (const name of ['fastifyLogin', 'UserMixin', 'AnonymousUserMixin', 'isSafeRedirectUrl', 'SESSION_KEYS', 'FST_LOGIN_UNAUTHORIZED']) {
    t.ok(result.names.includes(name), `${name} is a named export`)
  }
  t.ok(result.testing.includes('loginAs'), 'fastify-login/testing has loginAs')
  t.same(result.testing, result.esmTesting, 'fastify-login/testing has the same exports in both forms')
})

t.test('CommonJS: the required plugin logs a user in, and refuses an anonymous request', async (t) => {
  const result = await runInConsumer(`
    ${APP_SCRIPT}
    tryLogin(require('fastify'), require('@fastify/cookie'), require('@fastify/session'), require('fastify-login'), require('fastify-login/testing').loginAs)
      .then((result) => console.log(JSON.stringify(result)))
  `, 'commonjs')
  t.same(result, EXPECTED_APP)
})

t.test('the ESM loginAs works with the CommonJS plugin', async (t) => {
  const result = await runInConsumer(`
    import { createRequire } from 'node:module'
    import { loginAs } from 'fastify-login/testing'
    const require = createRequire(process.cwd() + '/')
    ${APP_SCRIPT}
    console.log(JSON.stringify(await tryLogin(require('fastify'), require('@fastify/cookie'), require('@fastify/session'), require('fastify-login'), loginAs)))
  `, 'module')
  t.same(result, EXPECTED_APP)
})

// Strict TypeScript in both module forms, with the library's declarations
// checked too (skipLibCheck: false) and the user type merged once per program.
const TS_CONFIG = {
  compilerOptions: {
    target: 'es2022',
    module: 'nodenext',
    moduleResolution: 'nodenext',
    strict: true,
    skipLibCheck: false,
    noEmit: true,
    types: ['node']
  }
}

const TS_ESM_APP = `import Fastify from 'fastify'
import fastifyCookie from '@fastify/cookie'
import fastifySession from '@fastify/session'
import fastifyLogin, { UserMixin, FST_LOGIN_UNAUTHORIZED, type FastifyLoginOptions } from 'fastify-login'
import { loginAs } from 'fastify-login/testing'

class User extends UserMixin {
  constructor (readonly id: string, readonly email: string) { super() }
}

declare module 'fastify-login' {
  interface FastifyLoginTypes { user: User }
}

const users = new Map([['1', new User('1', 'ann@example.com')]])
const options: FastifyLoginOptions = {
  secret: 'login-secret-of-at-least-32-characters!!',
  userLoader: async (id) => users.get(id) ?? null
}
const app = Fastify()
await app.register(fastifyCookie)
await app.register(fastifySession, { secret: 'session-secret-of-at-least-32-characters!', cookie: { secure: 'auto' } })
await app.register(fastifyLogin, options)

app.get('/me', async (request) => {
  if (!request.isAuthenticated()) return { email: null }
  const email: string = request.user.email
  return { email }
})
app.get('/unchecked', async (request) => {
  // @ts-expect-error request.user may be the anonymous user until isAuthenticated() says otherwise
  const email: string = request.user.email
  return { email }
})
app.get('/private', { config: { login: 'required' }, preHandler: app.requireLogin }, async () => 'ok')
// @ts-expect-error config.login takes 'required', 'fresh', 'optional' or false
app.get('/typo', { config: { login: 'requried' } }, async () => 'ok')

const cookie: string = await loginAs(app, users.get('1')!)
const code: 'FST_LOGIN_UNAUTHORIZED' = new FST_LOGIN_UNAUTHORIZED().code
export { cookie, code }
`

const TS_CJS_APP = `import fastify = require('fastify')
import fastifyLogin = require('fastify-login')
import testing = require('fastify-login/testing')

class Member extends fastifyLogin.UserMixin {
  constructor (readonly id: number, readonly team: string) { super() }
}

declare module 'fastify-login' {
  interface FastifyLoginTypes { user: Member }
}

export async function start (): Promise<string> {
  const app = fastify()
  await app.register(fastifyLogin, { secret: 'login-secret-of-at-least-32-characters!!', userLoader: () => new Member(1, 'blue') })
  app.get('/team', async (request) => request.isAuthenticated() ? request.user.team : null)
  // @ts-expect-error secret is required
  await app.register(fastifyLogin.fastifyLogin, { userLoader: () => null })
  const keys: readonly string[] = fastifyLogin.SESSION_KEYS
  return testing.loginAs(app, new Member(2, 'red')) + keys.join()
}
`

t.test('a strict TypeScript consumer compiles, in ESM and in CommonJS, library declarations included', async (t) => {
  for (const [folder, file, code] of [['esm', 'app.mts', TS_ESM_APP], ['cjs', 'app.cts', TS_CJS_APP]] as const) {
    const dir = join(consumer, folder)
    mkdirSync(dir, { recursive: true })
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify({ ...TS_CONFIG, include: [file] }))
    writeFileSync(join(dir, file), code)
  }
  const tsc = join(consumer, 'node_modules', 'typescript', 'bin', 'tsc')
  const result = await run(process.execPath, [tsc, '-b', 'esm', 'cjs'], { cwd: consumer, env: childEnv() }).then(() => '', (error: { stdout: string }) => error.stdout)
  t.equal(result, '', 'tsc reports no error')
})

// README.md's quick start, as a new user follows it.

interface QuickStart {
  commands: string[]
  code: string
  fileName: string
  credentials: { username: string, password: string }
}

function readQuickStart (): QuickStart {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const section = /^## Quick start\n([\s\S]*?)^## /m.exec(readme)?.[1]
  if (section === undefined) throw new Error('README.md has no "## Quick start" section')
  const blocks = [...section.matchAll(/^```(\w+)\n([\s\S]*?)^```$/gm)].map((match) => ({ language: match[1], text: match[2]! }))
  const commands = blocks.filter((block) => block.language === 'sh').flatMap((block) => block.text.split('\n')).filter((line) => line.trim() !== '')
  const code = blocks.filter((block) => block.language === 'js').map((block) => block.text)
  if (code.length !== 1) throw new Error(`the quick start should have one js block, not ${code.length}`)
  const fileName = /Save\s+this\s+as\s+`([^`]+)`/.exec(section)?.[1]
  const credentials = /log\s+in\s+as\s+`([^`]+)`\s+\/\s+`([^`]+)`/.exec(section)
  if (fileName === undefined || credentials === null) throw new Error('the quick start should say where to save the code and whom to log in as')
  return { commands, code: code[0]!, fileName, credentials: { username: credentials[1]!, password: credentials[2]! } }
}

/** A browser's cookie jar over fetch, for one origin; redirects are not followed. */
class Browser {
  readonly #cookies = new Map<string, string>()

  async request (url: string, init: { method?: string, form?: Record<string, string> } = {}): Promise<{ status: number, location: string | null, body: string }> {
    const headers: Record<string, string> = { accept: 'text/html' }
    if (this.#cookies.size > 0) headers.cookie = [...this.#cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    let body: string | undefined
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(init.form).toString()
    }
    const response = await fetch(url, { method: init.method ?? 'GET', headers, body, redirect: 'manual' })
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';')
      const name = pair.slice(0, pair.indexOf('='))
      const expired = attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute))
      if (expired || pair.endsWith('=')) this.#cookies.delete(name)
      else this.#cookies.set(name, pair.slice(pair.indexOf('=') + 1))
    }
    return { status: response.status, location: response.headers.get('location'), body: await response.text() }
  }

  /** Closes the browser: the cookies without a lifetime go. */
  restart (keep: string[]): void {
    for (const name of this.#cookies.keys()) if (!keep.includes(name)) this.#cookies.delete(name)
  }

  has (name: string): boolean {
    return this.#cookies.has(name)
  }
}

/** Starts the quick start's server; resolves with the base URL it logs. */
async function startQuickStart (t: Test, folder: string, command: string): Promise<{ base: string, output: () => string }> {
  const env = childEnv({ PORT: '0' })
  delete env.SESSION_SECRET
  delete env.LOGIN_SECRET
  const child = spawn('sh', ['-c', `exec ${command}`], { cwd: folder, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
  })
  let output = ''
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the quick start did not log where it listens within 20 s:\n${output}`)), 20_000)
    const listen = (chunk: Buffer): void => {
      output += chunk.toString()
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match !== null) {
        clearTimeout(timer)
        resolve(match[1]!)
      }
    }
    child.stdout.on('data', listen)
    child.stderr.on('data', listen)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the quick start exited with code ${String(code)}:\n${output}`))
    })
  })
  return { base, output: () => output }
}

t.test('README.md: the quick start runs as pasted into a fresh folder', async (t) => {
  const quickStart = readQuickStart()
  const folder = join(work, 'quick-start')
  mkdirSync(folder)
  const install = quickStart.commands.find((command) => command.startsWith('npm install '))
  const imported = [...quickStart.code.matchAll(/^import .* from '([^']+)'$/gm)].map((match) => match[1]).sort()
  t.same(install?.split(/\s+/).slice(2).sort(), imported, 'npm install names exactly the packages the code imports')
  const start = quickStart.commands.at(-1)!
  t.match(start, new RegExp(`\\b${quickStart.fileName.replace('.', '\\.')}$`), 'the last command starts the saved file')

  for (const command of quickStart.commands.slice(0, -1)) {
    if (command === install) {
      // The packages, fastify-login from its tarball, are the consumer's.
      symlinkSync(join(consumer, 'node_modules'), join(folder, 'node_modules'))
      continue
    }
    await run('sh', ['-c', command], { cwd: folder, env: childEnv() })
  }
  t.equal((JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { type?: string }).type, 'module', 'package.json says "type": "module"')
  t.match(readFileSync(join(folder, '.env'), 'utf8'), /^SESSION_SECRET=[\w-]{32,}\nLOGIN_SECRET=[\w-]{32,}\n$/, 'the secrets are generated')
  writeFileSync(join(folder, quickStart.fileName), quickStart.code)

  const { base, output } = await startQuickStart(t, folder, start)
  const browser = new Browser()
  const anonymous = await browser.request(`${base}/profile`)
  t.equal(anonymous.status, 302, '/profile sends an anonymous visitor away')
  t.equal(anonymous.location, '/login?next=%2Fprofile', '...to the login form, with the way back')

  const form = await browser.request(`${base}${anonymous.location}`)
  t.equal(form.status, 200)
  t.match(form.body, /<form method="post">/, 'the form posts back to the page it is on')
  const fields = [...form.body.matchAll(/<input name="(\w+)"/g)].map((match) => match[1])
  t.same(fields, ['username', 'password', 'remember'])

  const wrong = await browser.request(`${base}${anonymous.location}`, { method: 'POST', form: { username: quickStart.credentials.username, password: 'wrong' } })
  t.same([wrong.status, wrong.location], [302, '/login'], 'a wrong password goes back to the form')
  t.notOk(browser.has('remember_token'), 'and logs nobody in')

  const login = await browser.request(`${base}${anonymous.location}`, { method: 'POST', form: { ...quickStart.credentials, remember: 'on' } })
  t.same([login.status, login.location], [302, '/profile'], 'logging in goes back to /profile')
  const profile = await browser.request(`${base}/profile`)
  t.equal(profile.status, 200)
  t.match(profile.body, `Hello, ${quickStart.credentials.username}.`)
  const logoutAction = /<form method="post" action="([^"]+)"><button>Log out<\/button>/.exec(profile.body)?.[1]
  t.equal(logoutAction, '/logout', 'the profile page has a logout button')

  browser.restart(['remember_token'])
  const remembered = await browser.request(`${base}/profile`)
  t.equal(remembered.status, 200, 'after a browser restart, "remember me" logs the user back in')

  const logout = await browser.request(`${base}${logoutAction!}`, { method: 'POST' })
  t.same([logout.status, logout.location], [302, '/login'])
  t.notOk(browser.has('remember_token'), 'logging out clears the remember cookie')
  t.equal((await browser.request(`${base}/profile`)).status, 302, 'and /profile is closed again')
  t.notMatch(output(), /error/i, 'nothing went wrong on the server')
})
