// The example application in a real browser: Chromium (found on the PATH) driven by
// playwright-core, against `node dist/example/server.js` started as a separate
// process on a free port with a fresh data folder. The scenarios are those
// of issue 4, then the devices page and the session timeouts (issues 12 and
// 13). Screenshots go to test/screenshots/ (ignored by git); with
// UPDATE_DOCS_SCREENSHOTS=1 they are also copied to docs/ for the README.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { childEnv } from './child-env.js'
import { EXAMPLE_SERVER } from './example-build.js'
import { freePort } from './free-port.js'
import { requireProgram } from './programs.js'
import { chromium, request as apiRequest, type Browser, type BrowserContext, type Page } from 'playwright-core'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SCREENSHOTS = join(ROOT, 'test', 'screenshots')
const PASSWORD = 'demo-password'
const EXPIRED = 'Your session has expired. Please log in again.'

/** Starts the example as its own process (`variables`: more of its environment); resolves with its base URL once it listens. */
async function startExample (t: Test, variables: Record<string, string> = {}): Promise<string> {
  const port = await freePort()
  const dataDir = mkdtempSync(join(tmpdir(), 'fastify-login-e2e-'))
  const env = childEnv({ ...variables, HOST: '127.0.0.1', PORT: String(port), DATA_DIR: dataDir, LOG_LEVEL: 'warn' })
  delete env.SESSION_SECRET
  delete env.LOGIN_SECRET
  const child = spawn(process.execPath, [EXAMPLE_SERVER], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await once(child, 'exit')
    }
    rmSync(dataDir, { recursive: true, force: true })
  })
  const base = `http://127.0.0.1:${port}`
  let output = ''
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the example did not start within 20 s:\n${output}`)), 20_000)
    const listen = (chunk: Buffer): void => {
      output += chunk.toString()
      if (output.includes(`${base}/`)) {
        clearTimeout(timer)
        resolve()
      }
    }
    child.stdout.on('data', listen)
    child.stderr.on('data', listen)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the example exited with code ${String(code)}:\n${output}`))
    })
  })
  return base
}

/** The path and query of the page's URL. */
function where (page: Page): string {
  const url = new URL(page.url())
  return url.pathname + url.search
}

async function logIn (page: Page, { username = 'demo', password = PASSWORD, remember = false } = {}): Promise<void> {
  if (new URL(page.url()).pathname !== '/login') await page.goto('/login')
  await page.getByLabel('Username').fill(username)
  await page.getByLabel('Password').fill(password)
  if (remember) await page.getByLabel('Remember me').check()
  await page.getByRole('button', { name: 'Log in' }).click()
}

/** A new context with only the cookies that outlive the browser: what closing and reopening it does. */
async function restartBrowser (browser: Browser, context: BrowserContext, base: string): Promise<BrowserContext> {
  const persistent = (await context.cookies()).filter((cookie) => cookie.expires > 0)
  const restarted = await browser.newContext({ baseURL: base })
  await restarted.addCookies(persistent)
  return restarted
}

async function cookieNames (context: BrowserContext): Promise<string[]> {
  return (await context.cookies()).map((cookie) => cookie.name).sort()
}

/** The logins the devices page lists, newest first: their ids, and which one is this device. */
async function devicesOn (page: Page): Promise<Array<{ id: string, current: boolean }>> {
  await page.goto('/devices')
  return page.locator('li.device').evaluateAll((items) => items.map((item) => ({
    id: item.getAttribute('data-login-id') ?? '',
    current: item.querySelector('.badge')?.textContent === 'This device'
  })))
}

/** This device's login id, from its devices page. */
async function thisDevice (page: Page): Promise<string> {
  const current = (await devicesOn(page)).filter((device) => device.current)
  if (current.length !== 1 || current[0] === undefined) throw new Error(`${current.length} devices are marked as this one`)
  return current[0].id
}

