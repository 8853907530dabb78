/** This instance's Prometheus registry and instruments (prom-client); plugins/app/metrics.ts decorates and feeds them. */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import { RecentRequests } from './recent-requests.js'

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

/** The route label of requests that matched no route (404s, bad URLs): never the raw path. */
export const UNMATCHED_ROUTE = '__unmatched__'

/** Live state read at scrape time; a source that is not there (yet) reads as zero. */
export interface MetricSources {
  wsConnections: () => number
  dbPool: () => { total: number, idle: number, waiting: number } | undefined
}

/** The decorated API, plus the two histograms that only the metrics plugin's hooks observe. */
export interface Instruments {
  metrics: Metrics
  duration: Histogram<'method' | 'route' | 'status_code'>
  lag: Histogram
}

const PREFIX = 'workbench_'

/**
 * A registry of this app's own with Node's default metrics, request durations (by method, route
 * pattern and status code), event delivery lag, and the counters other plugins count into.
 */
export function createMetrics (sources: MetricSources): Instruments {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration in seconds, by method, route pattern and status code',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  const lag = new Histogram({
    name: `${PREFIX}event_delivery_lag_seconds`,
    help: 'Time from a change\'s commit timestamp to its delivery to this instance\'s subscribers',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry]
  })
  const wsMessages = new Counter({
    name: `${PREFIX}ws_messages_total`,
    help: 'WebSocket messages, by direction (in: from clients, out: to clients)',
    labelNames: ['direction'] as const,
    registers: [registry]
  })
  addStateGauges(registry, sources)
  const metrics: Metrics = {
    registry,
    cacheHits: new Counter({ name: `${PREFIX}cache_hits_total`, help: 'File reads answered from a cache, by layer', labelNames: ['layer'] as const, registers: [registry] }),
    cacheMisses: new Counter({ name: `${PREFIX}cache_misses_total`, help: 'File reads that went to PostgreSQL', labelNames: ['layer'] as const, registers: [registry] }),
    wsMessagesIn: wsMessages.labels({ direction: 'in' }),
    wsMessagesOut: wsMessages.labels({ direction: 'out' }),
    rateLimited: new Counter({ name: `${PREFIX}rate_limited_total`, help: 'Requests answered 429 RATE_LIMITED, by limit', labelNames: ['limit'] as const, registers: [registry] }),
    rateLimitStoreErrors: new Counter({ name: `${PREFIX}rate_limit_store_errors_total`, help: 'Rate-limit checks that failed because the store (Redis) did not answer', registers: [registry] }),
    recent: new RecentRequests(),
    text: async () => await registry.metrics(),
    totals: async () => ({
      cacheHits: await sum(metrics.cacheHits),
      cacheMisses: await sum(metrics.cacheMisses),
      wsMessagesIn: await sum(wsMessages, { direction: 'in' }),
      wsMessagesOut: await sum(wsMessages, { direction: 'out' }),
      rateLimited: await sum(metrics.rateLimited)
    })
  }
  return { metrics, duration, lag }
}

/** Gauges that mirror live state (WebSocket connections, database pool), read at scrape time. */
function addStateGauges (registry: Registry, sources: MetricSources): void {
  new Gauge({ // eslint-disable-line no-new
    name: `${PREFIX}ws_connections`,
    help: 'Open WebSocket connections on this instance',
    registers: [registry],
    collect () { this.set(sources.wsConnections()) }
  })
  new Gauge({ // eslint-disable-line no-new
    name: `${PREFIX}db_pool_connections`,
    help: 'Database pool connections: total open, and idle among them',
    labelNames: ['state'] as const,
    registers: [registry],
    collect () {
      const p = sources.dbPool()
      this.set({ state: 'total' }, p?.total ?? 0)
      this.set({ state: 'idle' }, p?.idle ?? 0)
    }
  })
  new Gauge({ // eslint-disable-line no-new
    name: `${PREFIX}db_pool_waiting_requests`,
    help: 'Queries waiting for a database pool connection',
    registers: [registry],
    collect () { this.set(sources.dbPool()?.waiting ?? 0) }
  })
}

/** A counter's total over the samples whose labels include `labels`. */
async function sum (counter: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  return (await counter.get()).values.filter(v => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0)
}
