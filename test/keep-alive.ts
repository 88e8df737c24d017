// Node.js 24.19 and later abort the process when a better-sqlite3 object
// (a database or a statement) is garbage collected outside a JavaScript
// context: its ObjectWrap then removes an environment cleanup hook with no
// environment at hand. tap's coverage collection makes that likely in a test
// process, so what a test file opens with better-sqlite3 (directly, or
// through an example app) stays reachable until the process ends.
const kept: unknown[] = []

export function keepAlive<T> (value: T): T {
  kept.push(value)
  return value
}
