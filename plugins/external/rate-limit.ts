import fp from 'fastify-plugin'
import rateLimit, { normalizeIP, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import type { Actor } from '../../src/accounts/auth.js'
import { errors } from '../../src/core/errors.js'
import { redisWindowStore } from '../../src/ops/rate-limit-store.js'
import { closeConnection, whenReady } from '../../src/ops/redis-connection.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * Charges one call by `actor` to the per-user budget REST requests count against (the same
     * store, key and limit), for calls that arrive otherwise: WebSocket RPC, on its upgrade
     * `request`. Throws RATE_LIMITED past the limit (UNAVAILABLE when the store fails and
     * RATE_LIMIT_FAIL_OPEN is off); does nothing while rate limiting is off.
     */
    chargeUser: (request: FastifyRequest, actor: Actor) => Promise<void>
  }
}

/** Password guessing targets: a stricter limit, per client address. */
const AUTH_ROUTES = new Set(['/v1/auth/login', '/v1/auth/register'])

type Scope = 'api' | 'auth' | 'exempt'

/** Only the /v1 API is limited: /health, /ready, /metrics and /docs never are. */
function scopeOf (url: string | undefined): Scope {
  if (url === undefined) return 'exempt'
  if (AUTH_ROUTES.has(url)) return 'auth'
  // A socket is limited per message once open (WS_MESSAGES_PER_SECOND) and its RPC calls are
  // charged to the user (chargeUser below); counting upgrades per address would cap how many
  // tabs behind one NAT can connect.
  if (url === '/v1/ws') return 'exempt'
  return url.startsWith('/v1/') ? 'api' : 'exempt'
}

/**
 * Rate limits with @fastify/rate-limit on the /v1 routes: RATE_LIMIT_MAX requests per
 * RATE_LIMIT_WINDOW_MS per user (the verified token's user; the client address before
 * authentication), not on the WebSocket upgrade but on each RPC call over a socket (`chargeUser`),
 * and AUTH_RATE_LIMIT_MAX per
 * AUTH_RATE_LIMIT_WINDOW_MS per address on login and register together. Counts live in Redis when
 * REDIS_URL is set, so every instance shares them; otherwise in this process. Over the limit: 429
 * RATE_LIMITED with Retry-After and the x-ratelimit-* headers (also sent on every limited request).
 * The check runs after the route's authentication hook, so requests without a valid token are
 * answered 401 before they are counted.
 * @see https://github.com/fastify/fastify-rate-limit
 */
export default fp(async function rateLimiting (fastify) {
  const { config, metrics } = fastify
  const enabled = config.RATE_LIMIT_ENABLED ?? config.NODE_ENV !== 'test'
  if (!enabled) {
    fastify.decorate('chargeUser', async function chargeUser () {})
    return
  }

  const cmd = fastify.redis?.cmd
  let store: FastifyRateLimitStoreCtor | undefined
  if (cmd !== undefined) {
    const client = cmd.duplicate({ enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000, connectionName: 'workbench-ratelimit' })
    client.on('error', (err: Error) => { fastify.log.debug({ err: err.message }, 'rate-limit redis connection error') })
    fastify.addHook('onClose', async () => { await closeConnection(client) })
    // Commands before the connection is up would fail open; Redis just answered @fastify/redis, so wait a little.
    await whenReady(client, 2_000)
    store = redisWindowStore(client, {
      prefix: config.RATE_LIMIT_KEY_PREFIX,
      failOpen: config.RATE_LIMIT_FAIL_OPEN,
      onError: err => {
        metrics.rateLimitStoreErrors.inc()
        fastify.log.warn({ err: err.message }, config.RATE_LIMIT_FAIL_OPEN ? 'rate limit store failed; request let through' : 'rate limit store failed; request refused')
      }
    })
  }

  const isAuthKey = (key: string): boolean => key.startsWith('auth:')
  const windowOf = (key: string): number => isAuthKey(key) ? config.AUTH_RATE_LIMIT_WINDOW_MS : config.RATE_LIMIT_WINDOW_MS

  // Before @fastify/rate-limit's own onRoute hook (registered below): routes outside /v1 are left alone.
  fastify.addHook('onRoute', routeOptions => {
    if (scopeOf(routeOptions.url) === 'exempt') routeOptions.config = { ...routeOptions.config, rateLimit: false }
  })

  await fastify.register(rateLimit, {
    global: true,
    hook: 'onRequest',
    ...(store === undefined ? { cache: 100_000 } : { store }),
    skipOnError: config.RATE_LIMIT_FAIL_OPEN,
    keyGenerator: function rateLimitKey (request: FastifyRequest) {
      if (scopeOf(request.routeOptions.url) === 'auth') return `auth:${normalizeIP(request.ip)}`
      const actor = request.actor as Actor | null
      return actor === null ? `ip:${normalizeIP(request.ip)}` : `user:${actor.userId}`
    },
    max: (_request, key) => isAuthKey(key) ? config.AUTH_RATE_LIMIT_MAX : config.RATE_LIMIT_MAX,
    timeWindow: (_request, key) => windowOf(key),
    onExceeded: (_request, key) => { metrics.rateLimited.inc({ limit: isAuthKey(key) ? 'auth' : 'api' }) },
    errorResponseBuilder: function tooManyRequests (request, context) {
      const key = scopeOf(request.routeOptions.url) === 'auth' ? 'auth:' : 'api:'
      return errors.rateLimited(context.max, windowOf(key), Math.max(1, Math.ceil(context.ttl / 1000)))
    }
  })

  // Without options: the global limiter itself, so its store (not a child) and its key generator.
  const limit = fastify.createRateLimit()
  fastify.decorate('chargeUser', async function chargeUser (request: FastifyRequest, actor: Actor) {
    // The key generator keys an authenticated request by `request.actor` (`user:<id>`), as REST's.
    request.actor = actor
    const result = await limit(request)
    if (result.isAllowed || !result.isExceeded) return
    metrics.rateLimited.inc({ limit: 'api' })
    throw errors.rateLimited(result.max, result.timeWindow, Math.max(1, result.ttlInSeconds))
  })
}, { name: 'rate-limit', dependencies: ['config', 'redis', 'auth', 'metrics'] })
