// A reply sent while loginUser, logoutUser or confirmLogin is still running
// (a forgotten `await`) goes out without what the call writes: the login in
// an asynchronous session store, the remember cookie. The calls are counted
// in the request's state, and the plugin's onSend logs such a reply.
import type { FastifyRequest } from 'fastify'
import { FST_LOGIN_NOT_AWAITED } from './errors.js'
import { ensureState, type LoginContext } from './loading.js'
import type { LoginState } from './state.js'

type Action<A extends unknown[], R> = (this: FastifyRequest, ...args: A) => Promise<R>

/** `action`, counted in the request's state while it runs. */
export function counted<A extends unknown[], R> (context: LoginContext, name: string, action: Action<A, R>): Action<A, R> {
  return function (this: FastifyRequest, ...args: A): Promise<R> {
    const state = ensureState(context, this)
    state.pendingCall = name
    state.pendingCalls++
    const settled = (): void => { state.pendingCalls-- }
    // The actions are async functions: they reject, never throw. Registered
    // before the caller's `await`, `settled` runs before the caller goes on.
    const result = action.apply(this, args)
    result.then(settled, settled)
    return result
  }
}

/** Logs a reply sent while one of the counted calls is still running. */
export function logNotAwaited (request: FastifyRequest, state: LoginState): void {
  const error = new FST_LOGIN_NOT_AWAITED(state.pendingCall, state.pendingCall)
  request.log.error({ err: error }, error.message)
}
