// Templates as plain functions. `html` is a tagged template that escapes
// every value put into it, so user-controlled text (a display name, a `next`
// URL, a flashed message) can never become markup. Only the result of
// another `html` template is inserted as is.
import type { LoginInfo } from 'fastify-login'
import type { ApiKeyRow, User } from './db.js'
import { describeUserAgent } from './user-agent.js'

/** Markup that is already safe (built by `html`). */
export class SafeHtml {
  readonly text: string
  constructor (text: string) { this.text = text }
  toString (): string { return this.text }
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml (value: unknown): string {
  return String(value).replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character)
}

function render (value: unknown): string {
  if (value instanceof SafeHtml) return value.text
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === null || value === undefined || value === false) return ''
  return escapeHtml(value)
}

export function html (strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let text = strings[0] ?? ''
  values.forEach((value, index) => { text += render(value) + (strings[index + 1] ?? '') })
  return new SafeHtml(text)
}

const csrfField = (token: string): SafeHtml => html`<input type="hidden" name="_csrf" value="${token}">`

const formatTime = (time: number | Date | null): string => time === null ? 'never' : new Date(time).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'

/** A flashed message. */
export interface Flash {
  category: string
  text: string
}

/** What the layout shows besides the page: the user (if any), the logout form's token, the flashed messages. */
export interface PageContext {
  user: User | null
  csrfToken: string
  flashes: Flash[]
}

/** The frame around every page: navigation, flashed messages, content. */
export function layout ({ user, csrfToken, flashes }: PageContext, title: string, content: SafeHtml): string {
  const account = user === null
    ? html`<a href="/login">Log in</a>`
    : html`<span>${user.displayName}</span>
      <form method="post" action="/logout" class="inline">${csrfField(csrfToken)}<button>Log out</button></form>`
  return html`<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>${title} · fastify-login example</title>
  <link rel="stylesheet" href="/style.css">
</head>
<body>
  <header>
    <nav><a href="/">Home</a> <a href="/profile">Profile</a> <a href="/devices">Devices</a> <a href="/settings">Settings</a></nav>
    <div class="account">${account}</div>
  </header>
  <main>
    ${flashes.map((flash) => html`<p class="flash ${flash.category}" role="status">${flash.text}</p>`)}
    <h1>${title}</h1>
    ${content}
  </main>
</body>
</html>
`.text
}

export function homePage (user: User | null): SafeHtml {
  if (user === null) {
    return html`<p>Nobody is logged in. <a href="/login">Log in</a> as the demo user to see the
      <a href="/profile">profile</a> and <a href="/settings">settings</a> pages.</p>`
  }
  return html`<p>Hello, ${user.displayName}! Go to your <a href="/profile">profile</a>.</p>`
}

export function loginPage ({ csrfToken, next, username = '' }: { csrfToken: string, next: string, username?: string }): SafeHtml {
  return html`<form method="post" action="/login" class="card">
    ${csrfField(csrfToken)}
    <input type="hidden" name="next" value="${next}">
    <label>Username <input name="username" value="${username}" autocomplete="username" required autofocus></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <label class="check"><input type="checkbox" name="remember" value="yes"> Remember me on this browser</label>
    <button>Log in</button>
  </form>`
}

export function profilePage ({ user, fresh, remembered }: { user: User, fresh: boolean, remembered: boolean }): SafeHtml {
  return html`<dl class="card">
    <dt>Username</dt><dd>${user.username}</dd>
    <dt>Name</dt><dd>${user.displayName}</dd>
    <dt>Last login</dt><dd>${formatTime(user.lastLoginAt)}</dd>
    <dt>This login</dt><dd id="login-state">${fresh ? 'fresh: you typed your password in this session' : 'not fresh: restored from the remember-me cookie'}</dd>
    <dt>Remember-me cookie</dt><dd>${remembered ? 'yes' : 'no'}</dd>
  </dl>
  <p>Where else are you logged in? See <a href="/devices">your devices</a>.</p>`
}

/** A "Sign out" form of the devices page. */
function signOutForm (csrfToken: string, action: 'sign-out' | 'sign-out-others', label: string, loginId = ''): SafeHtml {
  return html`<form method="post" action="/devices" class="inline">${csrfField(csrfToken)}
        <input type="hidden" name="action" value="${action}">${loginId !== '' && html`<input type="hidden" name="loginId" value="${loginId}">`}
        <button>${label}</button></form>`
}

