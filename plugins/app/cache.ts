import fp from 'fastify-plugin'
import { ReadCache } from '../../src/files/cache.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The read cache (src/files/cache.ts): in-process LRU, then Redis, then PostgreSQL. */
    cache: ReadCache
  }
}

export default fp(async function cache (fastify) {
  const { config, metrics, fanout } = fastify
  // ACTIVITY_LOG_READS: a read's entry says whether the cache answered it (undefined when off).
  const reads = fastify.activity.reads
  const cache = new ReadCache({
    maxBytes: config.CACHE_MAX_BYTES,
    redis: config.CACHE_REDIS ? fastify.redis?.cmd : undefined,
    heads: fanout.heads,
    counters: {
      hit: layer => { metrics.cacheHits.inc({ layer }); reads?.cacheHit() },
      miss: layer => { metrics.cacheMisses.inc({ layer }); reads?.cacheMiss() },
      evicted: layer => { metrics.cacheEvictions.inc({ layer }) }
    }
  })
  // Member removal and workspace deletion, announced by any instance.
  const forget = (workspaceId: string, userIds: string[]): void => { cache.forget(workspaceId, userIds) }
  const unlisten = fanout.onAccessChange(forget)
  fastify.addHook('onClose', async () => { unlisten() })
  fastify.decorate('cache', cache)
}, { name: 'cache', dependencies: ['config', 'redis', 'metrics', 'events', 'activity'] })
