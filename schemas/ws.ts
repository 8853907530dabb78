import { Type, type Static } from '@sinclair/typebox'
import { Text, UUID_PATTERN, Uuid } from './common.js'
import { Change, ChangesQuery, Encoding, Executable, LineRange, MediaType, Metadata, Operation, TreeQuery } from './files.js'
import { FindQuery, SearchBody } from './search.js'
import { ForkBody } from './snapshots.js'

/**
 * The WebSocket protocol's messages, both ways, and the params of each RPC method: the source of
 * the AsyncAPI document (/docs/asyncapi.json) and of the server's own frame types.
 */

/** `workspace:<id>`, the id spelled as every id is (lower-case hex 8-4-4-4-12). */
export const Channel = Type.String({ pattern: `^workspace:${UUID_PATTERN.slice(1)}` })

/**
 * A socket's presence state on a channel: a small JSON object (open file, selection, display
 * name). Its serialised size is bounded by PRESENCE_MAX_BYTES and its nesting by
 * PRESENCE_MAX_DEPTH (checked by the server: PRESENCE_TOO_LARGE).
 */
export const PresenceState = Type.Record(Type.String(), Type.Unknown(), { description: 'at most PRESENCE_MAX_BYTES (default 2048) serialised, objects/arrays nested at most 4 deep' })
/** The deepest nesting of objects and arrays in a presence state (the state itself is depth 1). */
export const PRESENCE_MAX_DEPTH = 4

/** One member of a channel's presence: a session, with the state it set last. */
export const PresenceMember = Type.Object({ sessionId: Type.String(), userId: Type.String(), state: PresenceState })

export const ClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('auth'), token: Type.String({ minLength: 1, maxLength: 8192 }), sessionId: Type.Optional(Uuid) }),
  Type.Object({ type: Type.Literal('subscribe'), channel: Channel, since: Type.Optional(Type.Integer({ minimum: 0 })) }),
  Type.Object({ type: Type.Literal('unsubscribe'), channel: Channel }),
  Type.Object({ type: Type.Literal('broadcast'), channel: Channel, data: Type.Unknown() }),
  Type.Object({ type: Type.Literal('rpc'), id: Type.Union([Type.String({ maxLength: 200 }), Type.Number()]), method: Type.String({ maxLength: 100 }), params: Type.Optional(Type.Object({}, { additionalProperties: true })) }),
  Type.Object({ type: Type.Literal('presence.set'), channel: Channel, state: PresenceState }),
  Type.Object({ type: Type.Literal('ping') })
])
export type ClientMessage = Static<typeof ClientMessage>

const Workspace = Type.Object({ workspaceId: Uuid })
const IdempotencyKey = Type.Object({ idempotencyKey: Type.Optional(Text({ minLength: 1, maxLength: 200 })) })
const strict = { additionalProperties: false }

export const RpcParams = {
  // `format: 'raw'` answers like 'json' here: a JSON frame carries content as utf8 or base64 anyway.
  'files.read': Type.Object({
    workspaceId: Uuid,
    path: Type.String({ maxLength: 4096 }),
    format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('raw')])),
    revision: Type.Optional(Type.Integer({ minimum: 0 })),
    lines: Type.Optional(LineRange)
  }, strict),
  'files.write': Type.Object({
    workspaceId: Uuid,
    path: Type.String({ maxLength: 4096 }),
    content: Type.String(),
    encoding: Type.Optional(Encoding),
    mimeType: Type.Optional(MediaType),
    metadata: Type.Optional(Metadata),
    executable: Type.Optional(Executable),
    ifMatch: Type.Optional(Type.String({ maxLength: 100 })),
    ifNoneMatch: Type.Optional(Type.String({ maxLength: 100 })),
    idempotencyKey: Type.Optional(Text({ minLength: 1, maxLength: 200 }))
  }, strict),
  'files.delete': Type.Object({
    workspaceId: Uuid,
    path: Type.String({ maxLength: 4096 }),
    ifMatch: Type.Optional(Type.String({ maxLength: 100 })),
    idempotencyKey: Type.Optional(Text({ minLength: 1, maxLength: 200 }))
  }, strict),
  'operations.apply': Type.Composite([Operation, Workspace, IdempotencyKey], strict),
  'operations.batch': Type.Composite([Workspace, IdempotencyKey, Type.Object({ operations: Type.Array(Operation, { minItems: 1, maxItems: 1000 }) })], strict),
  'tree.list': Type.Composite([Workspace, TreeQuery], strict),
  'changes.list': Type.Composite([Workspace, ChangesQuery], strict),
  search: Type.Composite([Workspace, SearchBody], strict),
  find: Type.Composite([Workspace, FindQuery], strict),
  // snapshots and forks (issue 16): POST …/fork, the source's id as workspaceId
  'workspaces.fork': Type.Composite([Workspace, IdempotencyKey, ForkBody], strict)
}
export type RpcMethod = keyof typeof RpcParams

