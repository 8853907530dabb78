import { Type, type Static } from '@sinclair/typebox'
import { Cursor, JSON_DOCUMENT, Nullable, Timestamp, Uuid } from './common.js'

export const Encoding = Type.Union([Type.Literal('utf8'), Type.Literal('base64')], { default: 'utf8' })
export const MAX_METADATA_DEPTH = 64
export const Metadata = Type.Object({}, {
  additionalProperties: true,
  [JSON_DOCUMENT]: { maxDepth: MAX_METADATA_DEPTH },
  description: `a JSON object of at most 16 KiB, nested at most ${MAX_METADATA_DEPTH} levels, without NUL or lone surrogates in its keys and strings`
})

// RFC 9110 token characters: ASCII letters, digits and !#$%&'*+-.^_`|~ (no space, quote, separator or control).
const TOKEN = "[-!#$%&'*+.^_`|~0-9A-Za-z]+"
/**
 * A media type as RFC 9110 writes it, restricted to tokens: `type "/" subtype *( OWS ";" OWS name "=" value )`.
 * A stored mimeType becomes a raw read's Content-Type header, so nothing else may reach it.
 */
export const MEDIA_TYPE_PATTERN = `^${TOKEN}/${TOKEN}(?:[ \t]*;[ \t]*${TOKEN}=${TOKEN})*$`
export const MediaType = Type.String({
  minLength: 1,
  maxLength: 255,
  pattern: MEDIA_TYPE_PATTERN,
  description: 'type/subtype with optional ;name=value parameters, RFC 9110 token characters only (no quoted values)'
})
export const Kind = Type.Union([Type.Literal('file'), Type.Literal('directory')])

export type Kind = Static<typeof Kind>

export const FileMeta = Type.Object({
  path: Type.String(),
  name: Type.String(),
  kind: Kind,
  size: Nullable(Type.Integer()),
  mimeType: Nullable(Type.String()),
  etag: Type.String(),
  version: Type.Integer(),
  sha256: Nullable(Type.String()),
  metadata: Metadata,
  createdAt: Timestamp,
  updatedAt: Timestamp,
  createdBy: Nullable(Type.String()),
  updatedBy: Nullable(Type.String())
}, { title: 'FileMeta' })
export type FileMeta = Static<typeof FileMeta>

/** A file (meta + content + encoding) or a directory (meta + children). */
export const Entry = Type.Composite([FileMeta, Type.Object({
  content: Type.Optional(Type.String()),
  encoding: Type.Optional(Type.Union([Type.Literal('utf8'), Type.Literal('base64')])),
  children: Type.Optional(Type.Array(FileMeta)),
  childrenTruncated: Type.Optional(Type.Boolean({ description: 'more children than a listing returns; page them with /tree' }))
})], { title: 'Entry' })
export type Entry = Static<typeof Entry>

export const ReadQuery = Type.Object({
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('raw')], { default: 'json' })),
  revision: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'read the entry as it was right after this revision' }))
})

export const WriteBody = Type.Object({
  content: Type.String(),
  encoding: Type.Optional(Encoding),
  mimeType: Type.Optional(MediaType),
  metadata: Type.Optional(Metadata)
}, { additionalProperties: false })

export const WriteResult = Type.Object({ file: FileMeta, revision: Type.Integer() })
export type WriteResult = Static<typeof WriteResult>
export const DeleteResult = Type.Object({ revision: Type.Integer(), deleted: Type.Integer() })
export type DeleteResult = Static<typeof DeleteResult>

export const OpType = Type.Union(['create', 'update', 'delete', 'move', 'copy', 'mkdir'].map(t => Type.Literal(t as 'create' | 'update' | 'delete' | 'move' | 'copy' | 'mkdir')))

export type OpType = Static<typeof OpType>

