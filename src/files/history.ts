import { sql, type RawBuilder } from 'kysely'
import type { Db, EntryState, Executor, StoredEntry, Trx } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { requireRead } from '../accounts/workspaces.js'
import { errors } from '../core/errors.js'
import { encodeContent } from './content.js'
import { canonicalPath, ROOT } from './paths.js'
import { CHANGE_COLUMNS } from '../db/queries.js'
import { toChange } from './changes.js'
import type { Entry, FileMeta, HistoryResult } from '../../schemas/files.js'
import { findEntry, loadBlob, MAX_CHILDREN, metaOf, rootMeta, type ReadResult } from './reads.js'
import { stateOf } from './entries.js'

/**
 * Reading the past from `change_entries`: an entry as it was right after any retained revision,
 * and the changes that touched a path, following the entry across moves (like `git log --follow`).
 */

/** The state of the entry at `path` right after `revision`, or undefined when there was none. */
async function stateAt (trx: Trx, workspaceId: string, path: string, revision: number): Promise<EntryState | undefined> {
  const row = await touchNextTo(trx, workspaceId, path, revision, 'desc')
  if (row !== undefined) return row.path_after === path && row.after !== null ? row.after : undefined
  // No retained change up to `revision` touched the path (its earlier history was pruned): the
  // first retained change after it that touched the path kept what was there (`before`).
  const next = await touchNextTo(trx, workspaceId, path, revision, 'asc')
  if (next !== undefined) return next.path_before === path && next.before !== null ? next.before : undefined
  // No retained change touched it at all: if the entry exists, it has been as it is since before
  // the oldest retained revision.
  const current = await findEntry(trx, workspaceId, path)
  return current !== undefined && current.etag <= revision ? stateOf(current) : undefined
}

/**
 * The last history entry up to `revision` that touched `path` ('desc'), or the first after it
 * ('asc'). One LIMIT 1 probe per index (path before, path after) rather than one query with OR,
 * which PostgreSQL answers by reading and sorting every entry of the path.
 */
async function touchNextTo (trx: Trx, workspaceId: string, path: string, revision: number, order: 'asc' | 'desc'): Promise<StoredEntry | undefined> {
  const probe = async (column: 'path_before' | 'path_after'): Promise<StoredEntry | undefined> => await trx.selectFrom('change_entries')
    .select(['revision', 'seq', 'path_before', 'path_after', 'before', 'after'])
    .where('workspace_id', '=', workspaceId).where(column, '=', path).where('revision', order === 'desc' ? '<=' : '>', revision)
    .orderBy('revision', order).orderBy('seq', order).limit(1).executeTakeFirst()
  const [a, b] = [await probe('path_before'), await probe('path_after')]
  if (a === undefined || b === undefined) return a ?? b
  const aFirst = a.revision < b.revision || (a.revision === b.revision && a.seq < b.seq)
  return aFirst === (order === 'asc') ? a : b
}

/**
 * The names below `dir` that history ever gave a direct child, in path order, at most `cap`:
 * a skip scan of one index (recursive, one probe per step) that jumps over each child's subtree,
 * so it reads about two index entries per child whatever the length of their history.
 */
