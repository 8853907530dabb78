import { createHash } from 'node:crypto'
import { isUtf8 } from 'node:buffer'
import type { Updateable } from 'kysely'
import type { FileRow, FilesTable } from '../db/schema.js'
import { errors } from '../core/errors.js'
import { guessMimeType, type Content } from './content.js'
import { applyEdits, unifiedDiff, type TextEdit } from './edit.js'
import { checkPlacedPath, depthOf, isWithin, parentOf, ROOT } from './paths.js'
import { atOrBelow, countAtOrBelow, storeBlobs } from '../db/queries.js'
import { ensureParents, rowOf, stateOf, directoryState, type ChangeContext, type ChangeFields, type DeferredWrite, type EntryBudget, type EntryRecord } from './entries.js'
import { findEntry, loadBlob, toMeta } from './reads.js'
import type { OpData, Operation } from '../../schemas/files.js'

/**
 * What each kind of operation does to the files table inside the write transaction
 * (src/files/operations.ts runs them): its checks, its rows, and what history records of it.
 */

/** An operation after its paths, content and metadata have been checked (before any query). */
export interface CheckedOp {
  type: Operation['type']
  path: string
  newPath: string | null
  content: Content | null
  mimeType: string | null
  metadata: string | null
  /** create and update: the executable flag to set (null: false on create, kept on update) */
  executable: boolean | null
  ifMatch: string | null
  ifNoneMatch: boolean
  upsert: boolean
  overwrite: boolean
  sessionId: string | null
  /** an edit's edits (null for the other types) */
  edits: TextEdit[] | null
  dryRun: boolean
}

/** A change being made, and what is left of its request's entry bound (operations.ts counts them). */
export interface OpContext extends ChangeContext {
  budget: EntryBudget
  /** MAX_FILE_BYTES: what an edit's result may weigh */
  maxFileBytes: number
  /**
   * Writes whose outcome is known without running them: run with the changes they belong to
   * (entries.ts `saveChanges`, one statement), or before the request's next operation reads.
   */
  writes: DeferredWrite[]
}

/** What one operation did: its answer, and the change (if any) with every entry it touched. */
export interface Outcome {
  data: OpData
  created: boolean
  change: ChangeFields | null
  entries: EntryRecord[]
  /** an edit's unified diff, and whether it was only a dry run */
  diff?: string
  dryRun?: boolean
}

