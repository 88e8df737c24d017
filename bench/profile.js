// `node bench/profile.js <file.cpuprofile> [requests] [top]`: where a server's
// CPU time went, from a profile written by `BENCH_CPU_PROF=dir npm run bench`
// (which prints each server's file and request count) or
// `node --cpu-prof bench/server.js <scenario>`. With the number of requests
// the server completed, times are also given in µs per request.
//
// Prints self time by package (fastify-login, @fastify/session, fastify, …,
// Node internals, GC, idle), the top functions by self time, and the
// inclusive time of fastify-login's own functions.
import { readFileSync } from 'node:fs'

const [file, requestsText = '0', topText = '25'] = process.argv.slice(2)
if (file === undefined) {
  console.error('usage: node bench/profile.js <file.cpuprofile> [requests] [top]')
  process.exit(2)
}
const profile = JSON.parse(readFileSync(file, 'utf8'))
const requests = Number(requestsText)
const top = Number(topText)

const nodes = new Map(profile.nodes.map((node) => [node.id, node]))
const parents = new Map()
for (const node of profile.nodes) for (const child of node.children ?? []) parents.set(child, node.id)

// Self time of each node from the sample intervals.
const self = new Map()
for (let index = 0; index < profile.samples.length; index++) {
  const id = profile.samples[index]
  self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[index] ?? 0))
}

function packageOf (url, name) {
  if (url === '') {
    if (name === '(garbage collector)') return 'GC'
    if (name === '(idle)') return 'idle'
    if (name === '(program)') return 'program (native, not attributed)'
    return `native: ${name}`
  }
  if (url.includes('/dist/esm/lib/') || url.includes('/dist/cjs/lib/')) return 'fastify-login'
  const match = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)
  if (match !== null) return match[1]
  if (url.startsWith('node:')) return 'node internals'
  if (url.includes('/bench/')) return 'bench app'
  return url
}

const byPackage = new Map()
const byFunction = new Map()
let total = 0
let busy = 0
for (const [id, time] of self) {
  const { callFrame } = nodes.get(id)
  const owner = packageOf(callFrame.url, callFrame.functionName)
  total += time
  if (owner !== 'idle') busy += time
  byPackage.set(owner, (byPackage.get(owner) ?? 0) + time)
  const key = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, 'dist/')}:${callFrame.lineNumber + 1}`
  byFunction.set(key, (byFunction.get(key) ?? 0) + time)
}

// Inclusive time of fastify-login functions: a sample counts once per function, however deep the recursion.
const inclusive = new Map()
for (let index = 0; index < profile.samples.length; index++) {
  const seen = new Set()
  for (let id = profile.samples[index]; id !== undefined; id = parents.get(id)) {
    const { callFrame } = nodes.get(id)
    if (packageOf(callFrame.url, callFrame.functionName) !== 'fastify-login') continue
    const key = `${callFrame.functionName || '(anonymous)'} ${callFrame.url.replace(/^.*\/dist\//, 'dist/')}:${callFrame.lineNumber + 1}`
    if (seen.has(key)) continue
    seen.add(key)
    inclusive.set(key, (inclusive.get(key) ?? 0) + (profile.timeDeltas[index] ?? 0))
  }
}

const percent = (time) => `${(100 * time / busy).toFixed(1).padStart(5)} %` +
  (requests > 0 ? `  ${(time / requests).toFixed(2).padStart(6)} µs/req` : '')
const print = (title, map, limit) => {
  console.log(`\n${title}`)
  for (const [key, time] of [...map].sort((a, b) => b[1] - a[1]).slice(0, limit)) {
    if (key === 'idle' || key.startsWith('(idle)')) continue
    console.log(`${percent(time)}  ${(time / 1000).toFixed(0).padStart(7)} ms  ${key}`)
  }
}
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled, ${(busy / 1e6).toFixed(2)} s busy (percentages are of busy time, start-up included)`)
if (requests > 0) console.log(`${requests} requests: ${(busy / requests).toFixed(1)} µs of busy time per request`)
print('self time by package', byPackage, 30)
print(`top ${top} functions by self time`, byFunction, top)
print('fastify-login functions, inclusive time', inclusive, top)
