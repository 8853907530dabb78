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
export const Executable = Type.Boolean({ description: 'create and update (and PUT) only: set the file\'s executable flag; an update without it keeps the flag' })
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
  executable: Type.Boolean({ description: 'a file archives give mode 0755 (else 0644); always false for a directory' }),
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
  childrenTruncated: Type.Optional(Type.Boolean({ description: 'more children than a listing returns; page them with /tree' })),
  lines: Type.Optional(Type.Object({
    start: Type.Integer(),
    end: Type.Integer()
  }, { description: 'a ranged read (?lines=): the lines `content` holds, 1-based inclusive; end = start - 1 when none' })),
  totalLines: Type.Optional(Type.Integer({ description: 'a ranged read (?lines=): the lines the whole file has' }))
})], { title: 'Entry' })
export type Entry = Static<typeof Entry>

/** `A-B`, `A-` or `-N` (src/files/lines.ts checks the numbers: A ≥ 1, B ≥ A, N ≥ 1). */
export const LineRange = Type.String({
  pattern: '^(?:[0-9]{1,15}-[0-9]{0,15}|-[0-9]{1,15})$',
  description: 'only these lines of a text file, 1-based inclusive: A-B, A- (to the end) or -N (the last N)'
})

export const ReadQuery = Type.Object({
  format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('raw')], { default: 'json' })),
  revision: Type.Optional(Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER, description: 'read the entry as it was right after this revision' })),
  lines: Type.Optional(LineRange)
})

export const WriteBody = Type.Object({
  content: Type.String(),
  encoding: Type.Optional(Encoding),
  mimeType: Type.Optional(MediaType),
  metadata: Type.Optional(Metadata),
  executable: Type.Optional(Executable)
}, { additionalProperties: false })

export const WriteResult = Type.Object({ file: FileMeta, revision: Type.Integer() })
export type WriteResult = Static<typeof WriteResult>
export const DeleteResult = Type.Object({ revision: Type.Integer(), deleted: Type.Integer() })
export type DeleteResult = Static<typeof DeleteResult>

type ChangeOpName = 'create' | 'update' | 'delete' | 'move' | 'copy' | 'mkdir'
/** What a change records: an `edit` operation is recorded as the `update` it is. */
export const ChangeOp = Type.Union(['create', 'update', 'delete', 'move', 'copy', 'mkdir'].map(t => Type.Literal(t as ChangeOpName)))
export type ChangeOp = Static<typeof ChangeOp>

export const OpType = Type.Union(['create', 'update', 'delete', 'move', 'copy', 'mkdir', 'edit'].map(t => Type.Literal(t as ChangeOpName | 'edit')))

export type OpType = Static<typeof OpType>

export const MAX_EDITS = 1000

export const TextEdit = Type.Object({
  oldText: Type.String({ description: 'the text to replace: must occur exactly once (CRLF and LF alike), unless replaceAll; "" only on an empty file' }),
  newText: Type.String({ description: 'written in the file\'s own line-ending style' }),
  replaceAll: Type.Optional(Type.Boolean({ description: 'replace every occurrence (at least one)' }))
}, { additionalProperties: false, title: 'TextEdit' })
export type TextEdit = Static<typeof TextEdit>

export const Operation = Type.Object({
  type: OpType,
  path: Type.String({ maxLength: 4096 }),
  newPath: Type.Optional(Type.String({ maxLength: 4096 })),
  content: Type.Optional(Type.String()),
  encoding: Type.Optional(Encoding),
  mimeType: Type.Optional(MediaType),
  metadata: Type.Optional(Metadata),
  executable: Type.Optional(Executable),
  ifMatch: Type.Optional(Type.String({ minLength: 1, maxLength: 100 })),
  overwrite: Type.Optional(Type.Boolean()),
  sessionId: Type.Optional(Uuid),
  edits: Type.Optional(Type.Array(TextEdit, { minItems: 1, maxItems: MAX_EDITS, description: 'edit only: applied in order, each to the text the previous left' })),
  dryRun: Type.Optional(Type.Boolean({ description: 'edit only: answer the diff and the meta the file would have; change nothing' }))
}, { additionalProperties: false, title: 'Operation' })
export type Operation = Static<typeof Operation>

export const DeletedData = Type.Object({ deleted: Type.Integer() })
/** What one operation answers: the entry it left, or how many entries a delete removed. */
export const OpData = Type.Union([FileMeta, DeletedData])
export type OpData = Static<typeof OpData>

/** What an edit adds to its result: the unified diff, and whether it was only a dry run. */
export const EditExtras = {
  diff: Type.Optional(Type.String({ description: 'edit only: the change as a git-style unified diff (3 lines of context); "" when the text is unchanged' })),
  dryRun: Type.Optional(Type.Boolean({ description: 'edit only: true when nothing was applied' }))
}

export const OperationResult = Type.Object({
  success: Type.Literal(true),
  data: OpData,
  revision: Type.Integer(),
  timestamp: Timestamp,
  ...EditExtras
})
export type OperationResult = Static<typeof OperationResult>

export const BatchBody = Type.Object({
  operations: Type.Array(Operation, { minItems: 1, maxItems: 1000 })
}, { additionalProperties: false })

export const BatchResult = Type.Object({
  results: Type.Array(Type.Object({ data: OpData, revision: Type.Integer(), ...EditExtras })),
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
  op: ChangeOp,
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
