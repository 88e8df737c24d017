// The programs some tests need beside Node.js: Chromium, redis-server and
// valgrind. They are found on the PATH, as .ci/run finds them.
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import type { Test } from 'tap'

/** The Debian package that installs each program (what .ci/run installs). */
const PACKAGES = { chromium: 'chromium', 'redis-server': 'redis-server', valgrind: 'valgrind' } as const
export type Program = keyof typeof PACKAGES

/** The path of an executable `name` on the PATH, as `command -v` gives it, or null. */
export function findProgram (name: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir === '') continue
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {}
  }
  return null
}

/** True under CI (`CI=true`, as .ci/run is run), where nothing may be skipped. */
export function inCI (): boolean {
  const value = process.env.CI
  return value !== undefined && value !== '' && value !== 'false' && value !== '0'
}

/**
 * The path of a program the calling test file needs. Without it the file
 * is skipped with a message that says how to install it, and under CI the
 * file fails instead: a CI run that skips tests has not tested.
 */
export function requireProgram (t: Test, name: Program, needs: string): string | null {
  const path = findProgram(name)
  if (path !== null) return path
  const message = `${name} is not on the PATH: run \`apt-get install -y ${PACKAGES[name]}\` to run ${needs}`
  if (inCI()) t.fail(`${message} (CI must run every test)`)
  else t.plan(0, message)
  return null
}
