import type { ChangeOp, Db, EntryState, Trx } from './db/schema.js'
import type { Actor } from './auth.js'
import { requireWrite } from './workspaces.js'
import { AppError, errors } from './errors.js'
import { findEntry } from './files.js'
import { toChange } from './changes.js'
import { depthOf, descendantsPattern } from './paths.js'
import { ensureParents, rowOf, saveChanges, stateOf, type ChangeContext, type ChangeFields, type EntryRecord, type RecordedChange } from './entries.js'
import type { TransactionHooks } from './operations.js'
import type { Change } from '../schemas/files.js'

/**
 * Undoing a session's changes, or every change after a revision, as new changes in one
 * transaction. Each reverted change gets one inverse change (newest first), built entry by entry
 * from what history kept. With `force`, paths that another session changed afterwards are left as
 * they are and everything else is reverted; without it they make the revert 409 REVERT_CONFLICT.
 */

export interface RevertParams {
  sessionId?: string
  toRevision?: number
  dryRun?: boolean
  force?: boolean
}

export interface RevertResult {
  revision: number
  changes: Change[]
  /** paths left as they are because another session changed them afterwards (with force) */
  conflicts: string[]
}

interface StoredEntry {
  revision: number
  seq: number
  path_before: string | null
  path_after: string | null
  before: EntryState | null
  after: EntryState | null
}

interface TargetChange {
  revision: number
  op: ChangeOp
  kind: 'file' | 'directory'
  path: string
  new_path: string | null
}

const INVERSE: Record<ChangeOp, ChangeOp> = { create: 'delete', update: 'update', delete: 'create', move: 'move', copy: 'delete', mkdir: 'delete' }

class DryRun extends Error {
  constructor (readonly result: RevertResult) { super('dry run') }
}

/** `options.opId`: the Idempotency-Key, recorded as the inverse changes' opId (like applyOperations). */
export async function revert (db: Db, actor: Actor, workspaceId: string, params: RevertParams, hooks: TransactionHooks<RevertResult> = {}, options: { opId?: string | null } = {}): Promise<RevertResult> {
  if ((params.sessionId === undefined) === (params.toRevision === undefined)) {
    throw errors.validation('give exactly one of sessionId and toRevision')
  }
  await requireWrite(db, actor, workspaceId)
  try {
    return await db.transaction().execute(async trx => {
      await hooks.begin?.(trx)
      const result = await revertIn(trx, actor, workspaceId, params, options.opId ?? null)
      if (params.dryRun === true) throw new DryRun(result)
      await hooks.beforeCommit?.(trx, result)
      return result
    })
  } catch (err) {
    if (err instanceof DryRun) return err.result
    throw err
  }
}

async function revertIn (trx: Trx, actor: Actor, workspaceId: string, params: RevertParams, opId: string | null): Promise<RevertResult> {
  const ws = await trx.selectFrom('workspaces').select(['revision', 'pruned_through']).where('id', '=', workspaceId).forUpdate().executeTakeFirst()
  if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
  if (params.toRevision !== undefined && (params.toRevision > ws.revision || params.toRevision < ws.pruned_through)) {
    throw errors.validation(`toRevision must be between ${ws.pruned_through} (oldest retained) and ${ws.revision} (head)`)
  }
  let q = trx.selectFrom('changes').select(['revision', 'op', 'kind', 'path', 'new_path']).where('workspace_id', '=', workspaceId)
  q = params.sessionId !== undefined ? q.where('session_id', '=', params.sessionId) : q.where('revision', '>', params.toRevision ?? 0)
  const targets: TargetChange[] = await q.orderBy('revision', 'desc').execute()
  if (targets.length === 0) return { revision: ws.revision, changes: [], conflicts: [] }

  const entries = await trx.selectFrom('change_entries').select(['revision', 'seq', 'path_before', 'path_after', 'before', 'after'])
    .where('workspace_id', '=', workspaceId).where('revision', 'in', targets.map(t => t.revision))
    .orderBy('revision', 'desc').orderBy('seq', 'desc').execute()
  const byRevision = new Map<number, StoredEntry[]>()
  for (const e of entries) byRevision.set(e.revision, [...(byRevision.get(e.revision) ?? []), e])

  const conflicts = params.sessionId === undefined ? new Set<string>() : await findConflicts(trx, workspaceId, targets, entries)
  if (conflicts.size > 0 && params.force !== true) {
    const paths = [...conflicts].sort()
    throw new AppError(409, 'REVERT_CONFLICT', `another session changed ${paths.length} of these paths afterwards; revert with force to leave them as they are`, { paths })
  }

  let head = ws.revision
  const recorded: RecordedChange[] = []
  const changes: Change[] = []
  for (const target of targets) {
    const ctx: ChangeContext = { trx, workspaceId, actor, revision: head + 1, now: new Date() }
    const done = await invert(ctx, byRevision.get(target.revision) ?? [], conflicts)
    if (done.length === 0) continue
    head = ctx.revision
    const principal = inverseFields(target, done)
    const fields = { user_id: actor.userId, session_id: actor.sessionId, op_id: opId, at: ctx.now, ...principal }
    recorded.push({ revision: head, fields, entries: done })
    changes.push(toChange({ revision: head, new_path: null, etag: head, version: null, sha256: null, size: null, ...fields }))
  }
  await saveChanges(trx, workspaceId, recorded)
  return { revision: head, changes, conflicts: [...conflicts].sort() }
}

