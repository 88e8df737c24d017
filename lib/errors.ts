// Every error fastify-login raises, as @fastify/error classes so applications
// can check `code` or `instanceof`. Messages say what to do and never carry
// secrets, cookie values or user ids.
import createError from '@fastify/error'

export const FST_LOGIN_UNAUTHORIZED = createError<'FST_LOGIN_UNAUTHORIZED', 401, []>(
  'FST_LOGIN_UNAUTHORIZED', 'Authentication is required to access this resource', 401)

export const FST_LOGIN_NEEDS_REFRESH = createError<'FST_LOGIN_NEEDS_REFRESH', 401, []>(
  'FST_LOGIN_NEEDS_REFRESH', 'A fresh login is required to access this resource: please log in again', 401)

export const FST_LOGIN_SESSION_EXPIRED = createError<'FST_LOGIN_SESSION_EXPIRED', 401, []>(
  'FST_LOGIN_SESSION_EXPIRED', 'Your session has expired: please log in again to access this resource', 401)

export const FST_LOGIN_INVALID_OPTION = createError<'FST_LOGIN_INVALID_OPTION', 500, [string]>(
  'FST_LOGIN_INVALID_OPTION', 'Invalid fastify-login option: %s', 500, TypeError)

export const FST_LOGIN_MISSING_SECRET = createError<'FST_LOGIN_MISSING_SECRET', 500, []>(
  'FST_LOGIN_MISSING_SECRET',
  'fastify-login needs `secret`: a string of at least 32 characters, or a non-empty array of them (the first signs, all verify)',
  500, TypeError)

export const FST_LOGIN_MISSING_LOADER = createError<'FST_LOGIN_MISSING_LOADER', 500, []>(
  'FST_LOGIN_MISSING_LOADER',
  'fastify-login needs `userLoader(id, request)` (or `requestLoader(request)`) to turn a stored id into a user',
  500, TypeError)

export const FST_LOGIN_MISSING_SESSION = createError<'FST_LOGIN_MISSING_SESSION', 500, []>(
  'FST_LOGIN_MISSING_SESSION',
  'fastify-login needs a session: register @fastify/session (or @fastify/secure-session) before fastify-login',
  500)

export const FST_LOGIN_MISSING_COOKIE = createError<'FST_LOGIN_MISSING_COOKIE', 500, []>(
  'FST_LOGIN_MISSING_COOKIE',
  'fastify-login needs @fastify/cookie: register it before your session plugin and fastify-login',
  500)

export const FST_LOGIN_NO_SESSION = createError<'FST_LOGIN_NO_SESSION', 500, []>(
  'FST_LOGIN_NO_SESSION',
  'No session is available on this request (is the route outside the session cookie path?): loginUser and confirmLogin need one',
  500)

export const FST_LOGIN_INVALID_DURATION = createError<'FST_LOGIN_INVALID_DURATION', 500, [string]>(
  'FST_LOGIN_INVALID_DURATION',
  'Invalid remember duration: %s; pass a positive, finite number of seconds, at most 3155760000 (100 years)', 500, TypeError)

export const FST_LOGIN_INVALID_USER_ID = createError<'FST_LOGIN_INVALID_USER_ID', 500, [string]>(
  'FST_LOGIN_INVALID_USER_ID',
  'Cannot log this user in: %s; give the user an `id` or `getId()` (or set the `getUserId` option) that yields a non-empty, well-formed string or a number',
  500, TypeError)

export const FST_LOGIN_LOADER_FAILED = createError<'FST_LOGIN_LOADER_FAILED', 500, [string]>(
  'FST_LOGIN_LOADER_FAILED', 'A user loader or another fastify-login callback failed without an Error (it threw or rejected with %s)', 500)

export const FST_LOGIN_NOT_REGISTERED = createError<'FST_LOGIN_NOT_REGISTERED', 500, []>(
  'FST_LOGIN_NOT_REGISTERED',
  'requireLogin / requireFreshLogin guard a route on which no fastify-login is registered: register fastify-login in this route\'s scope or a parent of it',
  500)

export const FST_LOGIN_ALREADY_REGISTERED = createError<'FST_LOGIN_ALREADY_REGISTERED', 500, []>(
  'FST_LOGIN_ALREADY_REGISTERED',
  'fastify-login is already registered in this scope or a parent of it: register it once (sibling encapsulated scopes may each have their own)',
  500)

export const FST_LOGIN_NOT_AWAITED = createError<'FST_LOGIN_NOT_AWAITED', 500, [string, string]>(
  'FST_LOGIN_NOT_AWAITED',
  'request.%s() was still running when the reply was sent, so what it writes (the login, the session, the remember cookie) may be lost: `await request.%s(…)` before replying',
  500)

export const FST_LOGIN_STORE_FAILED = createError<'FST_LOGIN_STORE_FAILED', 503, [options?: { cause: unknown }]>(
  'FST_LOGIN_STORE_FAILED', 'The login store is unavailable: try again in a moment', 503)

export const FST_LOGIN_NO_STORE = createError<'FST_LOGIN_NO_STORE', 500, []>(
  'FST_LOGIN_NO_STORE', 'Listing and revoking logins needs a login store: set the `loginStore` option (MemoryLoginStore, or RedisLoginStore from fastify-login/redis)', 500)
