// The example application runs from its build: `npm run build` compiles
// example/*.ts to dist/example/ after fastify-login's own dist/ (tap's
// `before`, test/build-first.js, rebuilds whenever a source changed).
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** What `node` runs to start the example, as `npm start` does. */
export const EXAMPLE_SERVER = join(fileURLToPath(new URL('..', import.meta.url)), 'dist', 'example', 'server.js')
