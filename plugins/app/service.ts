import fp from 'fastify-plugin'
import { SETTLE_MS } from '../../src/core/settled.js'
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
  const files = createFileService({ db, config, fanout, activity, cache, onGroup: size => { sizes.observe(size) } })
  fastify.decorate('files', files)
  // onClose hooks run in reverse order of registration: this one before the database's, Redis's
  // and the hub's. A request whose client has gone is not waited for by the HTTP server: let it
  // finish (commit and publish, or fail) before what it needs closes.
  fastify.addHook('onClose', async function settleMutations () { await files.settled(SETTLE_MS) })
}, { name: 'service', dependencies: ['database', 'events', 'activity', 'cache', 'metrics'] })
