import fp from 'fastify-plugin'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import { asyncApiDocument } from '../../schemas/asyncapi.js'

const WS_PATH = {
  get: {
    tags: ['websocket'],
    summary: 'WebSocket: live change events, broadcast and RPC, multiplexed on one socket (see docs/api.md)',
    description: 'Upgrade with `Authorization: Bearer` (or send `{ type: "auth", token }` first, within 5 s). ' +
      'Messages: subscribe / unsubscribe / broadcast / rpc / ping; the server sends connected, event, subscribed, ' +
      'unsubscribed, broadcast, rpc.result, rpc.error, pong and error. Close codes: 1001 shutdown, 1009 frame too big, ' +
      '1013 not reading, 4401 unauthenticated or token expired, 4403 access lost to the only subscribed workspace (with others, that subscription ends).',
    security: [{ bearerAuth: [] }, {}] as Array<Record<string, string[]>>,
    responses: { 101: { description: 'Switching Protocols: the socket is open' } }
  }
}

type Paths = Record<string, Record<string, {
  parameters?: Array<{ name: string, in: string, description?: string }>
  responses?: Record<string, { headers?: Record<string, unknown> }>
}>>

/** What plugins/external/rate-limit.ts (@fastify/rate-limit) sends on every answer of a /v1 route but the WebSocket upgrade. */
const RATE_LIMIT_HEADERS = {
  'x-ratelimit-limit': { description: 'requests allowed per window (RATE_LIMIT_MAX; AUTH_RATE_LIMIT_MAX on login and register); only while rate limiting is on', schema: { type: 'integer' as const } },
  'x-ratelimit-remaining': { description: 'requests left in the current window; only while rate limiting is on', schema: { type: 'integer' as const } },
  'x-ratelimit-reset': { description: 'seconds until the window ends; only while rate limiting is on', schema: { type: 'integer' as const } }
}

/** Every response of a rate-limited route (/v1, but not the WebSocket upgrade) names the rate-limit headers. */
function rateLimitHeaders (paths: Paths): Paths {
  for (const [template, operations] of Object.entries(paths)) {
    if (!template.startsWith('/v1/') || template === '/v1/ws') continue
    for (const operation of Object.values(operations)) {
      for (const response of Object.values(operation.responses ?? {})) {
        response.headers = {
          ...response.headers,
          ...Object.fromEntries(Object.keys(RATE_LIMIT_HEADERS).map(name => [name, { $ref: `#/components/headers/${name}` }]))
        }
      }
    }
  }
  return paths
}

/**
 * Fastify's wildcard (`…/files/*`) becomes `{*}` in the document, with a path parameter named `*`
 * that client generators cannot name, and the routes without it (`…/files`, the root) declare it
 * too although their template has none (invalid OpenAPI). Here the wildcard is `{path}`, and the
 * routes without one declare no such parameter.
 */
function namedWildcards (paths: Paths): Paths {
  return Object.fromEntries(Object.entries(paths).map(([template, operations]) => {
    const named = template.replace('{*}', '{path}')
    const hasWildcard = named !== template
    return [named, Object.fromEntries(Object.entries(operations).map(([method, operation]) => [method, {
      ...operation,
      ...(operation.parameters === undefined
        ? {}
        : {
            parameters: operation.parameters.flatMap(p => p.in !== 'path' || p.name !== '*'
              ? [p]
              : hasWildcard ? [{ ...p, name: 'path', description: 'the path inside the workspace, without its leading slash (e.g. src/a.ts); its slashes are not escaped' }] : [])
          })
    }]))]
  }))
}

/**
 * The OpenAPI 3 document at /docs/json and Swagger UI at /docs, generated from the route schemas;
 * the WebSocket protocol's AsyncAPI 3 document at /docs/asyncapi.json (schemas/asyncapi.ts).
 * @see https://github.com/fastify/fastify-swagger
 */
export default fp(async function docs (fastify) {
  await fastify.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Workbench API',
        version: '1.0.0',
        description: 'Workspace files in PostgreSQL with gap-free revisions and live change events. The contract: docs/api.md.\n\n' +
          'Each route lists the statuses it answers with; an error status names its codes (the `code` of the error body). ' +
          'Besides these, any request may be answered before it reaches a route: an unknown route is 404 `NOT_FOUND`; HTTP that ' +
          'Node\'s parser refuses is 400 `VALIDATION_FAILED` (413 `PAYLOAD_TOO_LARGE` for headers over 16 KiB), and the connection is closed.'
      },
      components: {
        securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } },
        headers: RATE_LIMIT_HEADERS
      },
      security: [{ bearerAuth: [] }]
    },
    // @fastify/websocket hides WebSocket routes from the document; describe /v1/ws by hand.
    transformObject: document => {
      if (!('openapiObject' in document)) return document.swaggerObject
      const paths = rateLimitHeaders(namedWildcards((document.openapiObject.paths ?? {}) as unknown as Paths))
      document.openapiObject.paths = { ...paths as unknown as typeof document.openapiObject.paths, '/v1/ws': WS_PATH }
      return document.openapiObject
    }
  })
  await fastify.register(swaggerUi, { routePrefix: '/docs' })
  const asyncApi = JSON.stringify(asyncApiDocument('1.0.0'))
  fastify.get('/docs/asyncapi.json', { schema: { hide: true } }, async function asyncApiJson (_request, reply) {
    return await reply.type('application/json; charset=utf-8').send(asyncApi)
  })
}, { name: 'docs' })
