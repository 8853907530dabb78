import fp from 'fastify-plugin'
import { ReadCache } from '../src/cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The read cache (src/cache.ts): in-process LRU, then Redis, then PostgreSQL. */
    cache: ReadCache
  }
}

export default fp(async function cache (fastify) {
  const { config, metrics } = fastify
  fastify.decorate('cache', new ReadCache({
    maxBytes: config.CACHE_MAX_BYTES,
    redis: config.CACHE_REDIS ? fastify.redis?.cmd : undefined,
    counters: {
      hit: layer => { metrics.cacheHits.inc({ layer }) },
      miss: layer => { metrics.cacheMisses.inc({ layer }) }
    }
  }))
}, { name: 'cache', dependencies: ['config', 'redis', 'metrics'] })
