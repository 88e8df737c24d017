// Redirect targets: the open-redirect guard, the login URL with its `next`
// parameter, and the safe `next` of a request.
import type { SafeRedirectOptions } from '../types/index.js'

// Two bases that differ in scheme and host: a URL resolves onto both bases
// only when it is truly relative (no scheme, no authority of its own).
const BASE_A = 'http://a.fastify-login.invalid/'
const BASE_B = 'https://b.fastify-login.invalid/'
const HOST_A = 'a.fastify-login.invalid'
const HOST_B = 'b.fastify-login.invalid'
const HTTP_SCHEMES = new Set(['http:', 'https:'])

// Whitespace and control characters are stripped or reinterpreted by browsers
// and parsers in different ways; backslashes are read as slashes by browsers.
// eslint-disable-next-line no-control-regex
const UNSAFE_CHARACTERS = /[\u0000-\u0020\u007f-\u009f\\\u00a0\u1680\u2000-\u200f\u2028\u2029\u202f\u205f\u3000\ufeff]/

/** `url` parsed against `base`, or `null` when it is not a URL. */
export function parse (url: string, base?: string): URL | null {
  try {
    return new URL(url, base)
  } catch {
    return null
  }
}

function normaliseHost (host: string): string | null {
  const parsed = parse(`http://${host}/`, BASE_A)
  if (parsed === null || parsed.username !== '' || parsed.password !== '' || parsed.pathname !== '/' ||
    parsed.search !== '' || parsed.hash !== '' || /[/?#@\\]/.test(host)) return null
  return parsed.host
}

/**
 * Resolves `url` the way a browser would from a page on an allowed host and
 * returns a re-serialised, safe form of it, or `null` when it would leave
 * those hosts or use a scheme other than http(s) (only https with `requireHttps`).
 */
export function safeRedirectTarget (url: unknown, allowedHosts: string | readonly string[], requireHttps = false): string | null {
  if (typeof url !== 'string' || url === '' || url.length > 8192 || UNSAFE_CHARACTERS.test(url)) return null
  const onA = parse(url, BASE_A)
  const onB = parse(url, BASE_B)
  if (onA === null || onB === null) return null
  if (onA.host === HOST_A && onB.host === HOST_B && onA.protocol === 'http:' && onB.protocol === 'https:') {
    // A relative reference. Its serialised path must not begin with `//`, or
    // the value handed to a redirect would become scheme-relative.
    const path = onA.pathname + onA.search + onA.hash
    return path.startsWith('//') ? null : path
  }
  // Absolute or scheme-relative: both bases must agree on the host, or the
  // meaning depends on the page's scheme (`http:evil.example`).
  if (onA.host !== onB.host || onA.host === '') return null
  if (!HTTP_SCHEMES.has(onA.protocol) || !HTTP_SCHEMES.has(onB.protocol)) return null
  // Both bases agree on http: only when the URL names it (scheme-relative follows the page).
  if (requireHttps && onA.protocol === 'http:' && onB.protocol === 'http:') return null
  if (onA.username !== '' || onA.password !== '') return null
  const hosts = typeof allowedHosts === 'string' ? [allowedHosts] : allowedHosts
  if (!hosts.some((host) => typeof host === 'string' && normaliseHost(host) === onA.host)) return null
  // Keep a scheme-relative target scheme-relative, so https pages stay https.
  return url.startsWith('//') ? onA.href.slice(onA.protocol.length) : onA.href
}

/**
 * True when a browser on one of `allowedHosts` following `url` stays on that
 * host with an http(s) scheme: relative paths, and absolute or
 * scheme-relative URLs to an allowed host. With `requireHttps` (the page is
 * served over HTTPS), an `http:` URL is refused: no scheme downgrade.
 */
export function isSafeRedirectUrl (url: string, allowedHosts: string | readonly string[], options?: SafeRedirectOptions): boolean {
  return safeRedirectTarget(url, allowedHosts, options?.requireHttps === true) !== null
}

const HAS_SCHEME_OR_AUTHORITY = /^(?:[a-z][a-z0-9+.-]*:|\/\/)/i

/**
 * The `next` value for a login URL (`make_next_param`): the current path and
 * query when the login view is on the same origin, else the absolute URL. A
 * path that begins with `//` keeps its origin: alone it would name a host.
 * A `currentUrl` that is not an absolute URL is taken as it is.
 */
export function nextParam (loginUrl: string, currentUrl: string): string {
  const current = HAS_SCHEME_OR_AUTHORITY.test(currentUrl) ? parse(currentUrl) : null
  if (current === null) return currentUrl
  const login = parse(loginUrl, current.href)
  if (login?.protocol === current.protocol && login.host === current.host && !current.pathname.startsWith('//')) {
    return current.pathname + current.search
  }
  return current.href
}

/** `loginView` with `nextField` set to the `next` value of `nextUrl` (`make_login_url`). */
export function buildLoginUrl (loginView: string, nextUrl: string | undefined, nextField: string, forceHost: string | undefined): string {
  const url = new URL(loginView, BASE_A)
  if (nextUrl !== undefined) url.searchParams.set(nextField, nextParam(loginView, nextUrl))
  // As in Flask-Login, the host is forced only on a URL that carries `next`.
  if (nextUrl === undefined) forceHost = undefined
  if (forceHost !== undefined) url.host = forceHost
  if (HAS_SCHEME_OR_AUTHORITY.test(loginView)) {
    return loginView.startsWith('//') ? url.href.slice(url.protocol.length) : url.href
  }
  const path = url.pathname + url.search + url.hash
  return forceHost === undefined ? path : `//${url.host}${path}`
}

/** Normalises a configured host name (with optional port); `null` when it is not one. */
export { normaliseHost }