export function childPathsQuery (workspaceId: string, dir: string, column: 'path_before' | 'path_after', cap: number): RawBuilder<{ path: string }> {
  const prefix = dir === ROOT ? ROOT : dir + '/'
  // Below `dir` is exactly [prefix, prefix with its '/' as '0'): plain bounds of the index.
  const upper = prefix.slice(0, -1) + '0'
  const col = sql.ref(`e.${column}`)
  const n = prefix.length + 1
  // the direct child of `dir` that path `p` is or lies under
  const child = (p: RawBuilder<string>): RawBuilder<string> =>
    sql<string>`CASE WHEN strpos(substr(${p}, ${n}), '/') = 0 THEN ${p} ELSE substr(${p}, 1, ${n - 2} + strpos(substr(${p}, ${n}), '/')) END`
  const p = sql<string>`w.p`
  // After a child itself, the next path may be a sibling sorting before its subtree (`a-b` < `a/`);
  // after a path under it, everything up to `<child>0` is its subtree ('0' follows '/').
  return sql<{ path: string }>`
    WITH RECURSIVE walk(p, i) AS (
      (SELECT ${col}, 1 FROM change_entries e WHERE e.workspace_id = ${workspaceId} AND ${col} > ${prefix} AND ${col} < ${upper}
        ORDER BY ${col} LIMIT 1)
      UNION ALL
      SELECT (SELECT ${col} FROM change_entries e WHERE e.workspace_id = ${workspaceId} AND ${col} < ${upper}
                 AND ${col} > CASE WHEN ${child(p)} = w.p THEN w.p ELSE ${child(p)} || '0' END
               ORDER BY ${col} LIMIT 1), w.i + 1
        FROM walk w WHERE w.p IS NOT NULL AND w.i < ${2 * cap + 1}
    )
    SELECT DISTINCT ${child(p)} AS path FROM walk w WHERE w.p IS NOT NULL ORDER BY path LIMIT ${cap}`
}

async function childPathsIn (trx: Trx, workspaceId: string, dir: string, column: 'path_before' | 'path_after', cap: number): Promise<string[]> {
  return (await childPathsQuery(workspaceId, dir, column, cap).execute(trx)).rows.map(r => r.path)
}

/**
 * The children of a directory right after `revision`: each path that ever was a direct child
 * (in history, or now) as it was then. Bounded by the number of such names (at most
 * MAX_CHILDREN + 1 of each source, then `truncated`), not by the length of their history.
 */
async function childrenAt (trx: Trx, workspaceId: string, dir: string, revision: number): Promise<{ children: FileMeta[], truncated: boolean }> {
  const cap = MAX_CHILDREN + 1
  const now = await trx.selectFrom('files').select('path').where('workspace_id', '=', workspaceId).where('parent', '=', dir)
    .orderBy('path').limit(cap).execute()
  const sources = [now.map(r => r.path), await childPathsIn(trx, workspaceId, dir, 'path_after', cap), await childPathsIn(trx, workspaceId, dir, 'path_before', cap)]
  const candidates = [...new Set(sources.flat())].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
  const truncated = sources.some(list => list.length >= cap) || candidates.length > MAX_CHILDREN
  // The last entry up to `revision` for every candidate, one LIMIT 1 probe per index each, in one query.
  const latest = await sql<{ path: string, a_rev: number | null, a_seq: number | null, a_after: EntryState | null, b_rev: number | null, b_seq: number | null, b_path_after: string | null, b_after: EntryState | null }>`
    SELECT c.path, a.revision AS a_rev, a.seq AS a_seq, a.after AS a_after, b.revision AS b_rev, b.seq AS b_seq, b.path_after AS b_path_after, b.after AS b_after
      FROM unnest(${candidates.slice(0, MAX_CHILDREN)}::text[]) AS c(path)
      LEFT JOIN LATERAL (SELECT revision, seq, after FROM change_entries WHERE workspace_id = ${workspaceId} AND path_after = c.path
                          AND revision <= ${revision} ORDER BY revision DESC, seq DESC LIMIT 1) a ON true
      LEFT JOIN LATERAL (SELECT revision, seq, path_after, after FROM change_entries WHERE workspace_id = ${workspaceId} AND path_before = c.path
                          AND revision <= ${revision} ORDER BY revision DESC, seq DESC LIMIT 1) b ON true`.execute(trx)
  const children: FileMeta[] = []
  for (const r of latest.rows) {
    let state: EntryState | null | undefined
    if (r.a_rev !== null && (r.b_rev === null || r.a_rev > r.b_rev || (r.a_rev === r.b_rev && (r.a_seq ?? 0) > (r.b_seq ?? 0)))) state = r.a_after
    else if (r.b_rev !== null) state = r.b_path_after === r.path ? r.b_after : null
    // No retained entry up to `revision`: as stateAt answers it (pruned history, or untouched).
    else state = await stateAt(trx, workspaceId, r.path, revision)
    if (state !== null && state !== undefined) children.push(metaOf(r.path, state))
  }
  return { children: children.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path))), truncated }
}

