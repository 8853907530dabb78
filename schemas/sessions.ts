import { Type, type Static } from '@sinclair/typebox'
import { Cursor, Nullable, Timestamp, Uuid } from './common.js'

export const SessionSummary = Type.Object({
  id: Uuid,
  startedAt: Timestamp,
  lastActivityAt: Timestamp,
  operations: Type.Integer(),
  errors: Type.Integer()
})
export type SessionSummary = Static<typeof SessionSummary>
export const SessionList = Type.Object({ items: Type.Array(SessionSummary) })

/** An activity entry as it was recorded (with its id), as the API lists it. */
export const ActivityRecord = Type.Object({
  id: Type.Integer(),
  at: Timestamp,
  sessionId: Uuid,
  userId: Uuid,
  workspaceId: Nullable(Type.String()),
  type: Type.String({ description: 'file.write, file.delete, operation, batch, revert, auth.*, ws.connect, ws.disconnect; with ACTIVITY_LOG_READS also read, ws' }),
  op: Nullable(Type.String()),
  path: Nullable(Type.String()),
  newPath: Nullable(Type.String()),
  status: Type.Integer(),
  code: Nullable(Type.String()),
  revision: Nullable(Type.Integer()),
  durationMs: Type.Integer(),
  details: Nullable(Type.Object({}, { additionalProperties: true })),
  context: Nullable(Type.String({ description: 'the request: `GET /v1/…` over HTTP, `RPC <method>` or `WS <type>` over a WebSocket' })),
  message: Nullable(Type.String({ description: "a failure's error message" })),
  stack: Nullable(Type.String({ description: "a 5xx's stack trace, recorded in development only" }))
})
export type ActivityRecord = Static<typeof ActivityRecord>
export const ActivityPage = Type.Object({ items: Type.Array(ActivityRecord), nextCursor: Nullable(Type.String()) })
export type ActivityPage = Static<typeof ActivityPage>

export const SessionParams = Type.Object({ sid: Uuid })
export const ActivityQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Cursor)
})