export function applyOne (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  switch (op.type) {
    case 'create': return create(ctx, op)
    case 'update': return update(ctx, op)
    case 'delete': return remove(ctx, op)
    case 'move': return moveOrCopy(ctx, op, 'move')
    case 'copy': return moveOrCopy(ctx, op, 'copy')
    case 'mkdir': return mkdir(ctx, op)
    case 'edit': return edit(ctx, op)
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

/**
 * A new file, as one change. Its row follows from the operation, so the INSERT is deferred
 * (`OpContext.writes`), as `replaceFile`'s UPDATE is; except with metadata, whose stored form the
 * database gives back.
 */
async function create (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing !== undefined) throw errors.fileExists(op.path)
  const parents = await ensureParents(ctx, op.path)
  const content = op.content
  if (content === null) throw errors.validation('create needs content')
  let row: FileRow = {
    workspace_id: ctx.workspaceId,
    path: op.path,
    parent: parentOf(op.path),
    depth: depthOf(op.path),
    kind: 'file',
    blob_sha256: content.sha256,
    size: content.size,
    mime_type: op.mimeType ?? guessMimeType(op.path, content.bytes),
    metadata: {},
    executable: op.executable ?? false,
    version: 1,
    etag: ctx.revision,
    created_at: ctx.now,
    created_by: ctx.actor.userId,
    updated_at: ctx.now,
    updated_by: ctx.actor.userId
  }
  if (op.metadata === null) {
    ctx.writes.push({ set: null, row })
  } else {
    row = await ctx.trx.insertInto('files').values({ ...rowOf(ctx.workspaceId, op.path, stateOf(row)), metadata: op.metadata }).returningAll().executeTakeFirstOrThrow()
  }
  return {
    data: toMeta(row),
    created: true,
    change: { op: 'create', kind: 'file', path: op.path, version: row.version, sha256: row.blob_sha256, size: row.size },
    entries: [...parents, { pathBefore: null, pathAfter: op.path, before: null, after: stateOf(row) }]
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
  return await replaceFile(ctx, existing, {
    ...(op.content === null ? {} : { blob_sha256: op.content.sha256, size: op.content.size }),
    ...(op.mimeType === null ? {} : { mime_type: op.mimeType }),
    ...(op.metadata === null ? {} : { metadata: op.metadata }),
    ...(op.executable === null ? {} : { executable: op.executable })
  })
}

/** What an update may change of a file; the rest of its new row follows from the revision. */
type FileUpdate = Partial<Pick<Updateable<FilesTable>, 'blob_sha256' | 'size' | 'mime_type' | 'metadata' | 'executable'>>

/**
 * A file's next version at this revision (the update op's and the edit op's last step), as one
 * change. Its new row follows from the old one, so the UPDATE is deferred (`OpContext.writes`);
 * except with new metadata, whose stored form (jsonb: keys reordered, duplicates dropped) the
 * database gives back.
 */
async function replaceFile (ctx: OpContext, existing: FileRow, set: FileUpdate): Promise<Outcome> {
  const next = { version: existing.version + 1, etag: ctx.revision, updated_at: ctx.now, updated_by: ctx.actor.userId }
  const { metadata, ...known } = set
  let row: FileRow
  if (metadata === undefined) {
    row = { ...existing, ...known, ...next }
    ctx.writes.push({ set: { ...known, ...next }, row })
  } else {
    row = await ctx.trx.updateTable('files').set({ ...set, ...next }).where('workspace_id', '=', ctx.workspaceId).where('path', '=', existing.path)
      .returningAll().executeTakeFirstOrThrow()
  }
  return {
    data: toMeta(row),
    created: false,
    change: { op: 'update', kind: 'file', path: existing.path, version: row.version, sha256: row.blob_sha256, size: row.size },
    entries: [{ pathBefore: existing.path, pathAfter: existing.path, before: stateOf(existing), after: stateOf(row) }]
  }
}

/**
 * The entry at `path` and everything below it, parents before children. Counted first, cheaply:
 * a subtree past what is left of the request's bound is refused before it is read or written.
 */
async function subtree (ctx: OpContext, path: string): Promise<FileRow[]> {
  ctx.budget.check(await countAtOrBelow(ctx.trx, ctx.workspaceId, path, ctx.budget.left + 1))
  return await ctx.trx.selectFrom('files').selectAll().where('workspace_id', '=', ctx.workspaceId)
    .where(eb => atOrBelow(eb, path))
    .orderBy('depth').orderBy('path').execute()
}

async function deleteSubtree (ctx: OpContext, path: string): Promise<void> {
  await ctx.trx.deleteFrom('files').where('workspace_id', '=', ctx.workspaceId)
    .where(eb => atOrBelow(eb, path))
    .execute()
}

async function insertRows (ctx: OpContext, rows: Array<ReturnType<typeof rowOf>>): Promise<void> {
  for (let i = 0; i < rows.length; i += 500) await ctx.trx.insertInto('files').values(rows.slice(i, i + 500)).execute()
}

async function remove (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing === undefined) throw errors.fileNotFound(op.path)
  const rows = existing.kind === 'file' ? [existing] : await subtree(ctx, op.path)
  await deleteSubtree(ctx, op.path)
  return {
    data: { deleted: rows.length },
    created: false,
    change: { op: 'delete', kind: existing.kind, path: op.path, etag: null },
    entries: rows.map(r => ({ pathBefore: r.path, pathAfter: null, before: stateOf(r), after: null }))
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
  const entries: EntryRecord[] = []
  const target = await findEntry(ctx.trx, ctx.workspaceId, to)
  if (target !== undefined) {
    if (!op.overwrite || target.kind !== 'file' || source.kind !== 'file') throw errors.targetExists(to)
    await deleteSubtree(ctx, to)
    entries.push({ pathBefore: to, pathAfter: null, before: stateOf(target), after: null })
  }
  entries.push(...await ensureParents(ctx, to))
  const rows = source.kind === 'file' ? [source] : await subtree(ctx, from)
  const at = ctx.now.toISOString()
  const placed = rows.map(r => {
    const path = checkPlacedPath(to + r.path.slice(from.length))
    const before = stateOf(r)
    const after = kind === 'move'
      ? { ...before, etag: ctx.revision, updatedAt: at, updatedBy: ctx.actor.userId }
      : { ...before, version: 1, etag: ctx.revision, createdAt: at, createdBy: ctx.actor.userId, updatedAt: at, updatedBy: ctx.actor.userId }
    entries.push(kind === 'move'
      ? { pathBefore: r.path, pathAfter: path, before, after }
      : { pathBefore: null, pathAfter: path, before: null, after })
    return rowOf(ctx.workspaceId, path, after)
  })
  if (kind === 'move') await deleteSubtree(ctx, from)
  await insertRows(ctx, placed)
  const moved = await findEntry(ctx.trx, ctx.workspaceId, to)
  if (moved === undefined) throw errors.internal()
  return {
    data: toMeta(moved),
    created: kind === 'copy',
    change: { op: kind, kind: moved.kind, path: from, new_path: to, version: moved.version, sha256: moved.blob_sha256, size: moved.size },
    entries
  }
}

async function mkdir (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing?.kind === 'directory') return { data: toMeta(existing), created: false, change: null, entries: [] }
  if (existing !== undefined) throw errors.fileExists(op.path)
  const parents = await ensureParents(ctx, op.path)
  const state = directoryState(ctx)
  const row = await ctx.trx.insertInto('files').values(rowOf(ctx.workspaceId, op.path, state)).returningAll().executeTakeFirstOrThrow()
  return {
    data: toMeta(row),
    created: true,
    change: { op: 'mkdir', kind: 'directory', path: op.path, version: row.version },
    entries: [...parents, { pathBefore: null, pathAfter: op.path, before: null, after: state }]
  }
}

/**
 * Text edits (src/files/edit.ts) on the file's current text, written as an update of its content:
 * revisioned, recorded and revertible as one. A dry run answers the diff and the meta the file
 * would have (content fields new; etag, version and times still the current ones) and changes nothing.
 */
async function edit (ctx: OpContext, op: CheckedOp): Promise<Outcome> {
  rootIsReadOnly(op.path)
  const existing = await findEntry(ctx.trx, ctx.workspaceId, op.path)
  checkPrecondition(op, op.path, existing)
  if (existing === undefined) throw errors.fileNotFound(op.path)
  if (existing.kind === 'directory') throw errors.isADirectory(op.path)
  const bytes = await loadBlob(ctx.trx, existing.blob_sha256 ?? '')
  if (bytes === undefined) throw errors.fileNotFound(op.path)
  if (!isUtf8(bytes)) throw errors.notText(op.path)
  const before = bytes.toString('utf8')
  const after = applyEdits(op.path, before, op.edits ?? [])
  const next = Buffer.from(after, 'utf8')
  if (next.length > ctx.maxFileBytes) throw errors.fileTooLarge(next.length, ctx.maxFileBytes)
  const content: Content = { bytes: next, sha256: createHash('sha256').update(next).digest('hex'), size: next.length }
  const diff = unifiedDiff(op.path, before, after)
  if (op.dryRun) {
    return { data: { ...toMeta(existing), size: content.size, sha256: content.sha256 }, created: false, change: null, entries: [], diff, dryRun: true }
  }
  await storeBlobs(ctx.trx, [content])
  return { ...await replaceFile(ctx, existing, { blob_sha256: content.sha256, size: content.size }), diff }
}
