// The example application runs from its build: `npm run build` compiles
// example/*.ts to dist/example/ after fastify-login's own dist/. Tests that
// run it import this module first, which throws when the build is missing or
// older than a source it is made of: a stale build would test old code.
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

/** What `node` runs to start the example, as `npm start` does. */
export const EXAMPLE_SERVER = join(ROOT, 'dist', 'example', 'server.js')

// Each folder of TypeScript sources, where its compiled modules go, and what
// a source compiles to there (types/index.ts holds only types: scripts/build.js
// keeps its declarations and deletes its empty module).
const BUILDS = [
  { sources: 'example', output: join('dist', 'example'), compiled: '.js' },
  { sources: 'lib', output: join('dist', 'esm', 'lib'), compiled: '.js' },
  { sources: 'types', output: join('dist', 'esm', 'types'), compiled: '.d.ts', only: ['index.ts'] }
]

function modifiedAt (path: string): number | null {
  try {
    return statSync(path).mtimeMs
  } catch {
    return null
  }
}

/** The sources whose compiled module is missing or older than they are. */
function staleSources (): string[] {
  const stale: string[] = []
  for (const { sources, output, compiled, only } of BUILDS) {
    for (const name of only ?? readdirSync(join(ROOT, sources), { recursive: true, encoding: 'utf8' })) {
      if (!name.endsWith('.ts') || name.endsWith('.d.ts')) continue
      const source = join(sources, name)
      const built = modifiedAt(join(ROOT, output, name.replace(/\.ts$/, compiled)))
      if (built === null || built < (modifiedAt(join(ROOT, source)) ?? Infinity)) stale.push(source)
    }
  }
  return stale
}

const stale = staleSources()
if (stale.length > 0) {
  throw new Error(`the build is missing or older than ${stale.join(', ')}: run \`npm run build\` (npm test does it) first`)
}
