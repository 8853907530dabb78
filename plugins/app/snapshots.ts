import fp from 'fastify-plugin'
import { createSnapshotService, type SnapshotService } from '../../src/snapshots/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Snapshots and forks, shared by REST routes, WebSocket RPC and MCP (src/snapshots/service.ts). */
    snapshots: SnapshotService
  }
}

export default fp(async function snapshots (fastify) {
  const { db, config, fanout, activity } = fastify
  fastify.decorate('snapshots', createSnapshotService({ db, config, fanout, activity }))
}, { name: 'snapshots', dependencies: ['database', 'events', 'activity'] })
