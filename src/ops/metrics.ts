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
  /** every database statement's duration (Kysely's query log), by outcome (`ok` or `error`) */
  readonly dbQuery: Histogram<'outcome'>
  /** how long each pooled connection was held: one transaction, or one statement outside any */
  readonly dbTransaction: Histogram
  /** statements that take a row lock (`FOR UPDATE`: the workspace lock): mostly waiting for it */
  readonly dbLockWait: Histogram
  /** statements that failed on a deadlock (40P01) or a serialization failure (40001) */
  readonly dbConflicts: Counter<'kind'>
  /** entries the in-process read cache dropped to stay within CACHE_MAX_BYTES */
  readonly cacheEvictions: Counter<'layer'>
  /** WebSocket subscriptions, `resume="true"` when they came with `since` (a reconnect) */
  readonly wsSubscriptions: Counter<'resume'>
  /** WebSocket connections opened on this instance (their rate is the reconnect rate) */
  readonly wsConnectionsOpened: Counter
  /** requests each group commit's transaction ran (src/mutations/group-commit.ts), 1 for one alone */
  readonly groupCommitSize: Histogram
  /** Prometheus text: this instance's, or every worker's summed when running with WORKERS > 1 */
  text: () => Promise<string>
  /** this instance's counter totals since start, for /v1/stats */
  totals: () => Promise<Totals>
}

/** This instance's counter totals since start (/v1/stats). */
export interface Totals {
  cacheHits: number
  cacheMisses: number
  cacheEvictions: number
  wsMessagesIn: number
  wsMessagesOut: number
  wsSubscriptions: number
  wsResumes: number
  wsConnectionsOpened: number
  rateLimited: number
  deadlocks: number
  serializationFailures: number
}

/** The route label of requests that matched no route (404s, bad URLs): never the raw path. */
export const UNMATCHED_ROUTE = '__unmatched__'

/** Live state read at scrape time; a source that is not there (yet) reads as zero. */
export interface MetricSources {
  wsConnections: () => number
  dbPool: () => { total: number, idle: number, waiting: number } | undefined
  /** bytes held by each read-cache layer (Redis: its whole used memory), read at scrape time */
  cacheBytes: () => Promise<Partial<Record<'memory' | 'redis', number>>>
}

/** The decorated API, plus the two histograms that only the metrics plugin's hooks observe. */
export interface Instruments {
  metrics: Metrics
  duration: Histogram<'method' | 'route' | 'status_code'>
  lag: Histogram
}

const PREFIX = 'workbench_'
const DB_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

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
    dbQuery: new Histogram({ name: `${PREFIX}db_query_duration_seconds`, help: 'Database statement duration in seconds, by outcome', labelNames: ['outcome'] as const, buckets: DB_BUCKETS, registers: [registry] }),
    dbTransaction: new Histogram({ name: `${PREFIX}db_transaction_duration_seconds`, help: 'How long a pooled database connection was held: one transaction, or one statement outside any', buckets: DB_BUCKETS, registers: [registry] }),
    dbLockWait: new Histogram({ name: `${PREFIX}db_lock_wait_seconds`, help: 'Duration of the statements that take a row lock (the workspace lock): the wait for it, mostly', buckets: DB_BUCKETS, registers: [registry] }),
    dbConflicts: new Counter({ name: `${PREFIX}db_conflicts_total`, help: 'Statements that failed on a deadlock or a serialization failure, by kind', labelNames: ['kind'] as const, registers: [registry] }),
    cacheEvictions: new Counter({ name: `${PREFIX}cache_evictions_total`, help: 'Entries the read cache dropped to stay within its bound, by layer', labelNames: ['layer'] as const, registers: [registry] }),
    wsSubscriptions: new Counter({ name: `${PREFIX}ws_subscriptions_total`, help: 'WebSocket subscriptions; resume="true": with since (a reconnect resuming)', labelNames: ['resume'] as const, registers: [registry] }),
    wsConnectionsOpened: new Counter({ name: `${PREFIX}ws_connections_opened_total`, help: 'WebSocket connections opened on this instance', registers: [registry] }),
    groupCommitSize: new Histogram({ name: `${PREFIX}group_commit_size`, help: 'Mutations run in one group commit transaction (1: alone)', buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256], registers: [registry] }),
    text: async () => await registry.metrics(),
    totals: async () => ({
      cacheHits: await sum(metrics.cacheHits),
      cacheMisses: await sum(metrics.cacheMisses),
      cacheEvictions: await sum(metrics.cacheEvictions),
      wsMessagesIn: await sum(wsMessages, { direction: 'in' }),
      wsMessagesOut: await sum(wsMessages, { direction: 'out' }),
      wsSubscriptions: await sum(metrics.wsSubscriptions),
      wsResumes: await sum(metrics.wsSubscriptions, { resume: 'true' }),
      wsConnectionsOpened: await sum(metrics.wsConnectionsOpened),
      rateLimited: await sum(metrics.rateLimited),
      deadlocks: await sum(metrics.dbConflicts, { kind: 'deadlock' }),
      serializationFailures: await sum(metrics.dbConflicts, { kind: 'serialization' })
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
    name: `${PREFIX}cache_bytes`,
    help: 'Bytes held by the read cache, by layer (redis: the Redis server\'s used memory, shared with pub/sub and rate limits)',
    labelNames: ['layer'] as const,
    registers: [registry],
    async collect () {
      for (const [layer, bytes] of Object.entries(await sources.cacheBytes())) this.set({ layer }, bytes)
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
