import type { ChangeOp, Db, EntryState, StoredEntry, Trx } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { requireWrite } from '../accounts/workspaces.js'
import { errors } from '../core/errors.js'
import { findEntry } from './reads.js'
import { toChange } from './changes.js'
import { ancestorsOf, checkPlacedPath, depthOf } from './paths.js'
import { atOrBelow, descendantsPattern, lockWorkspace, touches } from '../db/queries.js'
import { DEFAULT_MAX_ENTRIES, ensureParents, rowOf, saveChanges, stateOf, type ChangeContext, type ChangeFields, type EntryRecord, type RecordedChange } from './entries.js'
import { transactionOf, type TransactionHooks } from '../mutations/pipeline.js'
import type { Change, RevertBody, RevertResult } from '../../schemas/files.js'

/**
 * Undoing a session's changes, or every change after a revision, as new changes in one
 * transaction, newest first, built entry by entry from what history kept. The new changes are
 * ones a client can apply in order, as it applies any change, to end with what the server has
 * (see `invert`). With `force`, paths that another session changed afterwards are left as they
 * are and everything else is reverted; without it they make the revert 409 REVERT_CONFLICT.
 */

/** What to revert: the request's body. */
export type RevertParams = RevertBody

interface TargetChange {
  revision: number
  op: ChangeOp
  kind: 'file' | 'directory'
  path: string
  new_path: string | null
}

class DryRun extends Error {
  constructor (readonly result: RevertResult) { super('dry run') }
}

export interface RevertOptions {
  /** the Idempotency-Key, recorded as the inverse changes' opId (like applyOperations) */
  opId?: string | null
  /** MAX_ENTRIES_PER_REQUEST: the entries of the changes one revert may undo */
  maxEntries?: number
}

export async function revert (db: Db, actor: Actor, workspaceId: string, params: RevertParams, hooks: TransactionHooks<RevertResult> = {}, options: RevertOptions = {}): Promise<RevertResult> {
  if ((params.sessionId === undefined) === (params.toRevision === undefined)) {
    throw errors.validation('give exactly one of sessionId and toRevision')
  }
  await requireWrite(db, actor, workspaceId)
  try {
    return await transactionOf(db, hooks)(async trx => {
      await hooks.begin?.(trx)
      const result = await revertIn(trx, actor, workspaceId, params, options.opId ?? null, options.maxEntries ?? DEFAULT_MAX_ENTRIES)
      if (params.dryRun === true) throw new DryRun(result)
      await hooks.beforeCommit?.(trx, result)
      return result
    })
  } catch (err) {
    if (err instanceof DryRun) return err.result
    throw err
  }
}

