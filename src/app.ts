import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import type { Config } from './core/config.js'
import { clientErrorAnswer, errors, publicError, toAppError } from './core/errors.js'
// App plugins the external ones build on.
import configPlugin from '../plugins/app/config.js'
import errorHandler from '../plugins/app/error-handler.js'
import metrics from '../plugins/app/metrics.js'
import database from '../plugins/app/database.js'
import auth from '../plugins/app/auth.js'
// External plugins, thinly wrapped.
import docs from '../plugins/external/docs.js'
import security from '../plugins/external/security.js'
import redis from '../plugins/external/redis.js'
import overload from '../plugins/external/overload.js'
import rateLimit from '../plugins/external/rate-limit.js'
import websocket from '../plugins/external/websocket.js'
// App plugins on top of Redis and the database.
import events from '../plugins/app/events.js'
import activity from '../plugins/app/activity.js'
import cache from '../plugins/app/cache.js'
import retention from '../plugins/app/retention.js'
import service from '../plugins/app/service.js'
import mcp from '../plugins/app/mcp.js'
import search from '../plugins/app/search.js'
import snapshots from '../plugins/app/snapshots.js'
// Routes.
import metricsRoutes from '../routes/metrics/index.js'
import healthRoutes from '../routes/health/index.js'
import authRoutes from '../routes/auth/index.js'
import workspaceRoutes from '../routes/workspaces/index.js'
import snapshotRoutes from '../routes/snapshots/index.js'
import fileRoutes from '../routes/files/index.js'
import archiveRoutes from '../routes/archive/index.js'
import wsRoutes from '../routes/ws/index.js'
import statsRoutes from '../routes/stats/index.js'
import sessionRoutes from '../routes/sessions/index.js'
import mcpRoutes from '../routes/mcp/index.js'
import searchRoutes from '../routes/search/index.js'
import ideRoutes from '../routes/app/index.js'

/**
 * The composition root: builds the application from its plugins (shared, not encapsulated) and
 * then its route plugins (encapsulated), every one registered here by hand. server.ts listens on
 * it; tests use it through test/helpers/app.ts.
 */
export async function buildApp (config: Config, options: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: {
      level: config.LOG_LEVEL,
      redact: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization'],
      serializers: {
        // Tokens are refused in query strings, but a client may still send one: never log it.
        req: (request: FastifyRequest) => ({
          method: request.method,
          url: request.url.replace(/([?&](?:access_)?token=)[^&]*/gi, '$1[REDACTED]'),
          host: request.host,
          remoteAddress: request.ip
        })
      }
    },
    // JSON bodies up to 1 MiB; the routes that carry file content raise it (routes/files).
    bodyLimit: 1024 * 1024,
    requestTimeout: 120_000,
    // PGlite's first start (WASM compile, initdb, migrations) can take over the default 10 s.
    pluginTimeout: 120_000,
    keepAliveTimeout: 10_000,
    trustProxy: trustProxy(config.TRUST_PROXY),
    // A URL that cannot be decoded (`%ZZ`) is a bad path, in the contract's error shape.
    // HTTP that Node's parser refuses, answered in the contract's error shape too.
    clientErrorHandler: function clientError (error, socket) {
      if ((error as { code?: string }).code === 'ECONNRESET' || socket.destroyed) return
      if (socket.writable) socket.write(clientErrorAnswer(error as { code?: string }))
      socket.destroy(error)
    },
    frameworkErrors: function frameworkErrors (error, request, reply) {
      const appError = error.code === 'FST_ERR_BAD_URL' ? errors.invalidPath(request.url, 'malformed percent-encoding') : toAppError(error)
      void (reply as FastifyReply).code(appError.statusCode).send(publicError(appError, config.NODE_ENV === 'development').toJSON())
    },
    ...options
  }).withTypeProvider<TypeBoxTypeProvider>()

  // JSON only: a text/plain body is 415 UNSUPPORTED_MEDIA_TYPE rather than a confusing 400.
  app.removeContentTypeParser('text/plain')
  // Graceful shutdown: requests in flight when closing starts finish, and their keep-alive
  // connections are closed after the response instead of holding the close up.
  let closing = false
  app.addHook('preClose', async () => { closing = true })
  app.addHook('onSend', (request, reply, payload, done) => {
    if (closing) void reply.header('connection', 'close')
    done(null, payload)
  })
  // The app's foundations, which the external plugins below need: configuration, the error
  // contract and validators, metrics (the rate limiter counts into them), the database and auth
  // (the rate limiter keys on the verified user).
  await app.register(configPlugin, { config })
  await app.register(errorHandler)
  await app.register(metrics)
  await app.register(database)
  await app.register(auth)

  // External plugins, thinly wrapped. Before any route: docs and the rate limiter see routes as
  // they are added. Order matters: security headers are set before load shedding may answer.
  await app.register(docs)
  await app.register(security)
  await app.register(redis)
  await app.register(overload)
  await app.register(rateLimit)
  await app.register(websocket)

  // App plugins on top of Redis and the database: live events, activity, the read cache,
  // retention, the file service the routes call, and the MCP server on top of it.
  await app.register(events)
  await app.register(activity)
  await app.register(cache)
  await app.register(retention)
  await app.register(service)
  await app.register(search)
  await app.register(snapshots)
  await app.register(mcp)

  // Routes, each plugin encapsulated. /metrics, /health and /ready sit outside /v1: no rate limit.
  await app.register(metricsRoutes)
  await app.register(healthRoutes)
  await app.register(authRoutes, { prefix: '/v1' })
  await app.register(workspaceRoutes, { prefix: '/v1' })
  await app.register(snapshotRoutes, { prefix: '/v1/workspaces' })
  await app.register(fileRoutes, { prefix: '/v1/workspaces' })
  await app.register(archiveRoutes, { prefix: '/v1/workspaces' })
  await app.register(wsRoutes, { prefix: '/v1' })
  await app.register(statsRoutes, { prefix: '/v1' })
  await app.register(sessionRoutes, { prefix: '/v1' })
  await app.register(mcpRoutes, { prefix: '/v1/workspaces' })
  await app.register(searchRoutes, { prefix: '/v1/workspaces' })
  // The IDE page (dist/app) at /app/, outside /v1: no auth, no rate limit.
  if (config.SERVE_APP) await app.register(ideRoutes)
  return app
}

/**
 * TRUST_PROXY as Fastify's trustProxy: a boolean, a list of addresses, or a hop count. Fastify 5
 * now refuses a bare number (it cannot check the nearest peer), so a count becomes a function
 * trusting that many nearest hops, whoever they are: use it only when clients cannot reach the
 * server except through those proxies.
 */
function trustProxy (value: string): boolean | string[] | ((address: string, hop: number) => boolean) {
  const v = value.trim()
  if (v === 'true' || v === 'false') return v === 'true'
  if (/^\d+$/.test(v)) {
    const hops = Number(v)
    return (_address, hop) => hop < hops
  }
  return v.split(',').map(a => a.trim()).filter(a => a !== '')
}
