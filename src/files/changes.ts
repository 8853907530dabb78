import type { ChangeRow, Db } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { requireRead } from '../accounts/workspaces.js'
import { errors } from '../core/errors.js'
import { changesAfter, workspaceHead } from '../db/queries.js'
import type { Change, ChangesResult } from '../../schemas/files.js'

/** The change feed: every committed change of a workspace, by gap-free revision. */

export function toChange (row: Omit<ChangeRow, 'workspace_id'>): Change {
  return {
    revision: row.revision,
    op: row.op,
    kind: row.kind,
    path: row.path,
    newPath: row.new_path,
    etag: row.etag === null ? null : String(row.etag),
    version: row.version,
    sha256: row.sha256,
    size: row.size,
    userId: row.user_id,
    sessionId: row.session_id,
    opId: row.op_id,
    at: row.at
  }
}

/**
 * Changes after `since`, oldest first. `reset` tells the client its position is unusable (older
 * than what is retained, or ahead of the head): it must refetch the tree and resume from there.
 */
export async function listChanges (db: Db, actor: Actor, workspaceId: string, since: number, limit: number): Promise<ChangesResult> {
  await requireRead(db, actor, workspaceId)
  return await db.transaction().setIsolationLevel('repeatable read').execute(async trx => {
    const ws = await workspaceHead(trx, workspaceId)
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    if (since < ws.pruned_through || since > ws.revision) return { head: ws.revision, changes: [], reset: true }
    const rows = await changesAfter(trx, workspaceId, since, limit)
    return { head: ws.revision, changes: rows.map(toChange) }
  })
}
