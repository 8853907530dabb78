import type { ExpressionBuilder, ExpressionWrapper, SqlBool } from 'kysely'
import type { ChangeRow, Database, Executor } from './schema.js'
import { compiledPerShape } from './compiled.js'

/** SQL fragments and small queries more than one feature needs, so each is written once. */

/** A change as the API shows it: every column of `changes` but the workspace id. */
export const CHANGE_COLUMNS = [
  'revision', 'op', 'kind', 'path', 'new_path', 'etag', 'version', 'sha256', 'size', 'user_id', 'session_id', 'op_id', 'at'
] as const satisfies ReadonlyArray<keyof ChangeRow>

/** A LIKE pattern matching everything strictly below `dir` (with %, _ and \ escaped). */
export function descendantsPattern (dir: string): string {
  const escaped = dir.replace(/[\\%_]/g, m => `\\${m}`)
  return dir === '/' ? '/%' : `${escaped}/%`
}

/** `files.path` is `path` or lies below it. */
export function atOrBelow (eb: ExpressionBuilder<Database, 'files'>, path: string): ExpressionWrapper<Database, 'files', SqlBool> {
  return eb.or([eb('path', '=', path), eb('path', 'like', descendantsPattern(path))])
}

/**
 * A `change_entries` row touched `paths`: had one of them before its change, or has one after.
 * (A path followed through history, or the paths whose later changes are revert conflicts.)
 */
export function touches (eb: ExpressionBuilder<Database, 'change_entries'>, paths: string | string[]): ExpressionWrapper<Database, 'change_entries', SqlBool> {
  return typeof paths === 'string'
    ? eb.or([eb('path_after', '=', paths), eb('path_before', '=', paths)])
    : eb.or([eb('path_after', 'in', paths), eb('path_before', 'in', paths)])
}

/**
 * A workspace's head revision and the oldest revision still retained (`since` or `?revision=`
 * older than `pruned_through` can no longer be answered from the change feed). `'for update'`
 * locks the row: writers to a workspace are ordered by that lock.
 */
export async function workspaceHead (db: Executor, workspaceId: string, lock: 'for update' | null = null): Promise<Head | undefined> {
  const q = db.selectFrom('workspaces').select(['revision', 'pruned_through']).where('id', '=', workspaceId)
  return await (lock === null ? q : q.forUpdate()).executeTakeFirst()
}

export interface Head { revision: number, pruned_through: number }

/**
 * The workspace rows a transaction holds locked, with their head as it last moved them. The
 * members of a group commit share one transaction (src/mutations/group-commit.ts): the first
 * locks the row, the later ones read the head from here instead of asking again. Only
 * `saveChanges` moves a head (`movedHead`); a savepoint rolled back releases the locks taken
 * after it, so the group commit puts back what was held before it (`heldHeads`, `restoreHeads`).
 */
const lockedHeads = new WeakMap<Executor, Map<string, Head>>()

/** The workspace's head, its row locked by this transaction (at once if it already is). */
export async function lockWorkspace (trx: Executor, workspaceId: string): Promise<Head | undefined> {
  const held = lockedHeads.get(trx)?.get(workspaceId)
  if (held !== undefined) return { ...held }
  const ws = await workspaceHead(trx, workspaceId, 'for update')
  if (ws !== undefined) noteLocked(trx, workspaceId, ws)
  return ws
}

/** This transaction has just locked the workspace's row (`lockWorkspace`, or a statement that locks it as it reads more). */
export function noteLocked (trx: Executor, workspaceId: string, head: Head): void {
  const heads = lockedHeads.get(trx) ?? new Map<string, Head>()
  heads.set(workspaceId, { ...head })
  lockedHeads.set(trx, heads)
}

/** Whether this transaction holds the workspace's row lock (taken with `lockWorkspace`). */
export function holdsLock (trx: Executor, workspaceId: string): boolean {
  return lockedHeads.get(trx)?.has(workspaceId) === true
}

