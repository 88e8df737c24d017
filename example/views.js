// Templates as plain functions. `html` is a tagged template that escapes
// every value put into it, so user-controlled text (a display name, a `next`
// URL, a flashed message) can never become markup. Only the result of
// another `html` template is inserted as is.

/** Markup that is already safe (built by `html`). */
class SafeHtml {
  /** @param {string} text */
  constructor (text) { this.text = text }
  toString () { return this.text }
}

/** @type {Record<string, string>} */
const ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

/** @param {unknown} value */
export function escapeHtml (value) {
  return String(value).replace(/[&<>"']/g, (character) => ESCAPES[character] ?? character)
}

/** @param {unknown} value @returns {string} */
function render (value) {
  if (value instanceof SafeHtml) return value.text
  if (Array.isArray(value)) return value.map(render).join('')
  if (value === null || value === undefined || value === false) return ''
  return escapeHtml(value)
}

/**
 * @param {TemplateStringsArray} strings
 * @param {...unknown} values
 */
export function html (strings, ...values) {
  let text = strings[0] ?? ''
  values.forEach((value, index) => { text += render(value) + (strings[index + 1] ?? '') })
  return new SafeHtml(text)
}

/** @param {string} token */
const csrfField = (token) => html`<input type="hidden" name="_csrf" value="${token}">`

/** @param {number | Date | null} time */
const formatTime = (time) => time === null ? 'never' : new Date(time).toISOString().replace('T', ' ').slice(0, 16) + ' UTC'

/**
 * @typedef {import('./db.js').User} User
 * @typedef {{ category: string, text: string }} Flash
 * @typedef {{ user: User | null, csrfToken: string, flashes: Flash[] }} PageContext
 */

/**
 * The frame around every page: navigation, flashed messages, content.
 * @param {PageContext} context
 * @param {string} title
 * @param {SafeHtml} content
 */
export function layout ({ user, csrfToken, flashes }, title, content) {
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
    <nav><a href="/">Home</a> <a href="/profile">Profile</a> <a href="/settings">Settings</a></nav>
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

/** @param {User | null} user */
export function homePage (user) {
  if (user === null) {
    return html`<p>Nobody is logged in. <a href="/login">Log in</a> as the demo user to see the
      <a href="/profile">profile</a> and <a href="/settings">settings</a> pages.</p>`
  }
  return html`<p>Hello, ${user.displayName}! Go to your <a href="/profile">profile</a>.</p>`
}

/**
 * @param {{ csrfToken: string, next: string, username?: string }} form
 */
export function loginPage ({ csrfToken, next, username = '' }) {
  return html`<form method="post" action="/login" class="card">
    ${csrfField(csrfToken)}
    <input type="hidden" name="next" value="${next}">
    <label>Username <input name="username" value="${username}" autocomplete="username" required autofocus></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <label class="check"><input type="checkbox" name="remember" value="yes"> Remember me on this browser</label>
    <button>Log in</button>
  </form>`
}

/**
 * @param {{ user: User, fresh: boolean, remembered: boolean }} state
 */
export function profilePage ({ user, fresh, remembered }) {
  return html`<dl class="card">
    <dt>Username</dt><dd>${user.username}</dd>
    <dt>Name</dt><dd>${user.displayName}</dd>
    <dt>Last login</dt><dd>${formatTime(user.lastLoginAt)}</dd>
    <dt>This login</dt><dd id="login-state">${fresh ? 'fresh: you typed your password in this session' : 'not fresh: restored from the remember-me cookie'}</dd>
    <dt>Remember-me cookie</dt><dd>${remembered ? 'yes' : 'no'}</dd>
  </dl>`
}

/**
 * @param {{ user: User, csrfToken: string, apiKeys: Array<{ id: number, hint: string, created_at: number }>, newApiKey?: string }} state
 */
export function settingsPage ({ user, csrfToken, apiKeys, newApiKey }) {
  const keys = apiKeys.map((key) => html`<li><code>${key.hint}…</code> created ${formatTime(key.created_at)}
      <form method="post" action="/settings" class="inline">${csrfField(csrfToken)}
        <input type="hidden" name="action" value="revoke-api-key"><input type="hidden" name="keyId" value="${key.id}">
        <button>Revoke</button></form></li>`)
  return html`<section class="card">
    <h2>Change password</h2>
    <p>Changing your password logs you out of every other browser and device.</p>
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

/**
 * @param {{ user: User, csrfToken: string, next: string }} state
 */
export function reauthenticatePage ({ user, csrfToken, next }) {
  return html`<form method="post" action="/reauthenticate" class="card">
    <p>To protect your account, please enter your password again.</p>
    ${csrfField(csrfToken)}
    <input type="hidden" name="next" value="${next}">
    <input type="hidden" name="username" value="${user.username}" autocomplete="username">
    <label>Password <input name="password" type="password" autocomplete="current-password" required autofocus></label>
    <button>Confirm</button>
  </form>`
}

/** @param {string} message */
export function errorPage (message) {
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
`
