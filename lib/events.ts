// Lifecycle events: listeners registered on `app.loginManager`, and the same
// payloads published on `node:diagnostics_channel` as `fastify-login:<name>`.
import { channel, type Channel } from 'node:diagnostics_channel'
import type { LoginEventListener, LoginEventName, LoginEvents } from '../types/index.js'

/** Every event name, in the order the README lists them. */
export const EVENT_NAMES: readonly LoginEventName[] = Object.freeze([
  'userLoggedIn', 'userLoggedOut', 'userLoadedFromCookie', 'userLoadedFromRequest', 'userLoginConfirmed',
  'userUnauthorized', 'userNeedsRefresh', 'userAccessed', 'sessionProtected', 'sessionExpired', 'loginRevoked', 'rememberTheft'
])

const channels = new Map<LoginEventName, Channel>(EVENT_NAMES.map((name) => [name, channel(`fastify-login:${name}`)]))

type AnyListener = (payload: never) => void

export class LoginEventHub {
  readonly #listeners = new Map<LoginEventName, AnyListener[]>()

  on<E extends LoginEventName>(event: E, listener: LoginEventListener<E>, once = false): void {
    assertEvent(event)
    if (typeof listener !== 'function') throw new TypeError('An event listener must be a function')
    let wrapped: AnyListener = listener
    if (once) {
      const onceListener = (payload: LoginEvents[E]): void => {
        this.off(event, onceListener)
        listener(payload)
      }
      onceListener.listener = listener
      wrapped = onceListener
    }
    // Copy on write, so a listener removed while emitting does not skip another.
    this.#listeners.set(event, [...(this.#listeners.get(event) ?? []), wrapped])
  }

  off<E extends LoginEventName>(event: E, listener: LoginEventListener<E>): void {
    assertEvent(event)
    const list = this.#listeners.get(event)
    if (list === undefined) return
    const index = list.findIndex((item) => item === listener || (item as { listener?: unknown }).listener === listener)
    if (index === -1) return
    const next = list.filter((_, position) => position !== index)
    if (next.length === 0) this.#listeners.delete(event)
    else this.#listeners.set(event, next)
  }

  /** True when anybody listens, so callers can skip building the payload. */
  wanted (event: LoginEventName): boolean {
    return this.#listeners.has(event) || channels.get(event)!.hasSubscribers
  }

  emit<E extends LoginEventName>(event: E, payload: LoginEvents[E]): void {
    const list = this.#listeners.get(event)
    if (list !== undefined) {
      for (const listener of list) (listener as LoginEventListener<E>)(payload)
    }
    const published = channels.get(event)!
    if (published.hasSubscribers) published.publish(payload)
  }
}

function assertEvent (event: string): asserts event is LoginEventName {
  if (!channels.has(event as LoginEventName)) {
    throw new TypeError(`Unknown fastify-login event "${event}"; known events: ${EVENT_NAMES.join(', ')}`)
  }
}
