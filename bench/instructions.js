// `node bench/instructions.js [scenario …]`: machine instructions per request,
// counted by valgrind's callgrind in each benchmark server.
//
// CPU time on a shared 2-core machine moves by 10–40 % from one round to the
// next; an instruction count does not depend on what else the machine is
// doing. Each scenario's server (bench/server.js, the same app as
// `npm run bench`) runs under callgrind, is driven over HTTP by autocannon
// from this process, warmed up, and then measured: the counters are zeroed,
// a fixed number of requests is sent, and the counters are dumped. The count
// covers every thread of the server (JavaScript, garbage collector, compiler
// threads) in user space; the kernel's share (loopback TCP) is not in it, so
// these ratios are further from 1 than the CPU-time ratios of run.js. The
// ratios leave out V8's compilers (see COMPILER below). Needs
// valgrind (`apt-get install valgrind`). A diagnostic next to run.js, not a
// replacement: instructions are not time (cache misses and syscalls are left
// out).
//
// With issue 13's `*-timeouts` scenarios, the write budget (harness.js) is
// run too, on a server without valgrind: it counts session writes.
//
// Environment: INSTR_WARMUP requests before counting (20000; the JIT must be
// done with the hot paths, and under valgrind its compiler threads are slow),
// INSTR_REQUESTS counted (5000), INSTR_CONNECTIONS (10), INSTR_DIR for the
// callgrind files (a new temporary directory).
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  SCENARIOS, envNumber, measure, prepareScenario, renderWriteBudget, runWriteBudget, scenarioById, startServer, wantsWriteBudget, WRITE_BUDGET
} from './harness.js'
import { DIAGNOSTICS, TARGETS } from './run.js'

function log (message) {
  process.stderr.write(`[instructions] ${message}\n`)
}

function callgrindControl (flag, pid) {
  execFileSync('callgrind_control', [flag, String(pid)], { stdio: 'ignore' })
}

// V8's parser, bytecode generator and optimising compilers. Under valgrind
// their background jobs finish at times that vary from run to run (they cost
// 17,000 to 54,000 instructions per request in the same scenario, even after
// 20,000 warm-up requests), so the ratios are taken without them.
const COMPILER = /v8::internal::(?:compiler|interpreter|baseline|maglev)::|v8::internal::(?:Parser|Scanner|Compiler|BytecodeGenerator)|CompilationJob/

/** The instruction total of a callgrind dump file, and the part spent in V8's compilers. */
function instructionsIn (file) {
  const match = /^(?:totals|summary): (\d+)/m.exec(readFileSync(file, 'utf8'))
  if (match === null) throw new Error(`no instruction total in ${file}`)
  const listing = execFileSync('callgrind_annotate', ['--inclusive=no', '--threshold=100', '--auto=no', file], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 })
  let compiler = 0
  for (const line of listing.split('\n')) {
    const row = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line)
    if (row !== null && COMPILER.test(row[2])) compiler += Number(row[1].replaceAll(',', ''))
  }
  return { total: Number(match[1]), compiler }
}

async function count (scenario, settings) {
  const outFile = join(settings.dir, `${scenario.id}.%p`)
  const server = await startServer(scenario.id, {
    execPath: 'valgrind',
    execArgv: ['--tool=callgrind', '-q', '--fair-sched=yes', `--callgrind-out-file=${outFile}`, '--dump-line=no', process.execPath]
  })
  try {
    const request = await prepareScenario(scenario, server)
    const load = { connections: settings.connections }
    await measure(scenario, server, request, { ...load, amount: settings.warmup })
    callgrindControl('--zero', server.pid)
    const result = await measure(scenario, server, request, { ...load, amount: settings.requests })
    callgrindControl('--dump', server.pid)
    const { total, compiler } = instructionsIn(join(settings.dir, `${scenario.id}.${server.pid}.1`))
    return { scenario, total: total / result.completed, perRequest: (total - compiler) / result.completed, completed: result.completed }
  } finally {
    await server.close()
  }
}

function ratios (pairs, results) {
  return pairs.filter((pair) => results.has(pair.subject) && results.has(pair.baseline)).map((pair) => ({
    ...pair,
    ratio: results.get(pair.subject).perRequest / results.get(pair.baseline).perRequest
  }))
}

function render (results, settings) {
  const lines = [
    `Instructions per request under callgrind (${settings.warmup} warm-up requests, ${settings.requests} counted, ${settings.connections} connections), Node ${process.version}`,
    '',
    '| scenario | instructions/req, without V8\'s compilers | in all |',
    '|---|--:|--:|'
  ]
  const format = (value) => Math.round(value).toLocaleString('en-US')
  for (const { scenario, perRequest, total } of results.values()) lines.push(`| ${scenario.id} | ${format(perRequest)} | ${format(total)} |`)
  lines.push('', '| ratio | of instructions without the compilers | limit (of CPU time) |', '|---|--:|--:|')
  for (const target of ratios(TARGETS, results)) lines.push(`| \`${target.subject}\` / \`${target.baseline}\` | ${target.ratio.toFixed(3)} | ≤ ${target.limit.toFixed(2)} |`)
  for (const diagnostic of ratios(DIAGNOSTICS, results)) lines.push(`| \`${diagnostic.subject}\` / \`${diagnostic.baseline}\` | ${diagnostic.ratio.toFixed(3)} | diagnostic |`)
  return lines.join('\n')
}

async function main () {
  try {
    execFileSync('valgrind', ['--version'], { stdio: 'ignore' })
  } catch {
    throw new Error('valgrind is missing: install it (apt-get install -y valgrind) to count instructions')
  }
  const ids = process.argv.slice(2)
  const settings = {
    scenarios: ids.length === 0 ? SCENARIOS : ids.map(scenarioById),
    warmup: envNumber('INSTR_WARMUP', 20000, { integer: true }),
    requests: envNumber('INSTR_REQUESTS', 5000, { integer: true }),
    connections: envNumber('INSTR_CONNECTIONS', 10, { integer: true }),
    dir: process.env.INSTR_DIR ?? mkdtempSync(join(tmpdir(), 'fastify-login-instructions-'))
  }
  log(`callgrind files in ${settings.dir}`)
  const results = new Map()
  for (const scenario of settings.scenarios) {
    const result = await count(scenario, settings)
    results.set(scenario.id, result)
    log(`${scenario.id.padEnd(18)} ${Math.round(result.perRequest).toLocaleString('en-US').padStart(9)} instructions/request without V8's compilers, ${Math.round(result.total).toLocaleString('en-US')} in all`)
  }
  let budgetText = ''
  if (wantsWriteBudget(settings.scenarios)) {
    // Session writes, not instructions: the budget's server runs without valgrind.
    const server = await startServer(WRITE_BUDGET.scenario)
    try {
      budgetText = `\n${renderWriteBudget(await runWriteBudget(server))}\n`
    } finally {
      await server.close()
    }
  }
  process.stdout.write(`${render(results, settings)}\n${budgetText}`)
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
