import { sql } from 'kysely'
import type { Db } from '../db/schema.js'
import { errors } from '../core/errors.js'
import { descendantsPattern, workspaceHead } from '../db/queries.js'
import { ROOT } from '../files/paths.js'

/** The files of a workspace as one revision has them: the set a search or the finder looks at. */

export interface TreeFile {
  path: string
  sha256: string
  size: number
}

/**
 * Paths in the API's order (bytewise UTF-8, as PostgreSQL's "C" collation sorts them): UTF-16
 * order but for surrogates, which sort after U+E000–U+FFFF in UTF-8.
 */
export function comparePaths (a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i)
    const y = b.charCodeAt(i)
    if (x === y) continue
    const xs = x >= 0xd800 && x <= 0xdfff
    const ys = y >= 0xd800 && y <= 0xdfff
    if (xs !== ys && (x >= 0xe000 || y >= 0xe000)) return xs ? 1 : -1
    return x - y
  }
  return a.length - b.length
}

const under = (root: string, path: string): boolean => root === ROOT || path === root || path.startsWith(root + '/')

/**
 * The files at or below `root` right after `revision` (default: the head), sorted by path, read
 * in one repeatable-read transaction: the current files, then every retained change after
 * `revision` undone, newest first (its entries' `before` states put back). Costs one query for
 * the head and a second proportional to the changes since `revision`.
 */
export async function filesAt (db: Db, workspaceId: string, root: string, revision: number | undefined): Promise<{ revision: number, files: TreeFile[] }> {
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const ws = await workspaceHead(trx, workspaceId)
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    const at = revision ?? ws.revision
    if (at > ws.revision) throw errors.validation(`revision ${at} is ahead of the workspace (head ${ws.revision})`)
    if (at < ws.pruned_through) throw errors.fileNotFound(`${root} at revision ${at} (no longer retained)`)
    let q = trx.selectFrom('files').select(['path', 'blob_sha256', 'size'])
      .where('workspace_id', '=', workspaceId).where('kind', '=', 'file')
    if (root !== ROOT) q = q.where(eb => eb.or([eb('path', '=', root), eb('path', 'like', descendantsPattern(root))]))
    const rows = await q.execute()
    const files = new Map<string, TreeFile>()
    for (const r of rows) files.set(r.path, { path: r.path, sha256: r.blob_sha256 ?? '', size: r.size ?? 0 })
    if (at < ws.revision) {
      const entries = await trx.selectFrom('change_entries')
        .select(['path_before', 'path_after', 'sha_before',
          sql<string | null>`before->>'kind'`.as('kind_before'), sql<string | null>`before->>'size'`.as('size_before')])
        .where('workspace_id', '=', workspaceId).where('revision', '>', at)
        .orderBy('revision', 'desc').orderBy('seq', 'desc').execute()
      for (const e of entries) {
        if (e.path_after !== null) files.delete(e.path_after)
        if (e.path_before !== null && e.kind_before === 'file' && e.sha_before !== null && under(root, e.path_before)) {
          files.set(e.path_before, { path: e.path_before, sha256: e.sha_before, size: Number(e.size_before ?? 0) })
        }
      }
    }
    return { revision: at, files: [...files.values()].sort((a, b) => comparePaths(a.path, b.path)) }
  })
}
