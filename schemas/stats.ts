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
  db: Type.Object({ kind: Type.String(), total: Type.Integer(), idle: Type.Integer(), waiting: Type.Integer() }),
  websocket: Type.Object({ connections: Type.Integer(), messagesIn: Type.Integer(), messagesOut: Type.Integer() }),
  cache: Type.Object({ hits: Type.Integer(), misses: Type.Integer(), hitRate: Nullable(Rate) }),
  memory: Type.Object({ rss: Type.Integer(), heapUsed: Type.Integer(), heapTotal: Type.Integer(), external: Type.Integer() }),
  eventLoopDelayMs: Nullable(Num)
})
export type Stats = Static<typeof Stats>
