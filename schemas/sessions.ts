import { Type } from '@sinclair/typebox'
import { Cursor, Timestamp, Uuid } from './common.js'

const Nullable = <T extends ReturnType<typeof Type.String> | ReturnType<typeof Type.Integer>>(t: T) => Type.Union([t, Type.Null()])

export const SessionSummary = Type.Object({
  id: Uuid,
  startedAt: Timestamp,
  lastActivityAt: Timestamp,
  operations: Type.Integer(),
  errors: Type.Integer()
})
export const SessionList = Type.Object({ items: Type.Array(SessionSummary) })

export const ActivityEntry = Type.Object({
  id: Type.Integer(),
  at: Timestamp,
  sessionId: Uuid,
  userId: Uuid,
  workspaceId: Nullable(Type.String()),
  type: Type.String({ description: 'file.write, file.delete, operation, batch, revert, auth.*, ws.connect, ws.disconnect' }),
  op: Nullable(Type.String()),
  path: Nullable(Type.String()),
  newPath: Nullable(Type.String()),
  status: Type.Integer(),
  code: Nullable(Type.String()),
  revision: Nullable(Type.Integer()),
  durationMs: Type.Integer(),
  details: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()])
})
export const ActivityPage = Type.Object({ items: Type.Array(ActivityEntry), nextCursor: Nullable(Type.String()) })

export const SessionParams = Type.Object({ sid: Uuid })
export const ActivityQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Cursor)
})
