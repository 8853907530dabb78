import cluster from 'node:cluster'
import fp from 'fastify-plugin'
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { Type } from '@sinclair/typebox'
import type { Change } from '../../schemas/files.js'
import { requestClusterMetrics } from '../../src/cluster.js'

/** A counter bound to fixed labels: all the WebSocket code needs to count a frame. */
export interface Tally { inc: (value?: number) => void }

export interface Metrics {
  /** this app's registry (not prom-client's global one, so several apps can share a process) */
  readonly registry: Registry
  /**
   * Read cache. Count one hit per read answered from a cache (label `layer`: `memory` or `redis`)
   * and one miss per read that had to go to PostgreSQL (`layer` of the last cache asked, or none).
   */
  readonly cacheHits: Counter<'layer'>
  readonly cacheMisses: Counter<'layer'>
  /** WebSocket frames received from clients (counted here) and sent to them (counted by routes/ws) */
  readonly wsMessagesIn: Tally
  readonly wsMessagesOut: Tally
  /** requests answered 429, by limit (`api` or `auth`) */
  readonly rateLimited: Counter<'limit'>
  /** rate-limit store failures (Redis down): the request was let through or answered 503 */
  readonly rateLimitStoreErrors: Counter
  /** the last minute of requests on this instance, for /v1/stats */
  readonly recent: RecentRequests
  /** Prometheus text: this instance's, or every worker's summed when running with WORKERS > 1 */
  text: () => Promise<string>
  /** this instance's counter totals since start, for /v1/stats */
  totals: () => Promise<{ cacheHits: number, cacheMisses: number, wsMessagesIn: number, wsMessagesOut: number, rateLimited: number }>
}

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

/** The route label of requests that matched no route (404s, bad URLs): never the raw path. */
export const UNMATCHED_ROUTE = '__unmatched__'

/**
 * Prometheus metrics at GET /metrics (prom-client), in a registry of this app's own.
 *
 * Request durations are labelled by method, route pattern (`routeOptions.url`) and status code.
 * Gauges that mirror live state (WebSocket connections, database pool) are read at scrape time.
 * Other plugins count into the counters decorated here (`fastify.metrics`): the rate limiter,
 * the read cache, and the WebSocket routes for outgoing frames. The fan-out reports each live
 * delivery through `fanout.onDelivered`, which feeds the event delivery lag histogram.
 * @see https://github.com/siimon/prom-client
 */
export default fp(async function metrics (fastify) {
  const registry = new Registry()
  const prefix = 'workbench_'
  collectDefaultMetrics({ register: registry })

  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  const lag = new Histogram({
    name: `${prefix}event_delivery_lag_seconds`,
    help: 'Time from a change\'s commit timestamp to its delivery to this instance\'s subscribers',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  const wsMessages = new Counter({
    name: `${prefix}ws_messages_total`,
    help: 'WebSocket messages, by direction (in: from clients, out: to clients)',
    labelNames: ['direction'] as const,
    registers: [registry]
  })
  new Gauge({ // eslint-disable-line no-new
    name: `${prefix}ws_connections`,
    help: 'Open WebSocket connections on this instance',
    registers: [registry],
    collect () { this.set(fastify.hasDecorator('websocketServer') ? fastify.websocketServer.clients.size : 0) }
  })
  const pool = (): ReturnType<typeof fastify.dbPool> | undefined => fastify.hasDecorator('dbPool') ? fastify.dbPool() : undefined
  new Gauge({ // eslint-disable-line no-new
    name: `${prefix}db_pool_connections`,
    help: 'Database pool connections: total open, and idle among them',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const p = pool()
      this.set({ state: 'total' }, p?.total ?? 0)
      this.set({ state: 'idle' }, p?.idle ?? 0)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: `${prefix}db_pool_waiting_requests`,
    help: 'Queries waiting for a database pool connection',
    registers: [registry],
    collect () { this.set(pool()?.waiting ?? 0) }
  })
  const metricsApi: Metrics = {
    registry,
    cacheHits: new Counter({ name: `${prefix}cache_hits_total`, help: 'File reads answered from a cache, by layer', labelNames: ['layer'] as const, registers: [registry] }),
    cacheMisses: new Counter({ name: `${prefix}cache_misses_total`, help: 'File reads that went to PostgreSQL', labelNames: ['layer'] as const, registers: [registry] }),
    wsMessagesIn: wsMessages.labels({ direction: 'in' }),
    wsMessagesOut: wsMessages.labels({ direction: 'out' }),
    rateLimited: new Counter({ name: `${prefix}rate_limited_total`, help: 'Requests answered 429 RATE_LIMITED, by limit', labelNames: ['limit'] as const, registers: [registry] }),
    rateLimitStoreErrors: new Counter({ name: `${prefix}rate_limit_store_errors_total`, help: 'Rate-limit checks that failed because the store (Redis) did not answer', registers: [registry] }),
    recent: new RecentRequests(),
    text: async () => await registry.metrics(),
    totals: async () => {
      const sum = async (c: Counter<string>, labels: Record<string, string> = {}): Promise<number> =>
        (await c.get()).values.filter(v => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0)
      return {
        cacheHits: await sum(metricsApi.cacheHits),
        cacheMisses: await sum(metricsApi.cacheMisses),
        wsMessagesIn: await sum(wsMessages, { direction: 'in' }),
        wsMessagesOut: await sum(wsMessages, { direction: 'out' }),
        rateLimited: await sum(metricsApi.rateLimited)
      }
    }
  }
  if (cluster.isWorker) {
    // The primary gathers every worker's registry over IPC (prom-client's cluster support) and sums them.
    AggregatorRegistry.setRegistries([registry])
    new AggregatorRegistry() // eslint-disable-line no-new
    metricsApi.text = async () => {
      try {
        return await requestClusterMetrics()
      } catch (err) {
        fastify.log.warn({ err }, 'cluster metrics unavailable; answering with this worker\'s')
        return await registry.metrics()
      }
    }
  }
  fastify.decorate('metrics', metricsApi)

  fastify.addHook('onResponse', async function recordRequest (request, reply) {
    const ms = reply.elapsedTime
    const status = reply.statusCode
    duration.observe({ method: request.method, route: request.routeOptions.url ?? UNMATCHED_ROUTE, status_code: status }, ms / 1000)
    metricsApi.recent.record(status, ms)
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
        socket.on('message', () => { metricsApi.wsMessagesIn.inc() })
      })
    }
  })

  fastify.get('/metrics', {
    schema: {
      tags: ['operations'],
      summary: 'Prometheus metrics (text exposition format)',
      security: [],
      produces: ['text/plain'],
      response: { 200: Type.String({ description: 'Prometheus text format 0.0.4' }) }
    }
  }, async function prometheus (_request, reply) {
    const text = await metricsApi.text()
    return await reply.type(registry.contentType).send(text)
  })
}, { name: 'metrics', dependencies: ['config'] })

