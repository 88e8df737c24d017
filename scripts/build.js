// Builds dist/esm (ES modules + declarations) and dist/cjs (CommonJS), and
// the CommonJS entry whose export is the plugin itself, like every Fastify plugin;
// then the example application (dist/example, not published), which imports
// 'fastify-login' from dist/esm as a user's application would.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

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

// The CommonJS view of the declarations: the plugin as \`export =\`, a function
// merged with a namespace that re-exports every named export of the ES module
// build. The re-exports are import aliases, so a CommonJS application's
// \`declare module 'fastify-login' { interface FastifyLoginTypes { ... } }\`
// reaches the one interface both builds read.
const esmEntry = fileURLToPath(new URL('../dist/esm/lib/index.d.ts', import.meta.url))
const program = ts.createProgram([esmEntry], {
  module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true, skipLibCheck: true, types: []
})
const checker = program.getTypeChecker()
const entrySymbol = checker.getSymbolAtLocation(program.getSourceFile(esmEntry))
const namedExports = checker.getExportsOfModule(entrySymbol)
  .map((symbol) => symbol.name)
  .filter((name) => name !== 'default' && name !== 'fastifyLogin')
  .sort()
writeFileSync(new URL('../dist/cjs/main.d.ts', import.meta.url), `import * as api from '../esm/lib/index.js'
declare function fastifyLogin (...args: Parameters<typeof api.fastifyLogin>): ReturnType<typeof api.fastifyLogin>
declare namespace fastifyLogin {
${namedExports.map((name) => `  export import ${name} = api.${name}\n`).join('')}  export const fastifyLogin: typeof api.fastifyLogin
  export { fastifyLogin as default }
}
export = fastifyLogin
`)
for (const subpath of ['testing', 'redis']) {
  writeFileSync(new URL(`../dist/cjs/${subpath}.d.ts`, import.meta.url), `export * from '../esm/lib/${subpath}.js'\n`)
}

execFileSync(process.execPath, [tsc, '-p', 'example/tsconfig.json'], { cwd: root, stdio: 'inherit' })
