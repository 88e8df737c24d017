// Builds dist/esm (ES modules + declarations) and dist/cjs (CommonJS), the
// CommonJS entry whose export is the plugin itself, like every Fastify plugin,
// and one small entry module per subpath (`fastify-login/testing`,
// `fastify-login/redis`); then the example application (dist/example, not
// published), which imports 'fastify-login' from dist/ as a user's would.
//
// It builds only when the sources changed since the last build (a hash of
// them is kept in dist/), so tap runs it before every test run: no test ever
// runs against an old dist/. `--force` builds in any case.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'

// The subpaths of the package and the module each one exports. package.json
// maps every `fastify-login/<name>` to dist/{esm,cjs}/entries/<name>.js, so a
// new subpath is one line here.
const SUBPATHS = {
  testing: 'lib/testing',
  redis: 'lib/redis'
}

const root = fileURLToPath(new URL('..', import.meta.url))
const dist = join(root, 'dist')
const stampFile = join(dist, '.inputs.sha256')
const tsc = fileURLToPath(new URL('../node_modules/typescript/bin/tsc', import.meta.url))

function filesUnder (dir) {
  return readdirSync(join(root, dir), { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(root, join(entry.parentPath, entry.name)))
}

// Everything the output depends on: a different hash means a stale build.
function inputsHash () {
  const files = [
    ...filesUnder('lib'), ...filesUnder('example').filter((file) => file.endsWith('.ts') || file.endsWith('.json')), 'types/index.ts', 'scripts/build.js',
    'tsconfig.json', 'tsconfig.build.json', 'tsconfig.cjs.json', 'node_modules/typescript/package.json'
  ].sort()
  const hash = createHash('sha256')
  for (const file of files) hash.update(`${file}\0`).update(readFileSync(join(root, file))).update('\0')
  return hash.digest('hex')
}

function readStamp () {
  try {
    return readFileSync(stampFile, 'utf8')
  } catch {
    return null
  }
}

const hash = inputsHash()
if (!process.argv.includes('--force') && readStamp() === hash) process.exit(0)

rmSync(dist, { recursive: true, force: true })
for (const project of ['tsconfig.build.json', 'tsconfig.cjs.json']) {
  execFileSync(process.execPath, [tsc, '-p', project], { cwd: root, stdio: 'inherit' })
}
// types/index.ts holds only types: its declarations are all that is needed.
rmSync(join(dist, 'esm', 'types', 'index.js'))
rmSync(join(dist, 'cjs', 'types'), { recursive: true })

function write (file, text) {
  mkdirSync(join(dist, file, '..'), { recursive: true })
  writeFileSync(join(dist, file), text)
}

write('cjs/package.json', '{ "type": "commonjs" }\n')

// require('fastify-login') is the plugin, with .default, .fastifyLogin and every named export on it.
write('cjs/main.js', `'use strict'
const exported = require('./lib/index.js')
module.exports = Object.assign(exported.default, exported)
`)

// The CommonJS view of the declarations: the plugin as \`export =\`, a function
// merged with a namespace that re-exports every named export of the ES module
// build. The re-exports are import aliases, so a CommonJS application's
// \`declare module 'fastify-login' { interface FastifyLoginTypes { ... } }\`
// reaches the one interface both builds read.
const esmEntry = join(dist, 'esm', 'lib', 'index.d.ts')
const program = ts.createProgram([esmEntry], {
  module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, noEmit: true, skipLibCheck: true, types: []
})
const checker = program.getTypeChecker()
const entrySymbol = checker.getSymbolAtLocation(program.getSourceFile(esmEntry))
const namedExports = checker.getExportsOfModule(entrySymbol)
  .map((symbol) => symbol.name)
  .filter((name) => name !== 'default' && name !== 'fastifyLogin')
  .sort()
write('cjs/main.d.ts', `import * as api from '../esm/lib/index.js'
declare function fastifyLogin (...args: Parameters<typeof api.fastifyLogin>): ReturnType<typeof api.fastifyLogin>
declare namespace fastifyLogin {
${namedExports.map((name) => `  export import ${name} = api.${name}\n`).join('')}  export const fastifyLogin: typeof api.fastifyLogin
  export { fastifyLogin as default }
}
export = fastifyLogin
`)

// Subpath entries: ES modules re-export the module, CommonJS ones require it;
// both builds' declarations point at the one ES module declaration.
for (const [name, source] of Object.entries(SUBPATHS)) {
  write(`esm/entries/${name}.js`, `export * from '../${source}.js'\n`)
  write(`esm/entries/${name}.d.ts`, `export * from '../${source}.js'\n`)
  write(`cjs/entries/${name}.js`, `'use strict'\nmodule.exports = require('../${source}.js')\n`)
  write(`cjs/entries/${name}.d.ts`, `export * from '../../esm/${source}.js'\n`)
}

execFileSync(process.execPath, [tsc, '-p', 'example/tsconfig.json'], { cwd: root, stdio: 'inherit' })

writeFileSync(stampFile, hash)
