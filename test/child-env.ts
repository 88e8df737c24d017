// The environment of a program a test starts (the example server, npm, tsc):
// without tap's TypeScript loader (NODE_OPTIONS) and without tap's coverage
// collection, which measures lib/ in the test processes only and would only
// slow these programs down.
export function childEnv (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra, _TAPJS_PROCESSINFO_COVERAGE_: '0' }
  delete env.NODE_OPTIONS
  return env
}
