import { Type, type Static } from '@sinclair/typebox'
import { Nullable } from './common.js'

const Num = Type.Number()
const Rate = Type.Number({ minimum: 0, maximum: 1 })

/** GET /v1/stats: this instance's summary for operators (Prometheus has the full detail). */
export const Stats = Type.Object({
  instance: Type.Object({
    pid: Type.Integer(),
    hostname: Type.String(),
    uptimeSeconds: Num,
    worker: Type.Boolean({ description: 'true when one of WORKERS > 1 processes' })
  }),
  requests: Type.Object({
    windowSeconds: Type.Number({ description: 'the span the figures cover: the last minute, or less when the process is younger' }),
    count: Type.Integer(),
    perSecond: Num,
    latencyMs: Nullable(Type.Object({ p50: Num, p95: Num, p99: Num, max: Num })),
    errorRate: Type.Number({ minimum: 0, maximum: 1, description: 'share of responses with a 5xx status' }),
    clientErrorRate: Type.Number({ minimum: 0, maximum: 1, description: 'share of responses with a 4xx status' }),
    rateLimited: Type.Integer({ description: '429 answers since start' })
  }),
  db: Type.Object({
    kind: Type.String(),
    total: Type.Integer(),
    idle: Type.Integer(),
    waiting: Type.Integer(),
    deadlocks: Type.Integer({ description: 'statements that failed on a deadlock since start' }),
    serializationFailures: Type.Integer({ description: 'statements that failed on a serialization failure since start' })
  }),
  websocket: Type.Object({
    connections: Type.Integer({ description: 'open now on this instance' }),
    connectionsOpened: Type.Integer({ description: 'opened since start (their rate is the reconnect rate)' }),
    subscriptions: Type.Integer({ description: 'subscribe messages since start' }),
    resumes: Type.Integer({ description: 'subscriptions with since (a client resuming) since start' }),
    messagesIn: Type.Integer(),
    messagesOut: Type.Integer()
  }),
  cache: Type.Object({
    hits: Type.Integer(),
    misses: Type.Integer(),
    hitRate: Nullable(Rate),
    evictions: Type.Integer({ description: 'in-process entries dropped to stay within CACHE_MAX_BYTES since start' }),
    bytes: Type.Object({
      memory: Type.Optional(Type.Integer({ description: 'held by the in-process layer (absent when CACHE_MAX_BYTES=0)' })),
      redis: Type.Optional(Type.Integer({ description: 'the Redis server\'s used memory (absent without Redis)' }))
    })
  }),
  memory: Type.Object({ rss: Type.Integer(), heapUsed: Type.Integer(), heapTotal: Type.Integer(), external: Type.Integer() }),
  eventLoopDelayMs: Nullable(Num)
})
export type Stats = Static<typeof Stats>