/** The user's logins (newest first), this one marked; `fresh`: signing out works without the password first. */
export function devicesPage ({ logins, csrfToken, fresh }: { logins: LoginInfo[], csrfToken: string, fresh: boolean }): SafeHtml {
  const items = logins.map((login) => html`<li class="card device" data-login-id="${login.id}">
      <strong title="${login.userAgent}">${describeUserAgent(login.userAgent)}</strong>
      ${login.current && html`<span class="badge">This device</span>`}
      <dl>
        <dt>Address</dt><dd>${login.ip || 'unknown'}</dd>
        <dt>Logged in</dt><dd>${formatTime(login.createdAt)}</dd>
        <dt>Last seen</dt><dd>${login.current ? 'now' : formatTime(login.lastSeenAt)}</dd>
        <dt>Remember me</dt><dd>${login.remembered ? html`yes, until ${formatTime(login.expiresAt)}` : 'no: until the browser closes'}</dd>
      </dl>
      ${!login.current && signOutForm(csrfToken, 'sign-out', 'Sign out', login.id)}
    </li>`)
  const others = logins.filter((login) => !login.current).length
  return html`<p>Every browser and device where you are logged in. Sign out the ones you do not recognise,
    then <a href="/settings">change your password</a>.</p>
  ${!fresh && others > 0 && html`<p class="flash">Signing a device out asks for your password first.</p>`}
  <ul class="devices">${items}</ul>
  ${others > 0 && signOutForm(csrfToken, 'sign-out-others', 'Sign out all other devices')}`
}

/** `newApiKey`: shown once, right after it was created. */
export function settingsPage ({ user, csrfToken, apiKeys, newApiKey }: { user: User, csrfToken: string, apiKeys: ApiKeyRow[], newApiKey?: string }): SafeHtml {
  const keys = apiKeys.map((key) => html`<li><code>${key.hint}…</code> created ${formatTime(key.created_at)}
      <form method="post" action="/settings" class="inline">${csrfField(csrfToken)}
        <input type="hidden" name="action" value="revoke-api-key"><input type="hidden" name="keyId" value="${key.id}">
        <button>Revoke</button></form></li>`)
  return html`<section class="card">
    <h2>Change password</h2>
    <p>Changing your password logs you out of every other browser and <a href="/devices">device</a>.</p>
    <form method="post" action="/settings">
      ${csrfField(csrfToken)}
      <input type="hidden" name="action" value="change-password">
      <input type="hidden" name="username" value="${user.username}" autocomplete="username">
      <label>Current password <input name="currentPassword" type="password" autocomplete="current-password" required></label>
      <label>New password <input name="newPassword" type="password" autocomplete="new-password" minlength="8" required></label>
      <button>Change password</button>
    </form>
  </section>
  <section class="card">
    <h2>API keys</h2>
    <p>Send a key as <code>Authorization: Bearer &lt;key&gt;</code> to <a href="/api/me">/api/me</a>.</p>
    ${newApiKey !== undefined && html`<p class="flash success">Your new key (copy it now, it is shown only once):
      <code id="new-api-key">${newApiKey}</code></p>`}
    <ul>${keys.length === 0 ? html`<li>No keys yet.</li>` : keys}</ul>
    <form method="post" action="/settings">${csrfField(csrfToken)}
      <input type="hidden" name="action" value="create-api-key"><button>Create an API key</button></form>
  </section>`
}

export function reauthenticatePage ({ user, csrfToken, next }: { user: User, csrfToken: string, next: string }): SafeHtml {
  return html`<form method="post" action="/reauthenticate" class="card">
    <p>To protect your account, please enter your password again.</p>
    ${csrfField(csrfToken)}
    <input type="hidden" name="next" value="${next}">
    <input type="hidden" name="username" value="${user.username}" autocomplete="username">
    <label>Password <input name="password" type="password" autocomplete="current-password" required autofocus></label>
    <button>Confirm</button>
  </form>`
}

export function errorPage (message: string): SafeHtml {
  return html`<p>${message}</p><p><a href="/">Back to the home page</a></p>`
}

/** Served as /style.css (the Content-Security-Policy allows no inline styles). */
export const STYLESHEET = `
body { font: 16px/1.5 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
header { display: flex; justify-content: space-between; align-items: center; box-sizing: border-box; min-height: 3.75rem; padding: .5rem 1.5rem; background: #24292f; color: #fff; }
header a { color: #fff; margin-right: 1rem; text-decoration: none; }
header .account span { margin-right: .75rem; }
main { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
.card { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 1rem 1.5rem; margin-bottom: 1.5rem; }
label { display: block; margin: .75rem 0; }
label input:not([type=checkbox]) { display: block; width: 100%; box-sizing: border-box; padding: .4rem; font-size: 1rem; }
label.check input { margin-right: .4rem; }
button { padding: .4rem 1rem; font-size: 1rem; cursor: pointer; }
form.inline { display: inline; }
.flash { padding: .6rem 1rem; border-radius: 6px; background: #ddf4ff; border: 1px solid #54aeff; }
.flash.error { background: #ffebe9; border-color: #ff8182; }
.flash.success { background: #dafbe1; border-color: #4ac26b; }
dt { font-weight: 600; } dd { margin: 0 0 .5rem; }
code { word-break: break-all; }
.devices { list-style: none; padding: 0; }
.device dl { display: grid; grid-template-columns: max-content 1fr; gap: 0 1rem; }
.device dd { margin: 0; }
.badge { margin-left: .5rem; padding: .1rem .5rem; border-radius: 1rem; background: #ddf4ff; border: 1px solid #54aeff; font-size: .875rem; }
`
