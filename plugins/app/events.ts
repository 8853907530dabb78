import fp from 'fastify-plugin'
import { localTransport, redisTransport } from '../../src/live/bus.js'
import { Fanout } from '../../src/live/hub.js'
import { SETTLE_MS } from '../../src/core/settled.js'
import { memoryPresenceStore, Presence, redisPresenceStore } from '../../src/live/presence.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Live change events: publish after commit, deliver to local subscribers (src/live/hub.ts). */
    fanout: Fanout
    /** Who is on each workspace channel, across instances (src/live/presence.ts). */
    presence: Presence
  }
}

/** The hub, over Redis pub/sub when Redis is configured, else over the in-process bus (src/live/bus.ts). */
export default fp(async function events (fastify) {
  const cmd = fastify.redis?.cmd
  const sub = fastify.redis?.sub
  const transport = cmd !== undefined && sub !== undefined ? redisTransport(cmd, sub) : localTransport()
  const fanout = new Fanout({ db: fastify.db, transport, log: fastify.log })
  fastify.decorate('fanout', fanout)
  // (after the services' onClose: the publishes of their last commits go out before Redis closes)
  fastify.addHook('onClose', async function stopHeadChecks () { await fanout.close(SETTLE_MS) })
  const presence = new Presence({
    store: cmd !== undefined ? redisPresenceStore(cmd) : memoryPresenceStore(),
    fanout,
    log: fastify.log,
    heartbeatMs: fastify.config.WS_HEARTBEAT_MS
  })
  fastify.decorate('presence', presence)
  fastify.addHook('onClose', async function stopPresence () { presence.close() })
}, { name: 'events', dependencies: ['config', 'database', 'redis'] })
