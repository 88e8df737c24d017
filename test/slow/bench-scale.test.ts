// Keeps bench/scale.js from rotting: one and two example instances over one
// Redis (which the script starts itself), a short round of each setup. No
// rate is asserted: benchmarks are not tests.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { requireProgram } from '../programs.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

if (requireProgram(t, 'redis-server', 'the smoke test of bench/scale.js') !== null) {
  t.test('bench/scale.js runs (a short round of each setup)', async (t) => {
    const env: NodeJS.ProcessEnv = { ...process.env, SCALE_DURATION: '1', SCALE_WARMUP: '0.5', SCALE_ROUNDS: '1', SCALE_RATE: '200' }
    delete env.NODE_OPTIONS
    const bench = spawn(process.execPath, ['bench/scale.js'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    bench.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
    bench.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
    const [code] = await once(bench, 'exit') as [number | null]
    t.equal(code, 0, stderr)
    const rows = stdout.split('\n').filter((line) => /^\| (one|two) instance/.test(line))
    t.equal(rows.length, 4, 'one row per setup')
    t.notMatch(stderr, /warning/, 'the instances logged nothing while measured')
  })
}
