import { hostname } from 'node:os'
import cluster from 'node:cluster'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ADMIN_PERMISSION, type Actor } from '../../src/accounts/auth.js'
import { errors } from '../../src/core/errors.js'
import { described, responses } from '../../schemas/common.js'
import { RouteErrors } from '../../schemas/responses.js'
import { Stats } from '../../schemas/stats.js'

/**
 * GET /v1/stats: a summary of this instance for operators. It needs the `admin` permission:
 * stored in the account's permissions by `npm run admin -- grant <email>` (src/accounts/admin.ts)
 * and read on every call, so a grant or a revoke takes effect at once; or, with JWT_PUBLIC_KEY,
 * in the outside identity provider's token. A token we signed is not enough by itself: it
 * carries the permissions of its login, and a revoke must not wait for it to expire.
 * ADMIN_EMAILS is no longer honoured (issue "Hardening", finding 8): an address is not an
 * account, and whoever registered it first became an admin.
 */
const statsRoutes: FastifyPluginAsyncTypebox = async (fastify) => {
  const { db, metrics } = fastify
  const outsideTokens = fastify.signAccessToken === undefined
  if (fastify.config.ADMIN_EMAILS.trim() !== '') {
    fastify.log.warn('ADMIN_EMAILS is no longer honoured: grant admin to an existing account with `npm run admin -- grant <email>`')
  }

  /**
   * The mean event-loop delay of the last sample (under-pressure), or null when that sample saw no
   * tick at all (the loop was blocked throughout; under-pressure then reads Infinity, which JSON
   * cannot carry).
   */
  function eventLoopDelayMs (): number | null {
    if (!fastify.hasDecorator('memoryUsage')) return 0
    const delay = fastify.memoryUsage().eventLoopDelay
    return Number.isFinite(delay) ? Math.round(delay * 1000) / 1000 : null
  }

  async function requireAdmin (actor: Actor): Promise<void> {
    if (outsideTokens && actor.permissions.includes(ADMIN_PERMISSION)) return
    const account = await db.selectFrom('users').select('permissions').where('id', '=', actor.userId).executeTakeFirst()
    if (account?.permissions.includes(ADMIN_PERMISSION) === true) return
    throw errors.forbidden('GET /v1/stats needs the admin permission (an operator grants it with `npm run admin -- grant <email>`)')
  }

  fastify.addHook('onRequest', fastify.authenticate)

  fastify.get('/stats', {
    schema: { tags: ['operations'], summary: 'This instance\'s request rate, latency, errors, pool, sockets, cache and memory (admin)', response: responses({ 200: described(Stats, { description: 'The summary' }) }, ...RouteErrors.stats) }
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
      db: { ...pool, deadlocks: totals.deadlocks, serializationFailures: totals.serializationFailures },
      websocket: {
        connections: fastify.hasDecorator('websocketServer') ? fastify.websocketServer.clients.size : 0,
        connectionsOpened: totals.wsConnectionsOpened,
        subscriptions: totals.wsSubscriptions,
        resumes: totals.wsResumes,
        messagesIn: totals.wsMessagesIn,
        messagesOut: totals.wsMessagesOut
      },
      cache: {
        hits: totals.cacheHits,
        misses: totals.cacheMisses,
        hitRate: lookups === 0 ? null : Math.round(totals.cacheHits / lookups * 10_000) / 10_000,
        evictions: totals.cacheEvictions,
        bytes: await fastify.cache.bytes()
      },
      memory: { rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal, external: memory.external },
      eventLoopDelayMs: eventLoopDelayMs()
    }
  })
}
export default statsRoutes
