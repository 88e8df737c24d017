// Builds dist/esm (ES modules + declarations) and dist/cjs (CommonJS), and
// the CommonJS entry whose export is the plugin itself, like every Fastify plugin.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url))

rmSync(new URL('../dist', import.meta.url), { recursive: true, force: true })
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' })
}

mkdirSync(new URL('../dist/cjs', import.meta.url), { recursive: true })
writeFileSync(new URL('../dist/cjs/package.json', import.meta.url), '{ "type": "commonjs" }\n')

// require('fastify-login') is the plugin, with .default, .fastifyLogin and every named export on it.
writeFileSync(new URL('../dist/cjs/main.js', import.meta.url), `'use strict'
const exported = require('./lib/index.js')
module.exports = Object.assign(exported.default, exported)
`)

// The CommonJS view of the declarations: the plugin as \`export =\`, with the named exports merged in.
writeFileSync(new URL('../dist/cjs/main.d.ts', import.meta.url), `import type * as api from '../esm/lib/index.js'
declare const fastifyLogin: typeof api.fastifyLogin & typeof api
declare namespace fastifyLogin {
  export type {
    FastifyLoginOptions, FastifyLoginTypes, LoginUser, AnonymousUser, UserLike, DefaultUser, LoginUserOptions,
    LoginManager, LoginEvents, LoginEventName, LoginEventListener, UserEvent, RequestEvent, ResolvedLoginOptions,
    RememberCookieOptions, RouteLoginMode, SessionProtection, UserLoader, RequestLoader, LoginView, ResponseHandler
  } from '../esm/lib/index.js'
}
export = fastifyLogin
`)
writeFileSync(new URL('../dist/cjs/testing.d.ts', import.meta.url), `export * from '../esm/lib/testing.js'
`)