const RpcId = Type.Union([Type.String({ maxLength: 200 }), Type.Number()])
const ErrorBody = { code: Type.String(), message: Type.String() }

/** Server → client messages (docs/api.md, "WebSocket"). */
export const ServerMessages = {
  connected: Type.Object({
    type: Type.Literal('connected'),
    clientId: Type.String(),
    serverTime: Type.String({ format: 'date-time' }),
    config: Type.Object({ heartbeatMs: Type.Integer(), maxPayload: Type.Integer() })
  }, { description: 'the socket is authenticated' }),
  event: Type.Object({
    type: Type.Literal('event'),
    channel: Channel,
    event: Type.Literal('file.changed'),
    revision: Type.Integer({ minimum: 1 }),
    data: Change
  }, { description: 'one change of a subscribed workspace, replayed or live, in revision order' }),
  subscribed: Type.Object({
    type: Type.Literal('subscribed'),
    channel: Channel,
    revision: Type.Integer({ minimum: 0 }),
    reset: Type.Optional(Type.Literal(true))
  }, { description: 'after the replay: the head; reset when `since` is older than the history kept' }),
  unsubscribed: Type.Object({ type: Type.Literal('unsubscribed'), channel: Channel }),
  broadcast: Type.Object({
    type: Type.Literal('broadcast'),
    channel: Channel,
    data: Type.Unknown(),
    from: Type.Object({ userId: Uuid, sessionId: Uuid }),
    timestamp: Type.String({ format: 'date-time' })
  }, { description: 'an ephemeral message from another subscriber of the channel' }),
  presence: Type.Object({
    type: Type.Literal('presence'),
    channel: Channel,
    kind: Type.Union([Type.Literal('join'), Type.Literal('update'), Type.Literal('leave')]),
    sessionId: Type.String(),
    userId: Type.String(),
    state: PresenceState
  }, { description: 'a member of a subscribed channel joined, changed its state, or left (state: its last one)' }),
  'presence.members': Type.Object({
    type: Type.Literal('presence.members'),
    channel: Channel,
    members: Type.Array(PresenceMember)
  }, { description: 'right after every `subscribed`: the channel\'s current members, replacing whatever the client knew' }),
  'rpc.result': Type.Object({ type: Type.Literal('rpc.result'), id: RpcId, result: Type.Unknown() }),
  'rpc.error': Type.Object({
    type: Type.Literal('rpc.error'),
    id: RpcId,
    error: Type.Object({ ...ErrorBody, details: Type.Optional(Type.Record(Type.String(), Type.Unknown())) })
  }),
  pong: Type.Object({ type: Type.Literal('pong'), timestamp: Type.String({ format: 'date-time' }) }),
  error: Type.Object({
    type: Type.Literal('error'),
    ...ErrorBody,
    channel: Type.Optional(Type.String()),
    id: Type.Optional(RpcId)
  }, { additionalProperties: true, description: 'a message that could not be handled; the socket stays open' })
}
export const ServerMessage = Type.Union(Object.values(ServerMessages))
export type ServerMessage = Static<typeof ServerMessage>