const chromiumPath = requireProgram(t, 'chromium', 'the browser tests')
if (chromiumPath !== null) {
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run']
  })
  t.teardown(() => browser.close())
  const base = await startExample(t)

  /** A fresh browser context (its own cookies) on `server` (default: the shared one), closed after the test. */
  async function newContext (t: Test, options: { viewport?: { width: number, height: number }, server?: string } = {}): Promise<BrowserContext> {
    const context = await browser.newContext({ baseURL: options.server ?? base, viewport: options.viewport })
    t.teardown(() => context.close())
    return context
  }

  t.test('1. anonymous /profile goes to the login page with next, and the login lands on /profile', async (t) => {
    const page = await (await newContext(t)).newPage()
    await page.goto('/profile')
    t.equal(where(page), '/login?next=%2Fprofile')
    await t.resolves(page.getByText('Please log in to access this page.').waitFor())
    await logIn(page)
    await page.waitForURL(`${base}/profile`)
    t.match(await page.locator('main').textContent(), /Demo User[\s\S]*fresh: you typed your password/)
  })

  t.test('2. remember me survives a browser restart, not fresh: settings ask for the password again', async (t) => {
    const first = await newContext(t)
    const page = await first.newPage()
    await logIn(page, { remember: true })
    await page.waitForURL(`${base}/`)

    const restarted = await restartBrowser(browser, first, base)
    t.teardown(() => restarted.close())
    t.same(await cookieNames(restarted), ['remember_token'])
    const again = await restarted.newPage()
    await again.goto('/profile')
    t.equal(where(again), '/profile')
    t.match(await again.locator('#login-state').textContent(), 'not fresh')

    await again.goto('/settings')
    t.equal(where(again), '/reauthenticate?next=%2Fsettings')
    await t.resolves(again.getByText('Please reauthenticate to access this page.').waitFor())
    await again.getByLabel('Password').fill(PASSWORD)
    await again.getByRole('button', { name: 'Confirm' }).click()
    await again.waitForURL(`${base}/settings`)
    await t.resolves(again.getByRole('heading', { name: 'Change password' }).waitFor())
  })

  t.test('3. without remember me, a browser restart logs out', async (t) => {
    const first = await newContext(t)
    const page = await first.newPage()
    await logIn(page)
    await page.waitForURL(`${base}/`)
    t.same(await cookieNames(first), ['session'])

    const restarted = await restartBrowser(browser, first, base)
    t.teardown(() => restarted.close())
    const again = await restarted.newPage()
    await again.goto('/profile')
    t.equal(where(again), '/login?next=%2Fprofile')
  })

  t.test('4. logout is a CSRF-protected POST; afterwards the old session cookie is worthless', async (t) => {
    const context = await newContext(t)
    const page = await context.newPage()
    await logIn(page, { remember: true })
    await page.waitForURL(`${base}/`)
    const session = (await context.cookies()).find((cookie) => cookie.name === 'session')
    t.ok(session, 'a session cookie')

    const forged = await context.request.post('/logout', { headers: { accept: 'text/html' } })
    t.equal(forged.status(), 403, 'a POST without the CSRF token is refused')
    await page.goto('/profile')
    t.equal(where(page), '/profile', 'and the user is still logged in')

    await page.getByRole('button', { name: 'Log out' }).click()
    await page.waitForURL(`${base}/`)
    await t.resolves(page.getByText('You have been logged out.').waitFor())
    t.notOk((await cookieNames(context)).includes('remember_token'), 'the remember cookie is gone')
    await page.goto('/profile')
    t.equal(where(page), '/login?next=%2Fprofile')

    const replay = await newContext(t)
    await replay.addCookies([session!])
    const replayed = await replay.newPage()
    await replayed.goto('/profile')
    t.equal(where(replayed), '/login?next=%2Fprofile', 'the session from before the logout is anonymous')
  })

  t.test('5. a password change in one browser logs out the other (session and remember cookie)', async (t) => {
    // Its own server: the demo password changes here.
    const ownBase = await startExample(t)
    const open = async (): Promise<BrowserContext> => {
      const context = await browser.newContext({ baseURL: ownBase })
      t.teardown(() => context.close())
      return context
    }
    const here = await open()
    const elsewhere = await open()
    const herePage = await here.newPage()
    const elsewherePage = await elsewhere.newPage()
    for (const page of [herePage, elsewherePage]) {
      await logIn(page, { remember: true })
      await page.waitForURL(`${ownBase}/`)
    }
    const oldRemember = (await elsewhere.cookies()).find((cookie) => cookie.name === 'remember_token')

    await herePage.goto('/settings')
    await herePage.getByLabel('Current password').fill(PASSWORD)
    await herePage.getByLabel('New password').fill('a-brand-new-password')
    await herePage.getByRole('button', { name: 'Change password' }).click()
    await t.resolves(herePage.getByText('Your password was changed.').waitFor())
    await herePage.goto('/profile')
    t.equal(where(herePage), '/profile', 'the browser that changed it stays logged in')

    await elsewherePage.goto('/profile')
    t.equal(where(elsewherePage), '/login?next=%2Fprofile', 'the other browser is logged out')
    t.notOk((await cookieNames(elsewhere)).includes('remember_token'), 'and its remember cookie is cleared')

    const cookieOnly = await open()
    await cookieOnly.addCookies([oldRemember!])
    const page = await cookieOnly.newPage()
    await page.goto('/profile')
    t.equal(where(page), '/login?next=%2Fprofile', 'the old remember cookie no longer logs in')
  })

  t.test('6. a next that leaves the site is ignored: the browser stays on the app', async (t) => {
    for (const next of ['//evil.example/', 'https://evil.example/']) {
      const context = await newContext(t)
      const offsite: string[] = []
      await context.route((url) => url.hostname === 'evil.example', async (route) => {
        offsite.push(route.request().url())
        await route.abort()
      })
      const page = await context.newPage()
      await page.goto(`/login?next=${next}`)
      await logIn(page)
      await page.waitForURL(`${base}/`)
      t.equal(new URL(page.url()).origin, base, next)
      t.same(offsite, [], `no request to evil.example (${next})`)
    }
  })

  t.test('7. /api/me with and without a valid API key', async (t) => {
    const context = await newContext(t)
    const page = await context.newPage()
    await logIn(page)
    await page.waitForURL(`${base}/`)
    await page.goto('/settings')
    await page.getByRole('button', { name: 'Create an API key' }).click()
    const key = (await page.locator('#new-api-key').textContent()) ?? ''
    t.match(key, /^flk_/)

    const api = await apiRequest.newContext({ baseURL: base })
    t.teardown(() => api.dispose())
    const withKey = await api.get('/api/me', { headers: { authorization: `Bearer ${key}` } })
    t.equal(withKey.status(), 200)
    t.same(await withKey.json(), { id: 1, username: 'demo', displayName: 'Demo User' })
    const wrongKey = await api.get('/api/me', { headers: { authorization: 'Bearer flk_not-a-key' } })
    t.equal(wrongKey.status(), 401)
    const noKey = await api.get('/api/me')
    t.equal(noKey.status(), 401)
    t.equal((await noKey.json()).error, 'Unauthorized')

    // A browser without a login gets the JSON 401 too, not the login page.
    const anonymous = await (await newContext(t)).newPage()
    const response = await anonymous.goto('/api/me')
    t.equal(response?.status(), 401)
    t.equal((await response?.json()).error, 'Unauthorized')
  })

  t.test('8. a wrong password and an inactive user get a clear message and no login', async (t) => {
    const page = await (await newContext(t)).newPage()
    await logIn(page, { password: 'not-the-password' })
    await t.resolves(page.getByText('Wrong username or password.').waitFor())
    t.equal(where(page), '/login')
    t.equal(await page.getByLabel('Username').inputValue(), 'demo', 'the username is kept')

    await logIn(page, { username: 'inactive' })
    await t.resolves(page.getByText('This account is disabled.').waitFor())
    await page.goto('/profile')
    t.equal(where(page), '/login?next=%2Fprofile', 'nobody is logged in')
  })

  t.test('9. screenshots of the login and profile pages', async (t) => {
    mkdirSync(SCREENSHOTS, { recursive: true })
    const page = await (await newContext(t, { viewport: { width: 900, height: 560 } })).newPage()
    await page.goto('/profile')
    const login = join(SCREENSHOTS, 'login.png')
    await page.screenshot({ path: login })
    await logIn(page, { remember: true })
    await page.waitForURL(`${base}/profile`)
    const profile = join(SCREENSHOTS, 'profile.png')
    await page.screenshot({ path: profile })
    t.ok(existsSync(login) && existsSync(profile))
    if (process.env.UPDATE_DOCS_SCREENSHOTS === '1') {
      mkdirSync(join(ROOT, 'docs'), { recursive: true })
      copyFileSync(login, join(ROOT, 'docs', 'login.png'))
      copyFileSync(profile, join(ROOT, 'docs', 'profile.png'))
    }
  })

  t.test('10. a device signed out from another browser is on the login page at its next navigation', async (t) => {
    // Its own server, so that the devices page lists these two logins only.
    const server = await startExample(t)
    const laptop = await (await newContext(t, { server, viewport: { width: 900, height: 720 } })).newPage()
    const phoneContext = await newContext(t, { server })
    const phone = await phoneContext.newPage()
    await logIn(phone, { remember: true })
    await phone.waitForURL(`${server}/`)
    await logIn(laptop)
    await laptop.waitForURL(`${server}/`)
    const phoneLogin = await thisDevice(phone)

    const listed = await devicesOn(laptop)
    t.equal(listed.length, 2)
    t.same(listed.find((device) => device.id === phoneLogin), { id: phoneLogin, current: false })
    mkdirSync(SCREENSHOTS, { recursive: true })
    await laptop.screenshot({ path: join(SCREENSHOTS, 'devices.png') })
    if (process.env.UPDATE_DOCS_SCREENSHOTS === '1') copyFileSync(join(SCREENSHOTS, 'devices.png'), join(ROOT, 'docs', 'devices.png'))

    await laptop.locator(`li[data-login-id="${phoneLogin}"]`).getByRole('button', { name: 'Sign out' }).click()
    await laptop.waitForURL(`${server}/devices`)
    await t.resolves(laptop.getByText('The device was signed out.').waitFor())
    t.same((await devicesOn(laptop)).map((device) => device.current), [true], 'only the laptop is left')

    await phone.goto('/profile')
    t.equal(where(phone), '/login?next=%2Fprofile', 'the phone is logged out')
    t.notOk((await cookieNames(phoneContext)).includes('remember_token'), 'its remember cookie is cleared')
  })

  t.test('11. a remember-me restore in a restarted browser is the same device, not a new one', async (t) => {
    const first = await newContext(t)
    const page = await first.newPage()
    await logIn(page, { remember: true })
    await page.waitForURL(`${base}/`)
    const before = await devicesOn(page)
    const login = await thisDevice(page)

    const restarted = await restartBrowser(browser, first, base)
    t.teardown(() => restarted.close())
    const again = await restarted.newPage()
    await again.goto('/profile')
    t.match(await again.locator('#login-state').textContent(), 'not fresh', 'restored by the remember cookie')
    const after = await devicesOn(again)
    t.equal(after.length, before.length, 'as many devices as before')
    t.equal(await thisDevice(again), login, 'this device is the login made before the restart')
    t.match(await again.locator(`li[data-login-id="${login}"]`).textContent(), /Remember me\s*yes, until/)
  })

  t.test('12. IDLE_TIMEOUT: the login ends after the idle time; remember me restores it, not fresh', async (t) => {
    const server = await startExample(t, { IDLE_TIMEOUT: '2' })
    const plain = await (await newContext(t, { server })).newPage()
    const remembered = await (await newContext(t, { server })).newPage()
    await logIn(plain)
    await plain.waitForURL(`${server}/`)
    await logIn(remembered, { remember: true })
    await remembered.waitForURL(`${server}/`)
    await plain.goto('/profile')
    t.equal(where(plain), '/profile', 'logged in before the idle time')

    await sleep(3200) // 2 s idle, and more

    await plain.goto('/profile')
    t.equal(where(plain), '/login?next=%2Fprofile')
    await t.resolves(plain.getByText(EXPIRED).waitFor(), 'the login page says the session has expired')

    await remembered.goto('/profile')
    t.equal(where(remembered), '/profile', 'the remember cookie logged the browser back in')
    t.match(await remembered.locator('#login-state').textContent(), 'not fresh')
    t.notOk(await remembered.getByText(EXPIRED).isVisible(), 'without the expired message')
    await remembered.goto('/settings')
    t.equal(where(remembered), '/reauthenticate?next=%2Fsettings', 'the settings page asks for the password again')
    await remembered.getByLabel('Password').fill(PASSWORD)
    await remembered.getByRole('button', { name: 'Confirm' }).click()
    await remembered.waitForURL(`${server}/settings`)
  })
}
