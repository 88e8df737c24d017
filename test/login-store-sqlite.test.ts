// The README's SQL recipe (example/login-store.ts) over the example's own
// SQLite file: it passes testLoginStore, and fastify-login runs on it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { testLoginStore } from '../lib/testing.js'
import type { Database } from 'better-sqlite3'
import { SqliteLoginStore } from '../dist/example/login-store.js'
import { CookieJar } from './helpers.js'
import { keepAlive } from './keep-alive.js'
import { buildStoreApp, ControlledStore } from './store-helpers.js'

// The example's own database. A computed specifier: its module declares the
// example's user type for fastify-login, which must not reach these tests' types.
interface ExampleDatabase {
  readonly db: Database
  close (): void
}

async function exampleDatabase (t: Test): Promise<ExampleDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-login-sqlite-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const { openDatabase } = await import(String(new URL('../dist/example/db.js', import.meta.url))) as { openDatabase: (dir: string) => Promise<ExampleDatabase> }
  const db = keepAlive(await openDatabase(dir))
  t.teardown(() => db.close())
  return db
}

t.test('SqliteLoginStore passes testLoginStore on the example\'s database', async (t) => {
  const db = await exampleDatabase(t)
  // The store holds prepared statements: they stay reachable too (keep-alive.ts).
  const store = keepAlive(new SqliteLoginStore(db.db))
  await testLoginStore(() => store)
})

t.test('fastify-login on SqliteLoginStore: devices, rotation and logout', async (t) => {
  const db = await exampleDatabase(t)
  const { app } = await buildStoreApp({ store: new ControlledStore(keepAlive(new SqliteLoginStore(db.db))) })
  t.teardown(() => app.close())
  const phone = new CookieJar(app)
  const laptop = new CookieJar(app)
  await phone.inject({ method: 'POST', url: '/login/1?remember=1' })
  await laptop.inject({ method: 'POST', url: '/login/1' })
  const listed = (await phone.inject('/devices')).json()
  t.equal(listed.logins.length, 2)
  phone.restartBrowser()
  t.equal((await phone.inject('/')).json().user, 'Ann', 'restored and rotated')
  t.match(phone.get('remember_token'), /^v2\.[^.]+\.1\./)
  await laptop.inject({ method: 'POST', url: '/revoke-others' })
  t.equal((await phone.inject('/')).json().authenticated, false)
  t.same(keepAlive(db.db.prepare('SELECT count(*) AS count FROM logins')).get(), { count: 1 })
})
