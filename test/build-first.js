// tap's `before`: builds dist/ when its sources changed since the last build
// (scripts/build.js checks), so no test runs against an old build. The build
// runs in a child process outside tap's coverage, which measures lib/ only.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

execFileSync(process.execPath, [fileURLToPath(new URL('../scripts/build.js', import.meta.url))], {
  env: { ...process.env, _TAPJS_PROCESSINFO_COVERAGE_: '0' },
  stdio: 'inherit'
})
