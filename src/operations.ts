import { sql } from 'kysely'
import type { Insertable } from 'kysely'
import type { ChangesTable, Db, FileRow, Trx } from './db/schema.js'
import type { Actor } from './auth.js'
import { requireWrite } from './workspaces.js'
import { AppError, batchError, errors } from './errors.js'
import { checkMetadata, decodeContent, guessMimeType, type Content } from './content.js'
import { ancestorsOf, canonicalPath, depthOf, descendantsPattern, isWithin, parentOf, ROOT } from './paths.js'
import { findEntry, toMeta } from './files.js'
import { toChange } from './changes.js'
import type { Change, FileMeta, Operation } from '../schemas/files.js'

/**
 * Every write goes through applyOperations: one transaction that locks the workspace row (which
 * orders writers per workspace), applies each operation, gives each one that changes something
 * the next revision, records the changes, and commits — or rolls everything back.
 */

export interface WriteOptions {
  maxFileBytes: number
  /** the Idempotency-Key, recorded as the change's opId */
  opId?: string | null
}

/** An operation after its paths, content and metadata have been checked (before any query). */
interface CheckedOp {
  type: Operation['type']
  path: string
  newPath: string | null
  content: Content | null
  mimeType: string | null
  metadata: string | null
  ifMatch: string | null
  ifNoneMatch: boolean
  upsert: boolean
  overwrite: boolean
  sessionId: string | null
}

export type OpData = FileMeta | { deleted: number }

export interface OpResult {
  data: OpData
  revision: number
  /** true when the op created its entry (PUT answers 201) */
  created: boolean
  change: Change | null
}

export interface ApplyResult {
  results: OpResult[]
  revision: number
  changes: Change[]
}

/** An operation, plus what PUT adds: If-None-Match, and `upsert` (update, or create when missing). */
export interface OpInput extends Operation {
  ifNoneMatch?: boolean
  upsert?: boolean
}

export function checkOp (op: OpInput, maxFileBytes: number): CheckedOp {
  const path = canonicalPath(op.path)
  const needsTarget = op.type === 'move' || op.type === 'copy'
  if (needsTarget && op.newPath === undefined) throw errors.validation(`${op.type} needs newPath`)
  const newPath = needsTarget && op.newPath !== undefined ? canonicalPath(op.newPath) : null
  // create without content makes an empty file; update without content keeps the bytes
  const content = op.content ?? (op.type === 'create' ? '' : undefined)
  const writesContent = op.type === 'create' || op.type === 'update'
  return {
    type: op.type,
    path,
    newPath,
    content: writesContent && content !== undefined ? decodeContent(content, op.encoding ?? 'utf8', maxFileBytes) : null,
    mimeType: op.mimeType ?? null,
    metadata: op.metadata === undefined ? null : checkMetadata(op.metadata),
    ifMatch: op.ifMatch === undefined ? null : parseEtag(op.ifMatch),
    ifNoneMatch: op.ifNoneMatch === true,
    upsert: op.upsert === true,
    overwrite: op.overwrite === true,
    sessionId: op.sessionId ?? null
  }
}

