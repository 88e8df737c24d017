// A real redis-server for tests: started on a free port on 127.0.0.1, without
// persistence, in a temporary folder, and stopped at the end.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Test } from 'tap'

/** A temporary folder, removed when the test ends. */
export function tempDir (t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `fastify-login-redis-${name}-`))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** SIGTERM to a child process; resolves once it has exited. */
export async function stopProcess (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = once(child, 'exit')
  child.kill('SIGTERM')
  await exited
}

/** True when Redis answers PING on `port`. */
export function pings (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1')
    let reply = ''
    const done = (ok: boolean): void => { socket.destroy(); resolve(ok) }
    socket.setTimeout(500, () => done(false))
    socket.once('error', () => done(false))
    socket.once('connect', () => socket.write('PING\r\n'))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (reply.includes('\r\n')) done(reply.startsWith('+PONG'))
    })
  })
}

/** A redis-server on 127.0.0.1, no RDB or AOF file, its folder a temporary one. */
export class RedisServer {
  readonly port: number
  readonly #dir: string
  #child: ChildProcess | null = null

  readonly #persistent: boolean

  /** `persistent`: an append-only file in `dir`, so that its data survives a restart. */
  constructor (port: number, dir: string, { persistent = false } = {}) {
    this.port = port
    this.#dir = dir
    this.#persistent = persistent
  }

  get url (): string { return `redis://127.0.0.1:${this.port}` }

  async start (): Promise<void> {
    const persistence = this.#persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', ...persistence, '--dir', this.#dir, '--loglevel', 'warning']
    const child = this.#child = spawn('redis-server', args, { stdio: ['ignore', 'ignore', 'inherit'] })
    for (let i = 0; i < 100; i++) {
      if (child.exitCode !== null) throw new Error(`redis-server exited with code ${child.exitCode}`)
      if (await pings(this.port)) return
      await sleep(50)
    }
    throw new Error('redis-server did not answer PING within 5 s')
  }

  /** SIGTERM, as a service manager stops it; resolves once it has exited. */
  async stop (): Promise<void> {
    if (this.#child !== null) await stopProcess(this.#child)
    this.#child = null
  }
}