function listing (c: { children: FileMeta[], truncated: boolean }): Pick<Entry, 'children' | 'childrenTruncated'> {
  return c.truncated ? { children: c.children, childrenTruncated: true } : { children: c.children }
}

/** GET /files/{path}?revision=: the entry as it was right after `revision`. */
export async function readAtRevision (db: Db, actor: Actor, workspaceId: string, rawPath: string, revision: number): Promise<ReadResult> {
  const path = canonicalPath(rawPath)
  await requireRead(db, actor, workspaceId)
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const ws = await trx.selectFrom('workspaces').select(['revision', 'pruned_through', 'owner_id', 'created_at']).where('id', '=', workspaceId).executeTakeFirst()
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    if (revision > ws.revision) throw errors.validation(`revision ${revision} is ahead of the workspace (head ${ws.revision})`)
    if (revision < ws.pruned_through) throw errors.fileNotFound(`${path} at revision ${revision} (no longer retained)`)
    // What this URL (path and revision) answers never changes: the revision names it. (Weak, as
    // a directory's listing is; and no path in it, which a header could not always carry.)
    const httpEtag = `W/"${revision}"`
    if (path === ROOT) {
      const root = rootMeta({ revision, ownerId: ws.owner_id, createdAt: ws.created_at })
      return { entry: { ...root, ...listing(await childrenAt(trx, workspaceId, ROOT, revision)) }, revision, httpEtag }
    }
    const state = await stateAt(trx, workspaceId, path, revision)
    if (state === undefined) throw errors.fileNotFound(`${path} at revision ${revision}`)
    const meta = metaOf(path, state)
    if (state.kind === 'directory') {
      return { entry: { ...meta, ...listing(await childrenAt(trx, workspaceId, path, revision)) }, revision, httpEtag }
    }
    const bytes = await loadBlob(trx, state.sha256 ?? '')
    if (bytes === undefined) throw errors.fileNotFound(`${path} at revision ${revision} (content no longer retained)`)
    const entry: Entry = { ...meta, ...encodeContent(bytes) }
    return { entry, revision, httpEtag, bytes }
  })
}

/** Paths (segments of the entry's life) one history page follows across moves, at most. */
const MAX_FOLLOWED = 100

/** One path the history follows, over the revisions (after, upTo] when the entry had it. */
export interface Segment { path: string, after: number, upTo: number }

/**
 * The history entries of a segment where `column` is its path, newest first, before `before`, at
 * most `rows` of them: a backward scan of one index that stops after `rows` (the bound is in SQL,
 * so a path with a long history costs no more than a page).
 */
export function segmentEntries (db: Executor, workspaceId: string, s: Segment, column: 'path_before' | 'path_after', before: number, rows: number) {
  return db.selectFrom('change_entries').select(['revision', 'path_before', 'path_after'])
    .where('workspace_id', '=', workspaceId).where(column, '=', s.path)
    .where('revision', '>', s.after).where('revision', '<=', Math.min(s.upTo, before - 1))
    .orderBy('revision', 'desc').limit(rows)
}

/**
 * The paths the entry had before it moved to the segment's path at or after `before` (up to
 * MAX_FOLLOWED of them). Reads the segment's entries from `before` on, and keeps distinct paths only.
 */
async function movedInSince (trx: Trx, workspaceId: string, s: Segment, before: number): Promise<string[]> {
  const rows = await trx.selectFrom('change_entries').select('path_before').distinct()
    .where('workspace_id', '=', workspaceId).where('path_after', '=', s.path)
    .where('revision', '>', Math.max(s.after, before - 1)).where('revision', '<=', s.upTo)
    .where('path_before', 'is not', null).where('path_before', '!=', s.path)
    .limit(MAX_FOLLOWED).execute()
  return rows.flatMap(r => r.path_before === null ? [] : [r.path_before])
}

