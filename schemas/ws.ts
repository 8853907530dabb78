import { Type, type Static } from '@sinclair/typebox'
import { Text, UUID_PATTERN, Uuid } from './common.js'
import { ChangesQuery, Encoding, MediaType, Metadata, Operation, TreeQuery } from './files.js'
import { FindQuery, SearchBody } from './search.js'

/** Client → server WebSocket messages, and the params of each RPC method. */

/** `workspace:<id>`, the id spelled as every id is (lower-case hex 8-4-4-4-12). */
export const Channel = Type.String({ pattern: `^workspace:${UUID_PATTERN.slice(1)}` })

export const ClientMessage = Type.Union([
  Type.Object({ type: Type.Literal('auth'), token: Type.String({ minLength: 1, maxLength: 8192 }), sessionId: Type.Optional(Uuid) }),
  Type.Object({ type: Type.Literal('subscribe'), channel: Channel, since: Type.Optional(Type.Integer({ minimum: 0 })) }),
  Type.Object({ type: Type.Literal('unsubscribe'), channel: Channel }),
  Type.Object({ type: Type.Literal('broadcast'), channel: Channel, data: Type.Unknown() }),
  Type.Object({ type: Type.Literal('rpc'), id: Type.Union([Type.String({ maxLength: 200 }), Type.Number()]), method: Type.String({ maxLength: 100 }), params: Type.Optional(Type.Object({}, { additionalProperties: true })) }),
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
    revision: Type.Optional(Type.Integer({ minimum: 0 }))
  }, strict),
  'files.write': Type.Object({
    workspaceId: Uuid,
    path: Type.String({ maxLength: 4096 }),
    content: Type.String(),
    encoding: Type.Optional(Encoding),
    mimeType: Type.Optional(MediaType),
    metadata: Type.Optional(Metadata),
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
  find: Type.Composite([Workspace, FindQuery], strict)
}
export type RpcMethod = keyof typeof RpcParams
