import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'

/**
 * Two Redis connections when REDIS_URL is set: `redis.cmd` for commands and publishing, and
 * `redis.sub` for subscribing (a subscribed connection can run nothing else). Without REDIS_URL
 * nothing is registered and the event bus stays in-process.
 * @see https://github.com/fastify/fastify-redis
 */
export default fp(async function redis (fastify) {
  const url = fastify.config.REDIS_URL
  if (url === undefined) return
  const common = { url, connectTimeout: 5_000, maxRetriesPerRequest: 2, retryStrategy: (times: number) => Math.min(times * 200, 2_000) }
  // While Redis is down, commands fail at once rather than queue: the cache skips Redis, and
  // events are caught up from the database by subscribers (src/fanout.ts).
  await fastify.register(fastifyRedis, { ...common, namespace: 'cmd', connectionName: 'workbench-cmd', enableOfflineQueue: false })
  await fastify.register(fastifyRedis, { ...common, namespace: 'sub', connectionName: 'workbench-sub' })
  for (const name of ['cmd', 'sub']) {
    fastify.redis[name]?.on('error', (err: Error) => fastify.log.warn({ err: err.message, connection: name }, 'redis connection error'))
  }
}, { name: 'redis', dependencies: ['config'] })
