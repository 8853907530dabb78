import fp from 'fastify-plugin'
import { createFileService, type FileService } from '../../src/files/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The file service shared by REST routes and WebSocket RPC (src/files/service.ts). */
    files: FileService
  }
}

export default fp(async function service (fastify) {
  const { db, config, fanout, activity, cache, metrics } = fastify
  const sizes = metrics.groupCommitSize
  fastify.decorate('files', createFileService({ db, config, fanout, activity, cache, onGroup: size => { sizes.observe(size) } }))
}, { name: 'service', dependencies: ['database', 'events', 'activity', 'cache', 'metrics'] })