/**
 * The revisions of up to `limit + 1` changes before `before` that touched a path, following the
 * entry across moves. Each followed path reads at most `limit + 1 + MAX_FOLLOWED` entries per
 * index: a move into it older than that many changes is older than the whole page (so nothing is
 * lost); a move out of it is followed when it is among them. Moves to or from the same path are
 * followed once, over the union of their revisions (the oldest move out, the newest move in), and
 * a segment inside one already read is skipped: back-and-forth moves cost a few segments, not one
 * per move.
 */
async function followedRevisions (trx: Trx, workspaceId: string, path: string, before: number, limit: number): Promise<Set<number>> {
  const rows = limit + 1 + MAX_FOLLOWED
  const revisions = new Set<number>()
  const queue: Segment[] = [{ path, after: 0, upTo: Number.MAX_SAFE_INTEGER }]
  const read: Segment[] = []
  const covered = (s: Segment): boolean => read.some(r => r.path === s.path && r.after <= s.after && r.upTo >= s.upTo)
  for (let segment = queue.shift(); segment !== undefined && read.length < MAX_FOLLOWED; segment = queue.shift()) {
    if (covered(segment) || segment.after >= Math.min(segment.upTo, before - 1)) continue
    read.push(segment)
    const found = [
      ...await segmentEntries(trx, workspaceId, segment, 'path_after', before, rows).execute(),
      ...await segmentEntries(trx, workspaceId, segment, 'path_before', before, rows).execute()
    ]
    const movedIn = new Map<string, number>()
    const movedOut = new Map<string, number>()
    for (const r of found) {
      revisions.add(r.revision)
      if (r.path_after === segment.path && r.path_before !== null && r.path_before !== segment.path) {
        movedIn.set(r.path_before, Math.max(movedIn.get(r.path_before) ?? 0, r.revision))
      }
      if (r.path_before === segment.path && r.path_after !== null && r.path_after !== segment.path) {
        movedOut.set(r.path_after, Math.min(movedOut.get(r.path_after) ?? Number.MAX_SAFE_INTEGER, r.revision))
      }
    }
    // Moves in at or after the cursor (a later page): their earlier paths hold older changes.
    if (segment.upTo >= before) {
      for (const from of await movedInSince(trx, workspaceId, segment, before)) movedIn.set(from, Math.max(movedIn.get(from) ?? 0, before))
    }
    for (const [from, revision] of movedIn) queue.push({ path: from, after: segment.after, upTo: revision - 1 })
    for (const [to, revision] of movedOut) queue.push({ path: to, after: revision, upTo: segment.upTo })
  }
  return revisions
}

/**
 * The changes that touched `path`, newest first. Moves are followed both ways: into the path
 * (its earlier history under the old path) and out of it (its later history under the new path).
 */
export async function listHistory (db: Db, actor: Actor, workspaceId: string, rawPath: string, limit: number, cursor: string | undefined): Promise<HistoryResult> {
  const path = canonicalPath(rawPath)
  const before = cursor === undefined ? Number.MAX_SAFE_INTEGER : Number(cursor)
  if (!Number.isSafeInteger(before) || before < 0) throw errors.validation('cursor is not valid')
  await requireRead(db, actor, workspaceId)
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const revisions = await followedRevisions(trx, workspaceId, path, before, limit)
    const page = [...revisions].sort((a, b) => b - a).slice(0, limit + 1)
    const wanted = page.slice(0, limit)
    const rows = wanted.length === 0
      ? []
      : await trx.selectFrom('changes')
        .select(CHANGE_COLUMNS)
        .where('workspace_id', '=', workspaceId).where('revision', 'in', wanted).orderBy('revision', 'desc').execute()
    const last = wanted.at(-1)
    return { items: rows.map(toChange), nextCursor: page.length > limit && last !== undefined ? String(last) : null }
  })
}
