// A browser for tests over real HTTP: fetch with a cookie jar that follows
// Set-Cookie (deletions included) and a User-Agent of its own.

/** A browser over fetch: its cookies, its User-Agent, no redirects followed. */
export class Browser {
  readonly cookies = new Map<string, string>()
  userAgent: string

  constructor (userAgent = 'Mozilla/5.0 (fastify-login tests) Browser/1') {
    this.userAgent = userAgent
  }

  async request (base: string, path: string, init: { method?: string, form?: Record<string, string>, accept?: string } = {}): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: init.accept ?? 'text/html' }
    if (this.cookies.size > 0) headers.cookie = [...this.cookies].map(([name, value]) => `${name}=${value}`).join('; ')
    let body: string | undefined
    if (init.form !== undefined) {
      headers['content-type'] = 'application/x-www-form-urlencoded'
      body = new URLSearchParams(init.form).toString()
    }
    const response = await fetch(base + path, { method: init.method ?? 'GET', headers, body, redirect: 'manual' })
    this.store(response)
    return response
  }

  /** Applies the response's Set-Cookie headers (Max-Age=0 or a past Expires deletes). */
  store (response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = header.split(';')
      const name = pair.slice(0, pair.indexOf('=')).trim()
      const value = pair.slice(pair.indexOf('=') + 1).trim()
      const deleted = value === '' || attributes.some((attribute) => {
        const [key = '', val = ''] = attribute.trim().split('=')
        if (key.toLowerCase() === 'max-age') return Number(val) <= 0
        if (key.toLowerCase() === 'expires') return Date.parse(val) <= Date.now()
        return false
      })
      if (deleted) this.cookies.delete(name)
      else this.cookies.set(name, value)
    }
  }

  /** A browser with the same cookies (a copy of a stolen or backed-up cookie jar). */
  copy (): Browser {
    const twin = new Browser(this.userAgent)
    for (const [name, value] of this.cookies) twin.cookies.set(name, value)
    return twin
  }
}