/** Paths the target changes touched that a change by someone else touched afterwards. */
async function findConflicts (trx: Trx, workspaceId: string, targets: TargetChange[], entries: StoredEntry[]): Promise<Set<string>> {
  const firstTouch = new Map<string, number>()
  for (const e of entries) {
    for (const p of [e.path_before, e.path_after]) {
      if (p !== null) firstTouch.set(p, Math.min(firstTouch.get(p) ?? Number.MAX_SAFE_INTEGER, e.revision))
    }
  }
  const own = new Set(targets.map(t => t.revision))
  const since = Math.min(...firstTouch.values())
  const paths = [...firstTouch.keys()]
  const conflicts = new Set<string>()
  for (let i = 0; i < paths.length; i += 1000) {
    const chunk = paths.slice(i, i + 1000)
    const later = await trx.selectFrom('change_entries').select(['revision', 'path_before', 'path_after'])
      .where('workspace_id', '=', workspaceId).where('revision', '>', since)
      .where(eb => eb.or([eb('path_before', 'in', chunk), eb('path_after', 'in', chunk)]))
      .execute()
    for (const r of later) {
      if (own.has(r.revision)) continue
      for (const p of [r.path_before, r.path_after]) {
        if (p !== null && r.revision > (firstTouch.get(p) ?? Number.MAX_SAFE_INTEGER)) conflicts.add(p)
      }
    }
  }
  return conflicts
}

/**
 * Undoes one change's entries: what it placed is removed (deepest first), what it replaced or
 * removed is put back (shallowest first). Returns the entries of the inverse change.
 */
async function invert (ctx: ChangeContext, entries: StoredEntry[], skip: Set<string>): Promise<EntryRecord[]> {
  const done: EntryRecord[] = []
  const at = ctx.now.toISOString()
  const removals = entries.filter(e => e.path_after !== null && e.path_after !== e.path_before && !skip.has(e.path_after))
    .sort((a, b) => depthOf(b.path_after ?? '') - depthOf(a.path_after ?? ''))
  for (const e of removals) {
    const path = e.path_after ?? ''
    const current = await findEntry(ctx.trx, ctx.workspaceId, path)
    if (current === undefined) continue
    if (current.kind === 'directory' && await hasChildren(ctx, path)) continue
    await ctx.trx.deleteFrom('files').where('workspace_id', '=', ctx.workspaceId).where('path', '=', path).execute()
    done.push({ pathBefore: path, pathAfter: null, before: stateOf(current), after: null })
  }
  const restores = entries.filter(e => e.path_before !== null && e.before !== null && !skip.has(e.path_before))
    .sort((a, b) => depthOf(a.path_before ?? '') - depthOf(b.path_before ?? ''))
  for (const e of restores) {
    const path = e.path_before ?? ''
    const before = e.before as EntryState
    const current = await findEntry(ctx.trx, ctx.workspaceId, path)
    if (current !== undefined && current.kind === 'directory' && before.kind === 'directory') continue
    if (current !== undefined && current.kind !== before.kind) continue
    done.push(...await ensureParents(ctx, path))
    const restored: EntryState = { ...before, version: Math.max(current?.version ?? 0, before.version) + 1, etag: ctx.revision, updatedAt: at, updatedBy: ctx.actor.userId }
    if (current !== undefined) {
      await ctx.trx.deleteFrom('files').where('workspace_id', '=', ctx.workspaceId).where('path', '=', path).execute()
    }
    await ctx.trx.insertInto('files').values(rowOf(ctx.workspaceId, path, restored)).execute()
    done.push({ pathBefore: current === undefined ? null : path, pathAfter: path, before: current === undefined ? null : stateOf(current), after: restored })
  }
  return done
}

async function hasChildren (ctx: ChangeContext, dir: string): Promise<boolean> {
  const child = await ctx.trx.selectFrom('files').select('path').where('workspace_id', '=', ctx.workspaceId)
    .where('path', 'like', descendantsPattern(dir)).limit(1).executeTakeFirst()
  return child !== undefined
}

/** The inverse change's own fields: the opposite op on the same entry, described after the undo. */
function inverseFields (target: TargetChange, done: EntryRecord[]): ChangeFields {
  const op = INVERSE[target.op]
  const path = target.op === 'copy' ? target.new_path ?? target.path : target.op === 'move' ? target.new_path ?? target.path : target.path
  const newPath = target.op === 'move' ? target.path : null
  const principal = done.find(e => e.pathAfter === (newPath ?? path))?.after ?? null
  const fields: ChangeFields = {
    op,
    kind: target.kind,
    path,
    new_path: newPath,
    version: principal?.version ?? null,
    sha256: principal?.sha256 ?? null,
    size: principal?.size ?? null
  }
  return op === 'delete' ? { ...fields, etag: null, version: null, sha256: null, size: null } : fields
}