/** The transaction set the workspace's revision (under its lock). */
export function movedHead (trx: Executor, workspaceId: string, revision: number): void {
  const held = lockedHeads.get(trx)?.get(workspaceId)
  if (held !== undefined) held.revision = revision
}

/** What the transaction holds now, to put back with `restoreHeads` after a rollback to a savepoint. */
export function heldHeads (trx: Executor): Map<string, Head> {
  return new Map([...lockedHeads.get(trx) ?? []].map(([id, head]) => [id, { ...head }]))
}

export function restoreHeads (trx: Executor, held: Map<string, Head>): void {
  lockedHeads.set(trx, held)
}

/** Up to `limit` changes after revision `after` (and at most `upTo`), oldest first. */
export async function changesAfter (db: Executor, workspaceId: string, after: number, limit: number, upTo?: number): Promise<Array<Omit<ChangeRow, 'workspace_id'>>> {
  let q = db.selectFrom('changes').select(CHANGE_COLUMNS).where('workspace_id', '=', workspaceId).where('revision', '>', after)
  if (upTo !== undefined) q = q.where('revision', '<=', upTo)
  return await q.orderBy('revision').limit(limit).execute()
}

/**
 * How many entries are at or below `path`, counting no further than `upTo` (a bound's check
 * needs to know only whether it is passed, and must not pay for a subtree of any size).
 */
export async function countAtOrBelow (db: Executor, workspaceId: string, path: string, upTo: number): Promise<number> {
  const capped = db.selectFrom('files').select('path').where('workspace_id', '=', workspaceId)
    .where(eb => atOrBelow(eb, path)).limit(upTo).as('capped')
  const row = await db.selectFrom(capped).select(eb => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()
  return Number(row.n)
}

/** A content to store: its bytes, addressed by their SHA-256 (files/content.ts `Content`). */
export interface BlobContent { sha256: string, size: number, bytes: Buffer }

/**
 * Content-addressed: each distinct content is stored once, whoever wrote it first; many in one
 * statement (a group commit stores all its members' before the first runs). A blob that already
 * exists is held (FOR KEY SHARE) and its retention mark, if a pass found it unreferenced, cleared:
 * retention then cannot delete it (src/mutations/retention.ts, `pruneBlobs`). In hash order, so
 * that two transactions storing the same blobs wait for each other instead of deadlocking.
 */
export async function storeBlobs (trx: Executor, contents: Iterable<BlobContent>): Promise<void> {
  let missing = [...new Map([...contents].map(c => [c.sha256, c])).values()].sort((a, b) => a.sha256 < b.sha256 ? -1 : 1)
  while (missing.length > 0) {
    const { rows: inserted } = await insertBlobs(trx, missing)
    const stored = new Set(inserted.map(r => r.sha256))
    const existing = missing.filter(c => !stored.has(c.sha256))
    if (existing.length === 0) return
    const kept = await trx.selectFrom('blobs').select(['sha256', 'sweep']).where('sha256', 'in', existing.map(c => c.sha256)).forKeyShare().execute()
    const held = new Set(kept.map(r => r.sha256))
    const marked = kept.filter(r => r.sweep !== null).map(r => r.sha256)
    if (marked.length > 0) await trx.updateTable('blobs').set({ sweep: null }).where('sha256', 'in', marked).where('sweep', 'is not', null).execute()
    // (deleted by retention between the two statements: inserted again)
    missing = existing.filter(c => !held.has(c.sha256))
  }
}

const insertBlobs = compiledPerShape((db, contents: BlobContent[]) => db.insertInto('blobs')
  .values(contents.map(c => ({ sha256: c.sha256, size: c.size, content: c.bytes })))
  .onConflict(oc => oc.column('sha256').doNothing()).returning('sha256'),
contents => String(contents.length), contents => contents.flatMap(c => [c.sha256, c.size, c.bytes]))
