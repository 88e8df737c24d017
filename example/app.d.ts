// Types of app.js for the TypeScript tests (the example itself is plain JavaScript).
import type { FastifyInstance } from 'fastify'

export interface AppOptions {
  /** Folder of the SQLite file and the generated secrets. */
  dataDir: string
  /** Default: generated and kept in `dataDir`. */
  sessionSecret?: string
  /** Default: generated and kept in `dataDir`. */
  loginSecret?: string
  /** Keep sessions in this Redis (`redis://host:port`), shared by several instances. Default: in the SQLite file. */
  redisUrl?: string
  /** fastify-login's `sessionProtection`. Default 'basic'. */
  sessionProtection?: 'basic' | 'strong'
  /** Behind a reverse proxy. Default false. */
  trustProxy?: boolean
  /** Fastify's logger option. Default false. */
  logger?: boolean | object
}

export function buildApp (options: AppOptions): Promise<FastifyInstance>
