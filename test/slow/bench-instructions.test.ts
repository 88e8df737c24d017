// Keeps bench/instructions.js from rotting: it starts servers under valgrind's
// callgrind, counts a few requests and prints instructions per request and
// the ratios. No count is asserted beyond being there: benchmarks are not tests.
import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'
import { requireProgram } from '../programs.js'

const run = promisify(execFile)
// Two servers start under valgrind: about a minute on a busy 2-core machine.
t.setTimeout(300_000)
const script = fileURLToPath(new URL('../../bench/instructions.js', import.meta.url))

if (requireProgram(t, 'valgrind', 'the smoke test of bench/instructions.js') !== null) {
  t.test('bench/instructions.js counts instructions per request under callgrind', async (t) => {
    const { stdout } = await run(process.execPath, [script, 'anon-with', 'anon-without'], {
      env: { ...process.env, INSTR_WARMUP: '100', INSTR_REQUESTS: '100' }
    })
    const rows = [...stdout.matchAll(/^\| (anon-with(?:out)?) \| ([\d,]+) \| ([\d,]+) \|$/gm)]
    t.same(rows.map((row) => row[1]), ['anon-with', 'anon-without'], 'a row per scenario')
    for (const row of rows) {
      const [withoutCompilers, total] = [row[2]!, row[3]!].map((count) => Number(count.replaceAll(',', '')))
      t.ok(withoutCompilers! > 1000 && withoutCompilers! <= total!, `${row[1]}: plausible counts`)
    }
    t.match(stdout, /^\| `anon-with` \/ `anon-without` \| \d+\.\d{3} \| ≤ 1\.03 \|$/m, 'the ratio of the anon target')
  })

  t.test('bench/instructions.js refuses an unknown scenario', async (t) => {
    await t.rejects(run(process.execPath, [script, 'no-such-scenario']), /unknown scenario no-such-scenario/)
  })
}