export const Operation = Type.Object({
  type: OpType,
  path: Type.String({ maxLength: 4096 }),
  newPath: Type.Optional(Type.String({ maxLength: 4096 })),
  content: Type.Optional(Type.String()),
  encoding: Type.Optional(Encoding),
  mimeType: Type.Optional(MediaType),
  metadata: Type.Optional(Metadata),
  ifMatch: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  overwrite: Type.Optional(Type.Boolean()),
  sessionId: Type.Optional(Uuid)
}, { additionalProperties: false, title: 'Operation' })
export type Operation = Static<typeof Operation>

export const DeletedData = Type.Object({ deleted: Type.Integer() })
/** What one operation answers: the entry it left, or how many entries a delete removed. */
export const OpData = Type.Union([FileMeta, DeletedData])
export type OpData = Static<typeof OpData>

export const OperationResult = Type.Object({
  success: Type.Literal(true),
  data: OpData,
  revision: Type.Integer(),
  timestamp: Timestamp
})
export type OperationResult = Static<typeof OperationResult>

export const BatchBody = Type.Object({
  operations: Type.Array(Operation, { minItems: 1, maxItems: 1000 })
}, { additionalProperties: false })

export const BatchResult = Type.Object({
  results: Type.Array(Type.Object({ data: OpData, revision: Type.Integer() })),
  revision: Type.Integer()
})
export type BatchResult = Static<typeof BatchResult>

export const TreeQuery = Type.Object({
  path: Type.String({ default: '/', maxLength: 4096 }),
  depth: Type.Integer({ minimum: 0, maximum: 1000, default: 1, description: '0: unlimited' }),
  limit: Type.Integer({ minimum: 1, maximum: 5000, default: 1000 }),
  cursor: Type.Optional(Cursor)
})
export type TreeQuery = Static<typeof TreeQuery>

export const TreeResult = Type.Object({
  revision: Type.Integer({ description: 'the workspace revision the first page was read at' }),
  entries: Type.Array(FileMeta),
  nextCursor: Nullable(Type.String())
})
export type TreeResult = Static<typeof TreeResult>

export const Change = Type.Object({
  revision: Type.Integer(),
  op: OpType,
  kind: Kind,
  path: Type.String(),
  newPath: Nullable(Type.String()),
  etag: Nullable(Type.String()),
  version: Nullable(Type.Integer()),
  sha256: Nullable(Type.String()),
  size: Nullable(Type.Integer()),
  userId: Nullable(Type.String()),
  sessionId: Nullable(Type.String()),
  opId: Nullable(Type.String()),
  at: Timestamp
}, { title: 'Change' })
export type Change = Static<typeof Change>

export const ChangesQuery = Type.Object({
  // A maximum, so that a query's `since=1e400` (Infinity once coerced) is refused: see makeAjv.
  since: Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, default: 0 }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 500 })
})

export const ChangesResult = Type.Object({
  head: Type.Integer(),
  changes: Type.Array(Change),
  reset: Type.Optional(Type.Boolean())
})
export type ChangesResult = Static<typeof ChangesResult>

export const HistoryQuery = Type.Object({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
  cursor: Type.Optional(Cursor)
})

export const HistoryResult = Type.Object({
  items: Type.Array(Change),
  nextCursor: Nullable(Type.String())
})
export type HistoryResult = Static<typeof HistoryResult>

export const RevertBody = Type.Object({
  sessionId: Type.Optional(Uuid),
  toRevision: Type.Optional(Type.Integer({ minimum: 0 })),
  dryRun: Type.Optional(Type.Boolean({ description: 'compute and return the changes without applying them' })),
  force: Type.Optional(Type.Boolean({ description: 'leave paths another session changed afterwards as they are, revert the rest' }))
}, { additionalProperties: false })
export type RevertBody = Static<typeof RevertBody>

export const RevertResult = Type.Object({
  revision: Type.Integer(),
  changes: Type.Array(Change),
  conflicts: Type.Array(Type.String(), { description: 'paths left as they are (with force)' })
})
export type RevertResult = Static<typeof RevertResult>
