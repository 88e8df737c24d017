// One benchmark server: `node bench/server.js <scenario> [port]`.
//
// Each scenario runs in its own process on 127.0.0.1 and loads only the
// plugins it measures. Forked by bench/run.js, it reports its port over IPC
// and answers `{ type: 'stats' }` messages with its own CPU time, memory and
// the number of requests its handlers completed, so the measured routes carry
// no statistics route of their own.
import { CLIENT_HEADERS } from './common.js'
import { BUILDERS, buildApp, completedRequests, sessionWritesCounted } from './apps.js'

function stats () {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  return { cpu: cpu.user + cpu.system, rss: memory.rss, heapUsed: memory.heapUsed, completed: completedRequests(), sessionWrites: sessionWritesCounted() }
}

async function main () {
  const [scenario, portText = '0'] = process.argv.slice(2)
  if (!Object.hasOwn(BUILDERS, scenario ?? '')) {
    console.error(`usage: node bench/server.js <scenario> [port]; scenarios: ${Object.keys(BUILDERS).join(', ')}`)
    process.exit(2)
  }
  const app = await buildApp(scenario)
  await app.listen({ host: '127.0.0.1', port: Number(portText) })
  const { port } = app.server.address()
  if (process.send === undefined) {
    console.log(`${scenario} listening on http://127.0.0.1:${port} (send header user-agent: ${CLIENT_HEADERS['user-agent']})`)
    return
  }
  process.on('message', (message) => {
    if (message?.type !== 'stats') return
    if (message.gc === true && typeof globalThis.gc === 'function') globalThis.gc()
    process.send({ type: 'stats', id: message.id, ...stats() })
  })
  // The parent is gone (or closed the channel): nothing left to measure.
  process.on('disconnect', () => { app.close().finally(() => process.exit(0)) })
  process.send({ type: 'ready', port })
}

main().catch((error) => {
  console.error(error)
  process.exit(1)
})