async function revertIn (trx: Trx, actor: Actor, workspaceId: string, params: RevertParams, opId: string | null, maxEntries: number): Promise<RevertResult> {
  const ws = await lockWorkspace(trx, workspaceId)
  if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
  if (params.toRevision !== undefined && (params.toRevision > ws.revision || params.toRevision < ws.pruned_through)) {
    throw errors.validation(`toRevision must be between ${ws.pruned_through} (oldest retained) and ${ws.revision} (head)`)
  }
  const targetChanges = (): ReturnType<typeof trx.selectFrom<'changes'>> => {
    const q = trx.selectFrom('changes').where('workspace_id', '=', workspaceId)
    return params.sessionId !== undefined ? q.where('session_id', '=', params.sessionId) : q.where('revision', '>', params.toRevision ?? 0)
  }
  // The bound (MAX_ENTRIES_PER_REQUEST) is on the entries of the changes undone, counted (no
  // further than one past it) before any of them is read: a revert can then undo whatever one
  // request could do, and its own work is a small multiple of that.
  const capped = trx.selectFrom('change_entries').select('seq').where('workspace_id', '=', workspaceId)
    .where('revision', 'in', targetChanges().select('revision')).limit(maxEntries + 1).as('capped')
  const counted = await trx.selectFrom(capped).select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  if (Number(counted.n) > maxEntries) throw errors.tooManyEntries(maxEntries)
  const targets: TargetChange[] = await targetChanges().select(['revision', 'op', 'kind', 'path', 'new_path'])
    .orderBy('revision', 'desc').limit(maxEntries + 1).execute()
  if (targets.length > maxEntries) throw errors.tooManyEntries(maxEntries)
  if (targets.length === 0) return { revision: ws.revision, changes: [], conflicts: [] }

  const entries = await trx.selectFrom('change_entries').select(['revision', 'seq', 'path_before', 'path_after', 'before', 'after'])
    .where('workspace_id', '=', workspaceId).where('revision', 'in', targetChanges().select('revision'))
    .orderBy('revision', 'desc').orderBy('seq', 'desc').execute()
  const byRevision = new Map<number, StoredEntry[]>()
  for (const e of entries) {
    const list = byRevision.get(e.revision)
    if (list === undefined) byRevision.set(e.revision, [e])
    else list.push(e)
  }

  const conflicts = params.sessionId === undefined ? new Set<string>() : await findConflicts(trx, workspaceId, targets, entries)
  if (conflicts.size > 0 && params.force !== true) {
    const paths = [...conflicts].sort()
    throw errors.revertConflict(paths)
  }

  let head = ws.revision
  const next = (): number => ++head
  const recorded: RecordedChange[] = []
  const changes: Change[] = []
  for (const target of targets) {
    const base = { trx, workspaceId, actor, now: new Date() }
    for (const step of await invert(base, target, byRevision.get(target.revision) ?? [], conflicts, next)) {
      const fields = { user_id: actor.userId, session_id: actor.sessionId, op_id: opId, at: base.now, ...step.fields }
      recorded.push({ revision: step.revision, fields, entries: step.entries })
      changes.push(toChange({ revision: step.revision, new_path: null, etag: step.revision, version: null, sha256: null, size: null, ...fields }))
    }
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
  // A loop, not Math.min(...values): spreading >~120k arguments overflows the call stack.
  let since = Number.MAX_SAFE_INTEGER
  for (const revision of firstTouch.values()) since = Math.min(since, revision)
  const paths = [...firstTouch.keys()]
  const conflicts = new Set<string>()
  for (let i = 0; i < paths.length; i += 1000) {
    const chunk = paths.slice(i, i + 1000)
    const later = await trx.selectFrom('change_entries').select(['revision', 'path_before', 'path_after'])
      .where('workspace_id', '=', workspaceId).where('revision', '>', since)
      .where(eb => touches(eb, chunk))
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

/** A change being made, before its revision is known (a revert hands revisions out as it goes). */
type Base = Omit<ChangeContext, 'revision'>

/** One new change of a revert: what a client applies, at its own revision. */
interface Step {
  revision: number
  fields: ChangeFields
  entries: EntryRecord[]
}

/**
 * Undoes one change, as changes a client can apply one after another to end with what the
 * server has: a directory or file moved back in one `move` when nothing else happened under it;
 * what the change placed removed (deepest first), one `delete` per topmost entry removed; what
 * it replaced or removed put back (shallowest first, with its missing parents), one change per
 * entry. `next` hands out revisions.
 */
async function invert (base: Base, target: TargetChange, entries: StoredEntry[], skip: Set<string>, next: () => number): Promise<Step[]> {
  const steps: Step[] = []
  let rest = entries
  const pairs = entries.filter(e => e.path_before !== null && e.path_after !== null && e.path_before !== e.path_after)
  if (target.op === 'move' && target.new_path !== null && await movesBack(base, target.path, target.new_path, pairs, skip)) {
    const revision = next()
    const done: EntryRecord[] = []
    for (const e of deepestFirst(pairs, e => e.path_after)) {
      const record = await removeEntry(base, e.path_after ?? '')
      if (record !== null) done.push(record)
    }
    for (const e of shallowestFirst(pairs, e => e.path_before)) {
      // (a spread of one entry's records: the entry and its missing parents, at most its depth)
      done.push(...(await restoreEntry(base, e.path_before ?? '', e.before as EntryState, () => revision))?.entries ?? [])
    }
    steps.push({ revision, fields: { op: 'move', kind: target.kind, path: target.new_path, new_path: target.path }, entries: done })
    const moved = new Set(pairs)
    rest = entries.filter(e => !moved.has(e))
  }
  const removals = rest.filter(e => e.path_after !== null && e.path_after !== e.path_before && !skip.has(e.path_after))
  const removed = new Map<string, EntryRecord>()
  for (const e of deepestFirst(removals, e => e.path_after)) {
    const path = e.path_after ?? ''
    const record = await removeEntry(base, path)
    if (record !== null) removed.set(path, record)
  }
  // A directory is removed only once nothing is left under it, so one `delete` of it says all:
  // what was removed below it joins its change.
  const groups = new Map<string, EntryRecord[]>()
  for (const [path, record] of removed) {
    const root = ancestorsOf(path).find(a => removed.get(a)?.before?.kind === 'directory') ?? path
    const group = groups.get(root)
    if (group === undefined) groups.set(root, [record])
    else group.push(record)
  }
  for (const [path, entries] of groups) {
    steps.push({ revision: next(), fields: { op: 'delete', kind: removed.get(path)?.before?.kind ?? 'file', path, etag: null }, entries })
  }
  const restores = rest.filter(e => e.path_before !== null && e.before !== null && !skip.has(e.path_before))
  for (const e of shallowestFirst(restores, e => e.path_before)) {
    const path = e.path_before ?? ''
    const restored = await restoreEntry(base, path, e.before as EntryState, next)
    if (restored === null) continue
    const { state, replaced, revision } = restored
    const op: ChangeOp = replaced ? 'update' : state.kind === 'directory' ? 'mkdir' : 'create'
    steps.push({ revision, fields: { op, kind: state.kind, path, version: state.version, sha256: state.sha256, size: state.size }, entries: restored.entries })
  }
  return steps
}

const byDepth = (sign: 1 | -1) => <T>(items: T[], path: (item: T) => string | null): T[] =>
  [...items].sort((a, b) => sign * (depthOf(path(a) ?? '') - depthOf(path(b) ?? '')))
const shallowestFirst = byDepth(1)
const deepestFirst = byDepth(-1)

/**
 * A move can be undone as one `move` back when nothing is in the way: no conflict among its
 * paths, exactly its entries at and under the new path, and nothing at or under the old one.
 */
async function movesBack (ctx: Base, from: string, to: string, pairs: StoredEntry[], skip: Set<string>): Promise<boolean> {
  if (pairs.length === 0 || pairs.some(e => skip.has(e.path_before ?? '') || skip.has(e.path_after ?? ''))) return false
  // At most `limit` paths: what is there now may be far more than the move placed.
  const under = async (dir: string, limit: number): Promise<string[]> => (await ctx.trx.selectFrom('files').select('path')
    .where('workspace_id', '=', ctx.workspaceId).where(eb => atOrBelow(eb, dir)).limit(limit).execute()).map(r => r.path)
  if ((await under(from, 1)).length > 0) return false
  const placed = new Set(pairs.map(e => e.path_after))
  const present = await under(to, placed.size + 1)
  return present.length === placed.size && present.every(p => placed.has(p))
}

/** Removes what a change placed at `path`, unless it is gone or a directory that is not empty. */
async function removeEntry (base: Base, path: string): Promise<EntryRecord | null> {
  const current = await findEntry(base.trx, base.workspaceId, path)
  if (current === undefined) return null
  if (current.kind === 'directory' && await hasChildren(base, path)) return null
  await base.trx.deleteFrom('files').where('workspace_id', '=', base.workspaceId).where('path', '=', path).execute()
  return { pathBefore: path, pathAfter: null, before: stateOf(current), after: null }
}

/**
 * Puts `before` back at `path` with its missing parents, at the revision `revision()` gives,
 * unless an entry of another kind, or a directory, is there (then nothing, and no revision).
 */
async function restoreEntry (base: Base, path: string, before: EntryState, revision: () => number): Promise<{ revision: number, state: EntryState, replaced: boolean, entries: EntryRecord[] } | null> {
  checkPlacedPath(path)
  const current = await findEntry(base.trx, base.workspaceId, path)
  if (current !== undefined && (current.kind !== before.kind || current.kind === 'directory')) return null
  const ctx: ChangeContext = { ...base, revision: revision() }
  const parents = await ensureParents(ctx, path)
  const restored: EntryState = {
    ...before,
    version: Math.max(current?.version ?? 0, before.version) + 1,
    etag: ctx.revision,
    updatedAt: ctx.now.toISOString(),
    updatedBy: ctx.actor.userId
  }
  if (current !== undefined) await ctx.trx.deleteFrom('files').where('workspace_id', '=', ctx.workspaceId).where('path', '=', path).execute()
  await ctx.trx.insertInto('files').values(rowOf(ctx.workspaceId, path, restored)).execute()
  const record = { pathBefore: current === undefined ? null : path, pathAfter: path, before: current === undefined ? null : stateOf(current), after: restored }
  return { revision: ctx.revision, state: restored, replaced: current !== undefined, entries: [...parents, record] }
}

async function hasChildren (ctx: Base, dir: string): Promise<boolean> {
  const child = await ctx.trx.selectFrom('files').select('path').where('workspace_id', '=', ctx.workspaceId)
    .where('path', 'like', descendantsPattern(dir)).limit(1).executeTakeFirst()
  return child !== undefined
}
