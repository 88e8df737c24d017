// Where the guard of `config.login` runs: first among the route's hooks,
// right after the user is loaded. The route's own onRequest, preParsing and
// preValidation hooks, the body parser and the schema validation never see an
// anonymous request, so `request.user` is the user there, as its type says.
import t from 'tap'
import { buildApp, CookieJar } from './helpers.js'

t.test('an anonymous request to a config.login route stops before the route\'s hooks, its body and its schema', async (t) => {
  const { app } = await buildApp()
  t.teardown(() => app.close())
  const seen: string[] = []
  app.addContentTypeParser('application/x-counted', { parseAs: 'string' }, (_request, body, done) => {
    seen.push('parser')
    done(null, { text: body })
  })
  for (const mode of ['required', 'fresh'] as const) {
    app.post(`/${mode}`, {
      config: { login: mode },
      schema: { body: { type: 'object', required: ['text'], properties: { text: { type: 'string', minLength: 3 } } } },
      onRequest: async (request) => { seen.push(`onRequest ${String(request.isAuthenticated())}`) },
      preParsing: async (request) => { seen.push(`preParsing ${String(request.isAuthenticated())}`) },
      preValidation: async (request) => { seen.push(`preValidation ${String(request.isAuthenticated())}`) },
      preHandler: async (request) => { seen.push(`preHandler ${String(request.isAuthenticated())}`) }
    }, async (request) => ({ user: (request.user as { id?: unknown }).id, text: (request.body as { text: string }).text }))
  }
  for (const mode of ['required', 'fresh'] as const) {
    seen.length = 0
    const anonymous = await app.inject({ method: 'POST', url: `/${mode}`, headers: { 'content-type': 'application/x-counted', accept: 'application/json' }, payload: 'x' })
    t.equal(anonymous.statusCode, 401, `${mode}: 401, not the 400 of an invalid body`)
    t.same(seen, [], `${mode}: no route hook, no parser`)
  }
  const jar = new CookieJar(app)
  await jar.inject({ method: 'POST', url: '/login/1' })
  seen.length = 0
  const allowed = await jar.inject({ method: 'POST', url: '/fresh', headers: { 'content-type': 'application/x-counted' }, payload: 'abc' })
  t.same(allowed.json(), { user: '1', text: 'abc' })
  t.same(seen, ['onRequest true', 'preParsing true', 'parser', 'preValidation true', 'preHandler true'], 'the route\'s hooks, in order, all with the user')
})

t.test('loginRequiredByDefault guards the same way', async (t) => {
  const { app } = await buildApp({ login: { loginRequiredByDefault: true } })
  t.teardown(() => app.close())
  const seen: string[] = []
  app.post('/data', { onRequest: async () => { seen.push('onRequest') }, schema: { body: { type: 'object', required: ['a'] } } }, async () => ({ ok: true }))
  const response = await app.inject({ method: 'POST', url: '/data', headers: { accept: 'application/json' }, payload: {} })
  t.equal(response.statusCode, 401)
  t.same(seen, [])
})
