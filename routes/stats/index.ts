import { hostname } from 'node:os'
import cluster from 'node:cluster'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { normaliseEmail, requirePermission, type Actor } from '../../src/accounts/auth.js'
import { responses } from '../../schemas/common.js'
import { Stats } from '../../schemas/stats.js'

export const ADMIN_PERMISSION = 'admin'

/**
 * GET /v1/stats: a summary of this instance for operators. It needs the `admin` permission: a
 * token whose `permissions` include `admin` (stored in the account's permissions, or given by an
 * outside identity provider), or an account whose email is listed in ADMIN_EMAILS, checked on
 * every call so removing an address takes effect at once.
 */
const statsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, metrics } = fastify
  const adminEmails = fastify.config.ADMIN_EMAILS.split(',').map(normaliseEmail).filter(e => e !== '')

  async function requireAdmin (actor: Actor): Promise<void> {
    if (actor.permissions.includes(ADMIN_PERMISSION)) return
    if (adminEmails.length > 0) {
      const listed = await db.selectFrom('users').select('id').where('id', '=', actor.userId).where('email', 'in', adminEmails).executeTakeFirst()
      if (listed !== undefined) return
    }
    requirePermission(actor, ADMIN_PERMISSION)
  }

  fastify.addHook('onRequest', fastify.authenticate)

  fastify.get('/stats', {
    schema: { tags: ['operations'], summary: 'This instance\'s request rate, latency, errors, pool, sockets, cache and memory (admin)', response: responses({ 200: Stats }) }
  }, async function stats (request) {
    await requireAdmin(request.actor)
    const recent = metrics.recent.summary()
    const totals = await metrics.totals()
    const pool = fastify.dbPool()
    const memory = process.memoryUsage()
    const lookups = totals.cacheHits + totals.cacheMisses
    return {
      instance: { pid: process.pid, hostname: hostname(), uptimeSeconds: Math.round(process.uptime()), worker: cluster.isWorker },
      requests: {
        windowSeconds: recent.windowSeconds,
        count: recent.requests,
        perSecond: recent.requestsPerSecond,
        latencyMs: recent.latencyMs,
        errorRate: recent.errorRate,
        clientErrorRate: recent.clientErrorRate,
        rateLimited: totals.rateLimited
      },
      db: pool,
      websocket: {
        connections: fastify.hasDecorator('websocketServer') ? fastify.websocketServer.clients.size : 0,
        messagesIn: totals.wsMessagesIn,
        messagesOut: totals.wsMessagesOut
      },
      cache: { hits: totals.cacheHits, misses: totals.cacheMisses, hitRate: lookups === 0 ? null : Math.round(totals.cacheHits / lookups * 10_000) / 10_000 },
      memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external },
      eventLoopDelayMs: fastify.hasDecorator('memoryUsage') ? Math.round(fastify.memoryUsage().eventLoopDelay * 1000) / 1000 : 0
    }
  })
}
export default statsRoutes
