import { sql } from 'kysely'
import type { Db, EntryState, Executor, Trx } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { requirePermission } from '../accounts/auth.js'
import { requireRead } from '../accounts/workspaces.js'
import { errors } from '../core/errors.js'
import { descendantsPattern } from '../db/queries.js'
import { stateOf } from '../files/entries.js'
import { findEntry } from '../files/reads.js'
import { ROOT } from '../files/paths.js'

/**
 * The entries of a tree (or a subtree) at a revision, as an export writes them: metadata only,
 * read in one repeatable-read transaction and bounded by MAX_ENTRIES_PER_REQUEST; the bytes are
 * read later, in batches, as the archive is sent (./export.ts).
 */

export interface TreeEntry {
  /** the workspace path */
  path: string
  kind: 'file' | 'directory'
  sha256: string | null
  size: number
  executable: boolean
  updatedAt: Date
}

export interface TreeAt {
  revision: number
  /** below the base (the base itself left out), parents before children, by path bytes */
  entries: TreeEntry[]
}

function entryOf (path: string, s: EntryState): TreeEntry {
  return { path, kind: s.kind, sha256: s.sha256, size: s.size ?? 0, executable: s.kind === 'file' && s.executable === true, updatedAt: new Date(s.updatedAt) }
}

const byPath = (a: TreeEntry, b: TreeEntry): number => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))

/** `path` itself or below it, for a column of change_entries. */
function under (column: 'path_before' | 'path_after', path: string) {
  const col = sql.ref(column)
  return path === ROOT ? sql<boolean>`${col} IS NOT NULL` : sql<boolean>`(${col} = ${path} OR ${col} LIKE ${descendantsPattern(path)})`
}

/**
 * Every path at or below `path` as it was right after `revision`, from history: the last entry up
 * to `revision` that touched the path says what it was (after that change, or gone); a path no
 * retained entry up to `revision` touched is what the first later entry found there (its
 * `before`); a path no retained entry touched at all is as it is now. One scan of the subtree's
 * history (the export of a past revision costs what its history holds).
 */
async function statesAt (trx: Trx, workspaceId: string, path: string, revision: number): Promise<Map<string, EntryState>> {
  const rows = await sql<{ p: string, state: EntryState | null }>`
    WITH last_before AS (
      SELECT DISTINCT ON (p) p, state FROM (
        SELECT path_after AS p, revision, seq, after AS state FROM change_entries
          WHERE workspace_id = ${workspaceId} AND revision <= ${revision} AND ${under('path_after', path)}
        UNION ALL
        SELECT path_before, revision, seq, NULL FROM change_entries
          WHERE workspace_id = ${workspaceId} AND revision <= ${revision} AND ${under('path_before', path)} AND path_after IS DISTINCT FROM path_before
      ) t ORDER BY p, revision DESC, seq DESC
    ), first_after AS (
      SELECT DISTINCT ON (p) p, state FROM (
        SELECT path_before AS p, revision, seq, before AS state FROM change_entries
          WHERE workspace_id = ${workspaceId} AND revision > ${revision} AND ${under('path_before', path)}
        UNION ALL
        SELECT path_after, revision, seq, NULL FROM change_entries
          WHERE workspace_id = ${workspaceId} AND revision > ${revision} AND ${under('path_after', path)} AND path_before IS DISTINCT FROM path_after
      ) t ORDER BY p, revision ASC, seq ASC
    )
    SELECT p, state FROM last_before
    UNION ALL
    SELECT p, state FROM first_after WHERE p NOT IN (SELECT p FROM last_before)`.execute(trx)
  const states = new Map<string, EntryState>()
  const touched = new Set<string>()
  for (const r of rows.rows) {
    touched.add(r.p)
    if (r.state !== null) states.set(r.p, r.state)
  }
  // Untouched by any retained change: as it is now (it has been so since before the oldest one).
  let q = trx.selectFrom('files').selectAll().where('workspace_id', '=', workspaceId).where('etag', '<=', revision)
  if (path !== ROOT) q = q.where(eb => eb.or([eb('path', '=', path), eb('path', 'like', descendantsPattern(path))]))
  for (const row of await q.execute()) if (!touched.has(row.path)) states.set(row.path, stateOf(row))
  return states
}

/**
 * The tree at or below `path` right after `revision` (default: the head). `path` must be a
 * directory then (the root always is): 404 FILE_NOT_FOUND, 409 NOT_A_DIRECTORY. More than
 * `maxEntries` entries: 413 TOO_MANY_ENTRIES before anything is sent.
 */
export async function treeAt (db: Db, actor: Actor, workspaceId: string, path: string, revision: number | undefined, maxEntries: number): Promise<TreeAt> {
  await requireRead(db, actor, workspaceId)
  requirePermission(actor, 'file.read')
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const ws = await trx.selectFrom('workspaces').select(['revision', 'pruned_through']).where('id', '=', workspaceId).executeTakeFirst()
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    const at = revision ?? ws.revision
    if (at > ws.revision) throw errors.validation(`revision ${at} is ahead of the workspace (head ${ws.revision})`)
    if (at < ws.pruned_through) throw errors.fileNotFound(`${path} at revision ${at} (no longer retained)`)
    const entries = at === ws.revision ? await headEntries(trx, workspaceId, path, maxEntries) : await pastEntries(trx, workspaceId, path, at)
    if (entries.length > maxEntries) throw errors.tooManyEntries(maxEntries)
    return { revision: at, entries: entries.sort(byPath) }
  })
}

async function headEntries (trx: Trx, workspaceId: string, path: string, maxEntries: number): Promise<TreeEntry[]> {
  if (path !== ROOT) {
    const base = await findEntry(trx, workspaceId, path)
    if (base === undefined) throw errors.fileNotFound(path)
    if (base.kind !== 'directory') throw errors.notADirectory(path)
  }
  const rows = await trx.selectFrom('files').selectAll().where('workspace_id', '=', workspaceId)
    .where('path', 'like', descendantsPattern(path)).limit(maxEntries + 1).execute()
  return rows.map(r => entryOf(r.path, stateOf(r)))
}

async function pastEntries (trx: Trx, workspaceId: string, path: string, revision: number): Promise<TreeEntry[]> {
  const states = await statesAt(trx, workspaceId, path, revision)
  if (path !== ROOT) {
    const base = states.get(path)
    if (base === undefined) throw errors.fileNotFound(`${path} at revision ${revision}`)
    if (base.kind !== 'directory') throw errors.notADirectory(path)
    states.delete(path)
  }
  return [...states].map(([p, s]) => entryOf(p, s))
}

/** The bytes of `sha256`s, in one query; a missing one (retention) is absent from the map. */
export async function loadBlobs (db: Executor, shas: string[]): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>()
  if (shas.length === 0) return out
  const rows = await db.selectFrom('blobs').select(['sha256', 'content']).where('sha256', 'in', [...new Set(shas)]).execute()
  for (const r of rows) out.set(r.sha256, Buffer.from(r.content.buffer, r.content.byteOffset, r.content.byteLength))
  return out
}