/** `"19"`, `W/"19"` and `19` all name etag 19; `*` means "any current entry". */
function parseEtag (value: string): string {
  const v = value.trim()
  if (v === '*') return v
  return v.replace(/^W\//, '').replace(/^"(.*)"$/, '$1')
}

export async function applyOperations (db: Db, actor: Actor, workspaceId: string, ops: OpInput[], options: WriteOptions): Promise<ApplyResult> {
  const single = ops.length === 1 && ops[0] !== undefined
  const checked = ops.map((op, i) => {
    try {
      return checkOp(op, options.maxFileBytes)
    } catch (err) {
      throw single || !(err instanceof AppError) ? err : batchError(i, err)
    }
  })
  await requireWrite(db, actor, workspaceId)
  return await db.transaction().execute(async trx => {
    await storeBlobs(trx, checked)
    const ws = await trx.selectFrom('workspaces').select('revision').where('id', '=', workspaceId).forUpdate().executeTakeFirst()
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    let head = ws.revision
    const results: OpResult[] = []
    const rows: Array<Insertable<ChangesTable>> = []
    for (const [i, op] of checked.entries()) {
      const ctx: OpContext = { trx, workspaceId, actor, revision: head + 1, now: new Date() }
      let outcome: Outcome
      try {
        outcome = await applyOne(ctx, op)
      } catch (err) {
        throw single || !(err instanceof AppError) ? err : batchError(i, err)
      }
      let change: Change | null = null
      if (outcome.change !== null) {
        head = ctx.revision
        const row = {
          revision: head,
          user_id: actor.userId,
          session_id: op.sessionId ?? actor.sessionId,
          op_id: options.opId ?? null,
          at: ctx.now,
          new_path: null,
          etag: head,
          version: null,
          sha256: null,
          size: null,
          ...outcome.change
        }
        rows.push({ workspace_id: workspaceId, ...row })
        change = toChange(row)
      }
      results.push({ data: outcome.data, revision: head, created: outcome.created, change })
    }
    if (rows.length > 0) {
      for (let i = 0; i < rows.length; i += 500) await trx.insertInto('changes').values(rows.slice(i, i + 500)).execute()
      await trx.updateTable('workspaces').set({ revision: head }).where('id', '=', workspaceId).execute()
    }
    return { results, revision: head, changes: results.flatMap(r => r.change === null ? [] : [r.change]) }
  })
}

/** Content-addressed: each distinct content is stored once, whoever wrote it first. */
async function storeBlobs (trx: Trx, ops: CheckedOp[]): Promise<void> {
  const unique = new Map<string, Content>()
  for (const op of ops) if (op.content !== null) unique.set(op.content.sha256, op.content)
  for (const c of unique.values()) {
    await trx.insertInto('blobs').values({ sha256: c.sha256, size: c.size, content: c.bytes })
      .onConflict(oc => oc.column('sha256').doNothing()).execute()
  }
}

interface OpContext {
  trx: Trx
  workspaceId: string
  actor: Actor
  /** the revision this op takes if it changes something */
  revision: number
  now: Date
}

type ChangeFields = Pick<ChangesTable, 'op' | 'kind' | 'path'> & Partial<Pick<ChangesTable, 'new_path' | 'etag' | 'version' | 'sha256' | 'size'>>

interface Outcome {
  data: OpData
  created: boolean
  change: ChangeFields | null
}

function applyOne (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  switch (op.type) {
    case 'create': return create(ctx, op)
    case 'update': return update(ctx, op)
    case 'delete': return remove(ctx, op)
    case 'move': return moveOrCopy(ctx, op, 'move')
    case 'copy': return moveOrCopy(ctx, op, 'copy')
    case 'mkdir': return mkdir(ctx, op)
  }
}

function rootIsReadOnly (path: string): void {
  if (path === ROOT) throw errors.invalidPath(path, 'the root cannot be written, moved or deleted')
}

function checkPrecondition (op: CheckedOp, path: string, existing: FileRow | undefined): void {
  if (op.ifNoneMatch && existing !== undefined) {
    throw errors.preconditionFailed(path, '*', toMeta(existing))
  }
  if (op.ifMatch === null) return
  if (existing === undefined) throw errors.preconditionFailed(path, op.ifMatch, null)
  if (op.ifMatch !== '*' && op.ifMatch !== String(existing.etag)) throw errors.preconditionFailed(path, op.ifMatch, toMeta(existing))
}

/** Creates the missing ancestors of `path` as directories; a file among them is NOT_A_DIRECTORY. */
async function ensureParents (ctx: OpContext, path: string): Promise<void> {
  const ancestors = ancestorsOf(path)
  if (ancestors.length === 0) return
  const found = await ctx.trx.selectFrom('files').select(['path', 'kind'])
    .where('workspace_id', '=', ctx.workspaceId).where('path', 'in', ancestors).execute()
  const file = found.find(r => r.kind === 'file')
  if (file !== undefined) throw errors.notADirectory(file.path)
  const have = new Set(found.map(r => r.path))
  const missing = ancestors.filter(a => !have.has(a))
  if (missing.length === 0) return
  await ctx.trx.insertInto('files').values(missing.map(p => directoryRow(ctx, p))).execute()
}

function directoryRow (ctx: OpContext, path: string) {
  return {
    workspace_id: ctx.workspaceId,
    path,
    parent: parentOf(path),
    depth: depthOf(path),
    kind: 'directory' as const,
    blob_sha256: null,
    size: null,
    mime_type: null,
    etag: ctx.revision,
    created_at: ctx.now,
    updated_at: ctx.now,
    created_by: ctx.actor.userId,
    updated_by: ctx.actor.userId
  }
}

async function create (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing !== undefined) throw errors.fileExists(op.path)
  await ensureParents(ctx, op.path)
  const content = op.content
  if (content === null) throw errors.validation('create needs content')
  const row = await ctx.trx.insertInto('files').values({
    workspace_id: ctx.workspaceId,
    path: op.path,
    parent: parentOf(op.path),
    depth: depthOf(op.path),
    kind: 'file',
    blob_sha256: content.sha256,
    size: content.size,
    mime_type: op.mimeType ?? guessMimeType(op.path, content.bytes),
    metadata: op.metadata ?? '{}',
    etag: ctx.revision,
    created_at: ctx.now,
    updated_at: ctx.now,
    created_by: ctx.actor.userId,
    updated_by: ctx.actor.userId
  }).returningAll().executeTakeFirstOrThrow()
  return {
    data: toMeta(row),
    created: true,
    change: { op: 'create', kind: 'file', path: op.path, version: row.version, sha256: row.blob_sha256, size: row.size }
  }
}

