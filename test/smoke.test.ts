import t from 'tap'
import { buildApp, CookieJar } from './helpers.js'

t.test('log in and out', async (t) => {
  const { app } = await buildApp()
  const jar = new CookieJar(app)
  t.equal((await jar.inject({ method: 'POST', url: '/login/1' })).json().ok, true)
  t.same((await jar.inject('/')).json(), { user: 'Ann', authenticated: true, fresh: true, remembered: false })
  await jar.inject({ method: 'POST', url: '/logout' })
  t.equal((await jar.inject('/')).json().authenticated, false)
})
