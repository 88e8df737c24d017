// The README's SQL recipe (example/login-store.ts) over the example's own
// SQLite file: it passes testLoginStore, and fastify-login runs on it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { testLoginStore } from '../lib/testing.js'
import Database from 'better-sqlite3'
import { SqliteLoginStore } from '../example/login-store.js'
import { CookieJar } from './helpers.js'
import { buildStoreApp, ControlledStore } from './store-helpers.js'

// TODO(example in TypeScript): open it with the example's openDatabase.
async function exampleDatabase (t: Test) {
  const dir = mkdtempSync(join(tmpdir(), 'fastify-login-sqlite-store-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const db = new Database(join(dir, 'example.sqlite'))
  t.teardown(() => db.close())
  return { db }
}

t.test('SqliteLoginStore passes testLoginStore on the example\'s database', async (t) => {
  const db = await exampleDatabase(t)
  const store = new SqliteLoginStore(db.db)
  await testLoginStore(() => store)
})

t.test('fastify-login on SqliteLoginStore: devices, rotation and logout', async (t) => {
  const db = await exampleDatabase(t)
  const { app } = await buildStoreApp({ store: new ControlledStore(new SqliteLoginStore(db.db)) })
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
  t.same(db.db.prepare('SELECT count(*) AS count FROM logins').get(), { count: 1 })
})
