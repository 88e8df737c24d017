// `fastify-login/testing`: log a user in for `app.inject` tests.
//
// `loginAs` asks the plugin, in-process, to log the user in on an injected
// request. The request is recognised by a random ticket that lives only in
// this process's memory: the plugin takes it at the first injected request
// that carries it, and `loginAs` drops it when its inject ends, whatever the
// outcome. A request that came over a socket never uses a ticket, so no HTTP
// request from outside can trigger it.
import { randomBytes } from 'node:crypto'
import type { FastifyInstance } from 'fastify'
import type { LoginUser } from '../types/index.js'
import { kTestLogins, TICKET_HEADER, type WithTestLogins } from './test-tickets.js'

export { testLoginStore, LOGIN_STORE_RULES, type MakeLoginStore } from './store-conformance.js'

/** Options of `loginAs`. */
export interface LoginAsOptions {
  /** Make the login fresh. Default `true`. */
  fresh?: boolean
  /** Also set a remember cookie. Default `false`. */
  remember?: boolean
}

function setCookieHeaders (header: string | string[] | undefined): string[] {
  if (header === undefined) return []
  return Array.isArray(header) ? header : [header]
}

// The raw `name=value` of a Set-Cookie header, skipping cookies it deletes.
function cookiePair (header: string): string[] {
  const [pair = '', ...attributes] = header.split(';')
  const deletes = pair.endsWith('=') || attributes.some((attribute) => {
    const [name = '', value = ''] = attribute.trim().split('=')
    const key = name.toLowerCase()
    return (key === 'max-age' && Number(value) <= 0) || (key === 'expires' && Date.parse(value) <= Date.now())
  })
  return deletes ? [] : [pair.trim()]
}

/**
 * Logs `user` in and returns a `Cookie` header value that makes `app.inject`
 * requests as that user, with the requested freshness. The login is bound to
 * the identity of a default `app.inject` request (its address and
 * User-Agent), so it holds under every `sessionProtection` mode.
 */
export async function loginAs (app: FastifyInstance, user: LoginUser, options: LoginAsOptions = {}): Promise<string> {
  await app.ready()
  const pending = (app.loginManager as unknown as WithTestLogins | undefined)?.[kTestLogins]
  if (pending === undefined) throw new Error('loginAs needs an app with fastify-login registered')
  const ticket = randomBytes(32).toString('base64url')
  pending.set(ticket, { user, fresh: options.fresh !== false, remember: options.remember === true })
  try {
    const response = await app.inject({ method: 'GET', url: '/', headers: { [TICKET_HEADER]: ticket } })
    if (response.statusCode !== 204) {
      throw new Error(`loginAs could not log the user in (status ${response.statusCode}): ${response.body}`)
    }
    const cookies = setCookieHeaders(response.headers['set-cookie']).flatMap(cookiePair)
    if (cookies.length === 0) throw new Error('loginAs: the session plugin set no cookie (is its cookie `secure: true` on plain HTTP?)')
    return cookies.join('; ')
  } finally {
    pending.delete(ticket)
  }
}
