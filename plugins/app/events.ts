import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import { Fanout, type Transport } from '../../src/live/hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Live change events: publish after commit, deliver to local subscribers (src/fanout.ts). */
    fanout: Fanout
  }
}

/** Messages between instances through Redis pub/sub, on a connection used for nothing else. */
function redisTransport (cmd: Redis, sub: Redis): Transport {
  const handlers = new Map<string, (message: string) => void>()
  sub.on('message', (channel: string, message: string) => handlers.get(channel)?.(message))
  return {
    publish: async (channel, message) => { await cmd.publish(channel, message) },
    subscribe: async (channel, onMessage) => {
      handlers.set(channel, onMessage)
      await sub.subscribe(channel)
    },
    unsubscribe: async channel => {
      handlers.delete(channel)
      await sub.unsubscribe(channel)
    }
  }
}

/** The embedded default: one process, so the bus is a map of handlers. */
function localTransport (): Transport {
  const handlers = new Map<string, (message: string) => void>()
  return {
    publish: async (channel, message) => {
      const handler = handlers.get(channel)
      if (handler !== undefined) setImmediate(handler, message)
    },
    subscribe: async (channel, onMessage) => { handlers.set(channel, onMessage) },
    unsubscribe: async channel => { handlers.delete(channel) }
  }
}

export default fp(async function events (fastify) {
  const cmd = fastify.redis?.cmd
  const sub = fastify.redis?.sub
  const transport = cmd !== undefined && sub !== undefined ? redisTransport(cmd, sub) : localTransport()
  const fanout = new Fanout({ db: fastify.db, transport, log: fastify.log })
  fastify.decorate('fanout', fanout)
  fastify.addHook('onClose', async () => { fanout.close() })
}, { name: 'events', dependencies: ['database', 'redis'] })
