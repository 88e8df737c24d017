// `npm run bench:soak`: memory under a long run of authenticated requests.
//
// Sends SOAK_REQUESTS (1,000,000) authenticated `GET /me` requests to the
// `login` scenario's server in chunks of SOAK_FIRST (100,000), reading the
// server's RSS and heap after a forced GC at the end of each chunk. The target
// of issue 6: the RSS at the end is within 10% of the RSS after the first
// chunk (no per-request growth). The result goes to the `soak` section of
// bench/RESULTS.md (SOAK_OUT=path to write elsewhere, SOAK_OUT=none for none).
//
// Environment: SOAK_REQUESTS, SOAK_FIRST, SOAK_SCENARIO (login),
// BENCH_CONNECTIONS (10).
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { cannon, envNumber, prepareScenario, scenarioById, startServer } from './harness.js'

const LIMIT = 0.10

const megabytes = (bytes) => (bytes / 1024 / 1024).toFixed(1)

async function main () {
  const total = envNumber('SOAK_REQUESTS', 1_000_000, { integer: true })
  const chunk = Math.min(envNumber('SOAK_FIRST', 100_000, { integer: true }), total)
  const connections = envNumber('BENCH_CONNECTIONS', 10, { integer: true })
  const scenario = scenarioById(process.env.SOAK_SCENARIO ?? 'login')
  const server = await startServer(scenario.id, { execArgv: ['--expose-gc'] })
  const checkpoints = []
  const started = Date.now()
  try {
    const request = await prepareScenario(scenario, server)
    const initial = await server.stats({ gc: true })
    let sent = 0
    while (sent < total) {
      const amount = Math.min(chunk, total - sent)
      const result = await cannon(server.url, request, { connections, amount })
      if (result.non2xx > 0 || result.errors > 0 || result['2xx'] !== amount) {
        throw new Error(`${scenario.id}: ${result['2xx']} of ${amount} requests answered 2xx (${result.non2xx} non-2xx, ${result.errors} errors)`)
      }
      sent += amount
      const stats = await server.stats({ gc: true })
      if (stats.completed - initial.completed !== sent) throw new Error(`the server completed ${stats.completed - initial.completed} of ${sent} requests`)
      checkpoints.push({ requests: sent, rss: stats.rss, heapUsed: stats.heapUsed })
      process.stderr.write(`${sent.toLocaleString('en')} requests: RSS ${megabytes(stats.rss)} MB, heap ${megabytes(stats.heapUsed)} MB\n`)
    }
  } finally {
    await server.close()
  }
  const first = checkpoints[0]
  const last = checkpoints.at(-1)
  const growth = last.rss / first.rss - 1
  const met = growth <= LIMIT
  const report = `## Soak (\`npm run bench:soak\`)

${total.toLocaleString('en')} authenticated requests to \`${scenario.id}\` (${scenario.what}), ${connections} connections,
run on ${new Date().toISOString()} in ${Math.round((Date.now() - started) / 1000)} s, Node ${process.version}. RSS and heap
are read after a forced GC at the end of each chunk of ${chunk.toLocaleString('en')} requests.

| requests | RSS MB | heap used MB |
|--:|--:|--:|
${checkpoints.map((point) => `| ${point.requests.toLocaleString('en')} | ${megabytes(point.rss)} | ${megabytes(point.heapUsed)} |`).join('\n')}

RSS after ${last.requests.toLocaleString('en')} requests is ${Math.abs(growth * 100).toFixed(1)} % ${growth >= 0 ? 'above' : 'below'} the RSS after the first
${first.requests.toLocaleString('en')}: target (growth ≤ 10 %) ${met ? 'met' : '**missed**'}.`
  console.log(report)
  const out = process.env.SOAK_OUT ?? fileURLToPath(new URL('./RESULTS.md', import.meta.url))
  if (out !== 'none') {
    const section = `<!-- keep:soak:start -->\n${report}\n<!-- keep:soak:end -->`
    const old = existsSync(out) ? readFileSync(out, 'utf8') : ''
    const pattern = /<!-- keep:soak:start -->[\s\S]*?<!-- keep:soak:end -->/
    writeFileSync(out, pattern.test(old) ? old.replace(pattern, section) : `${old}${old === '' ? '' : '\n'}${section}\n`)
    process.stderr.write(`wrote the soak section of ${out}\n`)
  }
  if (!met) process.exitCode = 1
}

main().catch((error) => {
  console.error(error)
  process.exitCode = 1
})