/**
 * The last minute of requests (time, duration, status) in a fixed ring, for the /v1/stats
 * summary. Percentiles are exact over what the ring holds; past `capacity` requests a minute the
 * summary covers the most recent `capacity` requests and says how many seconds that is.
 */
export class RecentRequests {
  readonly #at: Float64Array
  readonly #ms: Float64Array
  readonly #status: Uint16Array
  readonly #windowMs: number
  readonly #startedAt = Date.now()
  #next = 0
  #size = 0

  constructor (capacity = 65_536, windowMs = 60_000) {
    this.#at = new Float64Array(capacity)
    this.#ms = new Float64Array(capacity)
    this.#status = new Uint16Array(capacity)
    this.#windowMs = windowMs
  }

  record (status: number, ms: number, now = Date.now()): void {
    this.#at[this.#next] = now
    this.#ms[this.#next] = ms
    this.#status[this.#next] = status
    this.#next = (this.#next + 1) % this.#at.length
    this.#size = Math.min(this.#size + 1, this.#at.length)
  }

  summary (now = Date.now()): RequestSummary {
    const since = now - this.#windowMs
    const durations: number[] = []
    let serverErrors = 0
    let clientErrors = 0
    let oldest = now
    for (let i = 0; i < this.#size; i++) {
      const at = this.#at[i] ?? 0
      if (at < since) continue
      oldest = Math.min(oldest, at)
      durations.push(this.#ms[i] ?? 0)
      const status = this.#status[i] ?? 0
      if (status >= 500) serverErrors++
      else if (status >= 400) clientErrors++
    }
    const n = durations.length
    // The window: a minute, or less when the process is younger or the ring overflowed.
    const full = this.#size === this.#at.length && n === this.#size
    const windowMs = Math.max(1, Math.min(this.#windowMs, now - this.#startedAt, full ? now - oldest : Infinity))
    durations.sort((a, b) => a - b)
    const pct = (p: number): number => round(durations[Math.max(0, Math.ceil(p * n) - 1)] ?? 0)
    return {
      windowSeconds: round(windowMs / 1000),
      requests: n,
      requestsPerSecond: round(n / Math.max(1, windowMs / 1000)),
      latencyMs: n === 0 ? null : { p50: pct(0.5), p95: pct(0.95), p99: pct(0.99), max: round(durations[n - 1] ?? 0) },
      errorRate: n === 0 ? 0 : round(serverErrors / n, 4),
      clientErrorRate: n === 0 ? 0 : round(clientErrors / n, 4)
    }
  }
}

export interface RequestSummary {
  windowSeconds: number
  requests: number
  requestsPerSecond: number
  latencyMs: { p50: number, p95: number, p99: number, max: number } | null
  errorRate: number
  clientErrorRate: number
}

function round (x: number, digits = 3): number {
  const f = 10 ** digits
  return Math.round(x * f) / f
}
