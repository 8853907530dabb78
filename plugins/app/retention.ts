import fp from 'fastify-plugin'
import { prune, type PruneResult } from '../../src/mutations/retention.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Runs one retention pass now (the background job runs it every RETENTION_INTERVAL_MS). */
    prune: () => Promise<PruneResult>
  }
}

/** The background retention job (src/mutations/retention.ts); stopped before the database closes. */
export default fp(async function retention (fastify) {
  const { db, config, log } = fastify
  const run = async (): Promise<PruneResult> => await prune(db, config)
  fastify.decorate('prune', run)
  if (config.RETENTION_INTERVAL_MS === 0) return
  let running: Promise<unknown> = Promise.resolve()
  const timer = setInterval(() => {
    running = run()
      .then(r => { if (r.changes + r.blobs + r.keys + r.activity > 0) log.info(r, 'retention pruned') })
      .catch(err => { log.warn({ err }, 'retention pass failed') })
  }, config.RETENTION_INTERVAL_MS)
  timer.unref()
  fastify.addHook('onClose', async () => {
    clearInterval(timer)
    await running
  })
}, { name: 'retention', dependencies: ['database'] })
