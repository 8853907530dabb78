import fp from 'fastify-plugin'
import type { Config } from '../../src/core/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
  }
}

/** Makes the checked configuration (src/core/config.ts) available as `fastify.config`. */
export default fp<{ config: Config }>(async function config (fastify, opts) {
  fastify.decorate('config', opts.config)
}, { name: 'config' })
