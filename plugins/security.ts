import fp from 'fastify-plugin'
import cors from '@fastify/cors'
import helmet from '@fastify/helmet'

/**
 * Browser-facing headers: CORS for the CORS_ORIGINS allow-list (none by default) and the usual
 * security headers. The API serves JSON only, so the CSP is strict except under /docs.
 */
export default fp(async function security (fastify) {
  const origins = fastify.config.CORS_ORIGINS
  await fastify.register(cors, {
    origin: origins.includes('*') ? true : origins,
    credentials: false,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'DELETE'],
    exposedHeaders: ['etag', 'retry-after', 'x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset'],
    allowedHeaders: ['authorization', 'content-type', 'if-match', 'if-none-match', 'idempotency-key', 'x-session-id'],
    maxAge: 600
  })
  // The headers that matter for a JSON API (no sniffing, HTTPS only, no framing, no referrer);
  // the document-oriented rest would only lengthen every answer.
  await fastify.register(helmet, {
    contentSecurityPolicy: false,
    crossOriginResourcePolicy: { policy: 'cross-origin' },
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false
  })
}, { name: 'security', dependencies: ['config'] })
