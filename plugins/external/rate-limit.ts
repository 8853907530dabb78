import fp from 'fastify-plugin'
import rateLimit, { normalizeIP, type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import type { Redis } from 'ioredis'
import type { Actor } from '../../src/accounts/auth.js'
import { errors } from '../../src/core/errors.js'

/** Password guessing targets: a stricter limit, per client address. */
const AUTH_ROUTES = new Set(['/v1/auth/login', '/v1/auth/register'])

type Scope = 'api' | 'auth' | 'exempt'

/** Only the /v1 API is limited: /health, /ready, /metrics and /docs never are. */
function scopeOf (url: string | undefined): Scope {
  if (url === undefined) return 'exempt'
  if (AUTH_ROUTES.has(url)) return 'auth'
  // A socket is limited per message once open (WS_MESSAGES_PER_SECOND); counting upgrades per
  // address would cap how many tabs behind one NAT can connect.
  if (url === '/v1/ws') return 'exempt'
  return url.startsWith('/v1/') ? 'api' : 'exempt'
}

/**
 * Fixed-window counter in Redis, shared by every instance: INCR, and PEXPIRE when the window
 * opens (or the key somehow lost its expiry). Returns the count and the window's remaining ms.
 */
const WINDOW_SCRIPT = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if current == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { current, ttl }`

type WindowCommand = (key: string, windowMs: number) => Promise<[number, number]>

/**
 * A store on a Redis connection of its own with no offline queue and a short command timeout, so
 * that while Redis is down each check fails at once instead of waiting: the request is then let
 * through (RATE_LIMIT_FAIL_OPEN, the default) or answered 503 UNAVAILABLE.
 */
function redisStore (client: Redis, prefix: string, failOpen: boolean, onError: (err: Error) => void): FastifyRateLimitStoreCtor {
  client.defineCommand('workbenchRateWindow', { numberOfKeys: 1, lua: WINDOW_SCRIPT })
  const command = (client as unknown as { workbenchRateWindow: WindowCommand }).workbenchRateWindow.bind(client)
  return class RedisWindowStore implements FastifyRateLimitStore {
    incr (key: string, callback: (error: Error | null, result?: { current: number, ttl: number }) => void, timeWindow: number): void {
      command(prefix + key, timeWindow).then(
        ([current, ttl]) => { callback(null, { current, ttl }) },
        (err: Error) => {
          onError(err)
          callback(failOpen ? err : errors.unavailable('rate limiting is unavailable (its store does not answer)'))
        })
    }

    child (): FastifyRateLimitStore { return this }
  }
}

/**
 * Rate limits with @fastify/rate-limit on the /v1 routes: RATE_LIMIT_MAX requests per
 * RATE_LIMIT_WINDOW_MS per user (the verified token's user; the client address before
 * authentication), not on the WebSocket upgrade, and AUTH_RATE_LIMIT_MAX per
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
  if (!enabled) return

  const cmd = fastify.redis?.cmd
  let store: FastifyRateLimitStoreCtor | undefined
  if (cmd !== undefined) {
    const client = cmd.duplicate({ enableOfflineQueue: false, maxRetriesPerRequest: 0, commandTimeout: 1_000, connectionName: 'workbench-ratelimit' })
    client.on('error', (err: Error) => { fastify.log.debug({ err: err.message }, 'rate-limit redis connection error') })
    fastify.addHook('onClose', async () => { await client.quit().catch(() => { client.disconnect() }) })
    // Commands before the connection is up would fail open; Redis just answered @fastify/redis, so wait a little.
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, 2_000)
      client.once('ready', () => { clearTimeout(timer); resolve() })
    })
    store = redisStore(client, config.RATE_LIMIT_KEY_PREFIX, config.RATE_LIMIT_FAIL_OPEN, err => {
      metrics.rateLimitStoreErrors.inc()
      fastify.log.warn({ err: err.message }, config.RATE_LIMIT_FAIL_OPEN ? 'rate limit store failed; request let through' : 'rate limit store failed; request refused')
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
}, { name: 'rate-limit', dependencies: ['config', 'redis', 'auth', 'metrics'] })
