// tap coverage map: unit tests measure lib/ only; tests that drive the built
// package (example, browser, Redis, benchmark smoke, the packed tarball) measure nothing.
import { readdirSync } from 'node:fs'

const libFiles = readdirSync(new URL('../lib/', import.meta.url))
  .filter((name) => name.endsWith('.ts'))
  .map((name) => `lib/${name}`)

export default function coverageMap (testFile) {
  return /(?:^|\/)(?:e2e|example|bench|redis|package)[^/]*\.test\.ts$/.test(testFile) ? null : libFiles
}
