// Internal: how `loginAs` hands a user to the plugin inside the process.
import { IncomingMessage } from 'node:http'
import { Http2ServerRequest } from 'node:http2'
import type { FastifyRequest } from 'fastify'
import type { LoginUser } from '../types/index.js'

/** The header carrying the ticket of a `loginAs` inject. */
export const TICKET_HEADER = 'x-fastify-login-test-ticket'

/** Where the plugin keeps pending `loginAs` tickets; shared by the ESM and CommonJS builds. */
export const kTestLogins = Symbol.for('fastify-login.testLogins')

export interface PendingTestLogin {
  readonly user: LoginUser
  readonly fresh: boolean
  readonly remember: boolean
}

export interface WithTestLogins {
  [kTestLogins]?: Map<string, PendingTestLogin>
}

/**
 * The pending login named by the request's ticket, taken out of `pending`: a
 * ticket is good for one request. Only an injected request can use one: a
 * request that came over a socket never does, whatever header it carries.
 */
export function takeTestLogin (pending: Map<string, PendingTestLogin>, request: FastifyRequest): PendingTestLogin | undefined {
  const ticket = request.headers[TICKET_HEADER]
  // Typed as IncomingMessage; light-my-request's injected request is not one.
  const raw: object = request.raw
  if (typeof ticket !== 'string' || raw instanceof IncomingMessage || raw instanceof Http2ServerRequest) return undefined
  const login = pending.get(ticket)
  if (login !== undefined) pending.delete(ticket)
  return login
}
