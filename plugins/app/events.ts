import fp from 'fastify-plugin'
import { localTransport, redisTransport } from '../../src/live/bus.js'
import { Fanout } from '../../src/live/hub.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Live change events: publish after commit, deliver to local subscribers (src/live/hub.ts). */
    fanout: Fanout
  }
}

/** The hub, over Redis pub/sub when Redis is configured, else over the in-process bus (src/live/bus.ts). */
export default fp(async function events (fastify) {
  const cmd = fastify.redis?.cmd
  const sub = fastify.redis?.sub
  const transport = cmd !== undefined && sub !== undefined ? redisTransport(cmd, sub) : localTransport()
  const fanout = new Fanout({ db: fastify.db, transport, log: fastify.log })
  fastify.decorate('fanout', fanout)
  fastify.addHook('onClose', async function stopHeadChecks () { fanout.close() })
}, { name: 'events', dependencies: ['database', 'redis'] })
