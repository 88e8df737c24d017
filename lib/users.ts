// Reading ids and credential versions off user objects, with clear errors.
import type { LoginUser } from '../types/index.js'
import { FST_LOGIN_INVALID_OPTION, FST_LOGIN_INVALID_USER_ID } from './errors.js'
import type { LoginConfig } from './options.js'

function describe (value: unknown): string {
  if (value === null) return 'null'
  if (typeof value === 'string') {
    if (value === '') return 'an empty string'
    return value.isWellFormed() ? 'a string' : 'a string that is not well-formed Unicode (it has a lone surrogate)'
  }
  if (typeof value === 'number') return `the number ${String(value)}`
  return `a value of type ${typeof value}`
}

/** The user's id as a string; throws `FST_LOGIN_INVALID_USER_ID` for anything unusable. */
export function userIdOf (config: LoginConfig, user: LoginUser): string {
  if (user === null || (typeof user !== 'object' && typeof user !== 'function')) {
    throw new FST_LOGIN_INVALID_USER_ID(`the user is ${describe(user)}, not an object`)
  }
  let id: unknown
  try {
    id = config.getUserId(user)
  } catch {
    throw new FST_LOGIN_INVALID_USER_ID('reading its id threw')
  }
  // A lone surrogate has no UTF-8 form: the remember cookie would name another id.
  if (typeof id === 'string' && id !== '' && id.isWellFormed()) return id
  if (typeof id === 'number' && Number.isFinite(id)) return String(id)
  throw new FST_LOGIN_INVALID_USER_ID(`its id is ${describe(id)}`)
}

/** The user's `sessionVersion`, or `undefined` when the option is not set. */
export function versionOf (config: LoginConfig, user: LoginUser): string | undefined {
  if (config.sessionVersion === undefined) return undefined
  const version: unknown = config.sessionVersion(user)
  if (typeof version !== 'string') {
    throw new FST_LOGIN_INVALID_OPTION('`sessionVersion(user)` must return a string')
  }
  return version
}

/** A loaded user counts as authenticated unless it says `isAuthenticated: false`. */
export function countsAsAuthenticated (user: LoginUser): boolean {
  return (user as { isAuthenticated?: unknown }).isAuthenticated !== false
}
