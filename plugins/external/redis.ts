import fp from 'fastify-plugin'
import fastifyRedis from '@fastify/redis'
import { Redis, type RedisOptions } from 'ioredis'
import { closeConnection, whenReady } from '../../src/ops/redis-connection.js'

/**
 * Two Redis connections when REDIS_URL is set: `redis.cmd` for commands and publishing, and
 * `redis.sub` for subscribing (a subscribed connection can run nothing else). Without REDIS_URL
 * nothing is registered and the event bus stays in-process. The start waits until both answer;
 * afterwards an outage is survived: the clients reconnect on their own, and closing while Redis
 * is down does not fail the shutdown.
 * @see https://github.com/fastify/fastify-redis
 */
export default fp(async function redis (fastify) {
  const url = fastify.config.REDIS_URL
  if (url === undefined) return
  const common: RedisOptions = { connectTimeout: 5_000, maxRetriesPerRequest: 2, retryStrategy: (times: number) => Math.min(times * 200, 2_000) }
  const clients = {
    // While Redis is down, commands fail at once rather than queue: the cache skips Redis, and
    // events are caught up from the database by subscribers (src/live/hub.ts).
    cmd: new Redis(url, { ...common, connectionName: 'workbench-cmd', enableOfflineQueue: false }),
    sub: new Redis(url, { ...common, connectionName: 'workbench-sub' })
  }
  fastify.addHook('onClose', async () => {
    await Promise.all(Object.values(clients).map(closeConnection))
  })
  // Every client gets its listener before the start waits on any: an error event with no listener
  // is printed by ioredis as unhandled.
  for (const [name, client] of Object.entries(clients)) {
    client.on('error', (err: Error) => fastify.log.warn({ err: err.message, connection: name }, 'redis connection error'))
  }
  for (const [name, client] of Object.entries(clients)) {
    // The start waits for Redis (it reconnects on its own) up to STARTUP_TIMEOUT_MS.
    if (!await whenReady(client, fastify.config.STARTUP_TIMEOUT_MS)) throw new Error(`redis (${name}) did not answer within STARTUP_TIMEOUT_MS`)
    await fastify.register(fastifyRedis, { client, namespace: name, closeClient: false })
  }
}, { name: 'redis', dependencies: ['config'] })
