import fp from 'fastify-plugin'
import cors from '@fastify/cors'

const SECURITY_HEADERS = {
  'strict-transport-security': 'max-age=31536000; includeSubDomains',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'SAMEORIGIN',
  'referrer-policy': 'no-referrer',
  'cross-origin-resource-policy': 'cross-origin'
}

/**
 * Browser-facing headers: CORS for the CORS_ORIGINS allow-list (none by default) and the
 * security headers of a JSON API (no sniffing, HTTPS only, no framing, no referrer).
 */
export default fp(async function security (fastify) {
  const origins = fastify.config.CORS_ORIGINS
  // No origins: CORS off altogether (no grant, no preflight route), at no cost per request. (The
  // plugin with `origin: false` still ran a hook that copied its options for every request:
  // about 4 % of a cached read's CPU.)
  if (origins.length > 0) {
    await fastify.register(cors, {
      origin: origins.includes('*') ? true : origins,
      credentials: false,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
      exposedHeaders: 'etag, retry-after, x-ratelimit-limit, x-ratelimit-remaining, x-ratelimit-reset, x-revision, x-lines, x-total-lines, mcp-session-id',
      allowedHeaders: ['authorization', 'content-type', 'if-match', 'if-none-match', 'idempotency-key', 'x-session-id', 'mcp-session-id', 'mcp-protocol-version'],
      maxAge: 600
    })
  }
  // The security headers that matter for a JSON API, the same on every answer. (helmet's
  // middleware chain built them per request for about 4 % of a cached read's CPU; its other
  // headers are for HTML documents.)
  fastify.addHook('onRequest', function securityHeaders (request, reply, done) {
    void reply.headers(SECURITY_HEADERS)
    done()
  })
}, { name: 'security', dependencies: ['config'] })
