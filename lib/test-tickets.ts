// Internal: how `loginAs` hands a user to the plugin inside the process.
import type { LoginUser } from '../types/index.js'

/** The header carrying the one-time ticket of a `loginAs` inject. */
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