async function update (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing === undefined) {
    if (op.upsert) return await create(ctx, op)
    throw errors.fileNotFound(op.path)
  }
  if (existing.kind === 'directory') throw errors.isADirectory(op.path)
  const row = await ctx.trx.updateTable('files').set({
    ...(op.content === null ? {} : { blob_sha256: op.content.sha256, size: op.content.size }),
    ...(op.mimeType === null ? {} : { mime_type: op.mimeType }),
    ...(op.metadata === null ? {} : { metadata: op.metadata }),
    version: existing.version + 1,
    etag: ctx.revision,
    updated_at: ctx.now,
    updated_by: ctx.actor.userId
  }).where('workspace_id', '=', ctx.workspaceId).where('path', '=', op.path).returningAll().executeTakeFirstOrThrow()
  return {
    data: toMeta(row),
    created: false,
    change: { op: 'update', kind: 'file', path: op.path, version: row.version, sha256: row.blob_sha256, size: row.size }
  }
}

function subtree (ctx: OpContext, path: string) {
  return ctx.trx.selectFrom('files').where('workspace_id', '=', ctx.workspaceId)
    .where(eb => eb.or([eb('path', '=', path), eb('path', 'like', descendantsPattern(path))]))
}

async function remove (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing === undefined) throw errors.fileNotFound(op.path)
  const result = await ctx.trx.deleteFrom('files').where('workspace_id', '=', ctx.workspaceId)
    .where(eb => eb.or([eb('path', '=', op.path), eb('path', 'like', descendantsPattern(op.path))]))
    .executeTakeFirst()
  return {
    data: { deleted: Number(result.numDeletedRows) },
    created: false,
    change: { op: 'delete', kind: existing.kind, path: op.path, etag: null }
  }
}

/** Moves or copies a file or a whole directory subtree, as one change. */
async function moveOrCopy (ctx: OpContext, op: CheckedOp, kind: 'move' | 'copy'): Promise<Outcome> {
  const from = op.path
  const to = op.newPath ?? from
  rootIsReadOnly(from)
  rootIsReadOnly(to)
  if (isWithin(to, from)) throw errors.invalidMove(from, to)
  const source = await findEntry(ctx.trx, ctx.workspaceId, from)
  checkPrecondition(op, from, source)
  if (source === undefined) throw errors.fileNotFound(from)
  const target = await findEntry(ctx.trx, ctx.workspaceId, to)
  if (target !== undefined) {
    if (!op.overwrite || target.kind !== 'file' || source.kind !== 'file') throw errors.targetExists(to)
    await ctx.trx.deleteFrom('files').where('workspace_id', '=', ctx.workspaceId).where('path', '=', to).execute()
  }
  await ensureParents(ctx, to)
  // Every path in the subtree is rewritten by replacing its `from` prefix with `to`.
  // (char_length in SQL, not JS length: the two differ for characters beyond U+FFFF.)
  const newPath = sql<string>`${to}::text || substr(path, char_length(${from}::text) + 1)`
  const newParent = sql<string>`CASE WHEN path = ${from} THEN ${parentOf(to)}::text ELSE ${to}::text || substr(parent, char_length(${from}::text) + 1) END`
  const newDepth = sql<number>`depth + ${depthOf(to) - depthOf(from)}::int`
  if (kind === 'move') {
    await ctx.trx.updateTable('files').set({
      path: newPath, parent: newParent, depth: newDepth, etag: ctx.revision, updated_at: ctx.now, updated_by: ctx.actor.userId
    }).where('workspace_id', '=', ctx.workspaceId)
      .where(eb => eb.or([eb('path', '=', from), eb('path', 'like', descendantsPattern(from))]))
      .execute()
  } else {
    await ctx.trx.insertInto('files').columns([
      'workspace_id', 'path', 'parent', 'depth', 'kind', 'blob_sha256', 'size', 'mime_type', 'metadata', 'version', 'etag',
      'created_at', 'created_by', 'updated_at', 'updated_by'
    ]).expression(subtree(ctx, from).select([
      'workspace_id', newPath.as('path'), newParent.as('parent'), newDepth.as('depth'), 'kind', 'blob_sha256', 'size', 'mime_type',
      'metadata', sql<number>`1`.as('version'), sql<number>`${ctx.revision}::bigint`.as('etag'),
      sql<Date>`${ctx.now}::timestamptz`.as('created_at'), sql<string>`${ctx.actor.userId}::uuid`.as('created_by'),
      sql<Date>`${ctx.now}::timestamptz`.as('updated_at'), sql<string>`${ctx.actor.userId}::uuid`.as('updated_by')
    ])).execute()
  }
  const moved = await findEntry(ctx.trx, ctx.workspaceId, to)
  if (moved === undefined) throw errors.internal()
  return {
    data: toMeta(moved),
    created: kind === 'copy',
    change: { op: kind, kind: moved.kind, path: from, new_path: to, version: moved.version, sha256: moved.blob_sha256, size: moved.size }
  }
}

async function mkdir (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing?.kind === 'directory') return { data: toMeta(existing), created: false, change: null }
  if (existing !== undefined) throw errors.fileExists(op.path)
  await ensureParents(ctx, op.path)
  const row = await ctx.trx.insertInto('files').values(directoryRow(ctx, op.path)).returningAll().executeTakeFirstOrThrow()
  return { data: toMeta(row), created: true, change: { op: 'mkdir', kind: 'directory', path: op.path, version: row.version } }
}
