import fp from 'fastify-plugin'
import { createSnapshotService, type SnapshotService } from '../../src/snapshots/service.js'
import { SETTLE_MS } from '../../src/core/settled.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Snapshots and forks, shared by REST routes, WebSocket RPC and MCP (src/snapshots/service.ts). */
    snapshots: SnapshotService
  }
}

export default fp(async function snapshots (fastify) {
  const { db, config, fanout, activity } = fastify
  const snapshots = createSnapshotService({ db, config, fanout, activity })
  fastify.decorate('snapshots', snapshots)
  fastify.addHook('onClose', async function settleMutations () { await snapshots.settled(SETTLE_MS) })
}, { name: 'snapshots', dependencies: ['database', 'events', 'activity'] })
