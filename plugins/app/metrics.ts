import cluster from 'node:cluster'
import fp from 'fastify-plugin'
import type { Change } from '../../schemas/files.js'
import { createMetrics, UNMATCHED_ROUTE, type Metrics } from '../../src/ops/metrics.js'
import { workerMetricsText } from '../../src/ops/cluster-metrics.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/**
 * Prometheus metrics (prom-client, src/ops/metrics.ts) decorated as `fastify.metrics`; the route
 * is routes/metrics.
 *
 * Request durations are labelled by method, route pattern (`routeOptions.url`) and status code.
 * Gauges that mirror live state (WebSocket connections, database pool) are read at scrape time.
 * Other plugins count into the counters decorated here (`fastify.metrics`): the rate limiter,
 * the read cache, and the WebSocket routes for outgoing frames. The fan-out reports each live
 * delivery through `fanout.onDelivered`, which feeds the event delivery lag histogram.
 * @see https://github.com/siimon/prom-client
 */
export default fp(async function metrics (fastify) {
  // The database and WebSocket plugins register after this one: their state is looked up at scrape time.
  const { metrics: metricsApi, duration, lag } = createMetrics({
    wsConnections: () => fastify.hasDecorator('websocketServer') ? fastify.websocketServer.clients.size : 0,
    dbPool: () => fastify.hasDecorator('dbPool') ? fastify.dbPool() : undefined,
    cacheBytes: async () => fastify.hasDecorator('cache') ? await fastify.cache.bytes() : {}
  })
  if (cluster.isWorker) {
    // The primary gathers every worker's registry over IPC (prom-client's cluster support) and sums them.
    metricsApi.text = workerMetricsText(metricsApi.registry, err => {
      fastify.log.warn({ err }, 'cluster metrics unavailable; answering with this worker\'s')
    })
  }
  fastify.decorate('metrics', metricsApi)

  // A callback hook, not an async one: no promise per request (a throw is still caught by Fastify).
  fastify.addHook('onResponse', function recordRequest (request, reply, done) {
    const ms = reply.elapsedTime
    const status = reply.statusCode
    duration.observe({ method: request.method, route: request.routeOptions.url ?? UNMATCHED_ROUTE, status_code: status }, ms / 1000)
    metricsApi.recent.record(status, ms)
    done()
  })

  fastify.addHook('onReady', async function observeLiveParts () {
    if (fastify.hasDecorator('fanout')) {
      fastify.fanout.onDelivered((change: Change) => {
        const at = new Date(change.at).getTime()
        if (Number.isFinite(at)) lag.observe(Math.max(0, Date.now() - at) / 1000)
      })
    }
    if (fastify.hasDecorator('websocketServer')) {
      fastify.websocketServer.on('connection', socket => {
        metricsApi.wsConnectionsOpened.inc()
        socket.on('message', () => { metricsApi.wsMessagesIn.inc() })
      })
    }
  })
}, { name: 'metrics', dependencies: ['config'] })
