// Whether the current login is fresh: made on this session (not restored from
// the remember cookie, not marked stale by session protection) and, with
// `freshMaxAge`, recent enough.
import type { FastifyRequest } from 'fastify'
import type { LoginConfig } from './options.js'
import { KEY_FRESH, KEY_FRESH_AT, sessionOf, type SessionLike } from './session.js'
import { stateOf } from './state.js'

export function sessionIsFresh (config: LoginConfig, session: SessionLike, now = Date.now()): boolean {
  if (session.get(KEY_FRESH) !== true) return false
  if (config.freshMaxAge === undefined) return true
  const freshAt = session.get(KEY_FRESH_AT)
  return typeof freshAt === 'number' && now - freshAt <= config.freshMaxAge * 1000
}

export function isFresh (config: LoginConfig, request: FastifyRequest): boolean {
  if (stateOf(request)?.authenticated !== true) return false
  const session = sessionOf(request)
  return session !== null && sessionIsFresh(config, session)
}
