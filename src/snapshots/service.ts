import { randomUUID } from 'node:crypto'
import { sql, type RawBuilder } from 'kysely'
import type { Db, Trx } from '../db/schema.js'
import type { Config } from '../core/config.js'
import { errors } from '../core/errors.js'
import type { Actor } from '../accounts/auth.js'
import { requireRead, requireWrite } from '../accounts/workspaces.js'
import type { ActivityRecorder } from '../mutations/activity.js'
import { createMutationPipeline, transactionOf, type ChangePublisher, type MutationMeta, type Result } from '../mutations/pipeline.js'
import type { ForkBody, Snapshot } from '../../schemas/snapshots.js'
import type { Workspace } from '../../schemas/workspaces.js'

/**
 * Snapshots (a name for a revision, which retention keeps readable) and forks (a new workspace
 * holding the tree of another at a revision). A fork copies rows, never bytes: the new files point
 * at the source's blobs (content-addressed), in one INSERT … SELECT. Both run through the one
 * mutation pipeline (idempotency, activity), without group commit: they are rare.
 */

export const ActivityType = {
  snapshotCreate: 'snapshot.create',
  snapshotDelete: 'snapshot.delete',
  fork: 'workspace.fork'
} as const

/** The workspace row, locked FOR SHARE: writers (FOR UPDATE) and retention wait until this commits. */
async function lockedHead (trx: Trx, workspaceId: string): Promise<{ revision: number, pruned_through: number }> {
  const ws = await trx.selectFrom('workspaces').select(['revision', 'pruned_through']).where('id', '=', workspaceId).forShare().executeTakeFirst()
  if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
  return ws
}

/** `revision` (default: the head) when it can be read: 400 past the head, 404 once pruned. */
function checkRevision (ws: { revision: number, pruned_through: number }, revision: number | undefined): number {
  const at = revision ?? ws.revision
  if (at > ws.revision) throw errors.validation(`revision ${at} is ahead of the workspace (head ${ws.revision})`)
  if (at < ws.pruned_through) throw errors.revisionNotRetained(at, ws.pruned_through)
  return at
}

function toSnapshot (r: { name: string, revision: number, created_at: Date | string, created_by: string | null }): Snapshot {
  return { name: r.name, revision: r.revision, createdAt: r.created_at, createdBy: r.created_by }
}

/**
 * The entries of `workspaceId` right after `revision` (path, kind, sha, size, mime, metadata), as
 * SQL: the current rows no later change touched, plus, for each path a later change did touch,
 * what its first such change found there (`before`; nothing when that change put the path
 * there). At the head, just the current rows. Costs the entries plus the history after `revision`.
 */
function entriesAt (workspaceId: string, revision: number, head: number): RawBuilder<unknown> {
  const current = sql`SELECT f.path, f.kind, f.blob_sha256 AS sha, f.size, f.mime_type, f.metadata FROM files f WHERE f.workspace_id = ${workspaceId}`
  if (revision >= head) return current
  return sql`
    WITH later AS (
      SELECT e.path_before AS p, e.revision, e.seq, true AS had, e.before FROM change_entries e
       WHERE e.workspace_id = ${workspaceId} AND e.revision > ${revision} AND e.path_before IS NOT NULL
      UNION ALL
      SELECT e.path_after, e.revision, e.seq, e.path_before IS NOT DISTINCT FROM e.path_after, e.before FROM change_entries e
       WHERE e.workspace_id = ${workspaceId} AND e.revision > ${revision} AND e.path_after IS NOT NULL
    ), first AS (
      SELECT DISTINCT ON (p) p, had, before FROM later ORDER BY p, revision, seq, had DESC
    )
    ${current} AND NOT EXISTS (SELECT 1 FROM first WHERE first.p = f.path)
    UNION ALL
    SELECT first.p, first.before->>'kind', first.before->>'sha256', (first.before->>'size')::bigint,
           first.before->>'mimeType', first.before->'metadata'
      FROM first WHERE first.had`
}

/** How many entries `entriesAt` holds, counting no further than `upTo`. */
async function countAt (trx: Trx, workspaceId: string, revision: number, head: number, upTo: number): Promise<number> {
  const { rows } = await sql<{ n: string }>`SELECT count(*) AS n FROM (SELECT 1 FROM (${entriesAt(workspaceId, revision, head)}) t LIMIT ${upTo}) c`.execute(trx)
  return Number(rows[0]?.n ?? 0)
}

export type SnapshotService = ReturnType<typeof createSnapshotService>

export function createSnapshotService (deps: { db: Db, config: Config, fanout: ChangePublisher, activity: ActivityRecorder }) {
  const { db, config } = deps
  const pipeline = createMutationPipeline({ db, activity: deps.activity, publisher: deps.fanout })
  const none = (): [] => []

  return {
    async list (actor: Actor, workspaceId: string): Promise<Snapshot[]> {
      await requireRead(db, actor, workspaceId)
      const rows = await db.selectFrom('snapshots').select(['name', 'revision', 'created_at', 'created_by'])
        .where('workspace_id', '=', workspaceId).orderBy('name').execute()
      return rows.map(toSnapshot)
    },

    async get (actor: Actor, workspaceId: string, name: string): Promise<Snapshot> {
      await requireRead(db, actor, workspaceId)
      const row = await db.selectFrom('snapshots').select(['name', 'revision', 'created_at', 'created_by'])
        .where('workspace_id', '=', workspaceId).where('name', '=', name).executeTakeFirst()
      if (row === undefined) throw errors.snapshotNotFound(name)
      return toSnapshot(row)
    },

    async create (actor: Actor, workspaceId: string, p: { name: string, revision?: number }, meta: MutationMeta = {}): Promise<Result<Snapshot>> {
      return await pipeline.run<Snapshot, Snapshot>(actor, {
        type: ActivityType.snapshotCreate,
        workspaceId,
        params: p,
        run: async hooks => {
          await requireWrite(db, actor, workspaceId)
          return await transactionOf(db, hooks)(async trx => {
            await hooks.begin?.(trx)
            const revision = checkRevision(await lockedHead(trx, workspaceId), p.revision)
            const row = await trx.insertInto('snapshots')
              .values({ workspace_id: workspaceId, name: p.name, revision, created_by: actor.userId })
              .onConflict(oc => oc.columns(['workspace_id', 'name']).doNothing())
              .returning(['name', 'revision', 'created_at', 'created_by']).executeTakeFirst()
            if (row === undefined) throw errors.snapshotExists(p.name)
            const snapshot = toSnapshot(row)
            await hooks.beforeCommit?.(trx, snapshot)
            return snapshot
          })
        },
        respond: s => ({ statusCode: 201, body: s }),
        changes: none,
        revision: s => s.revision,
        details: s => ({ name: s.name })
      }, meta)
    },

    async remove (actor: Actor, workspaceId: string, name: string, meta: MutationMeta = {}): Promise<Result<null>> {
      return await pipeline.run<Snapshot, null>(actor, {
        type: ActivityType.snapshotDelete,
        workspaceId,
        params: { name },
        run: async hooks => {
          await requireWrite(db, actor, workspaceId)
          return await transactionOf(db, hooks)(async trx => {
            await hooks.begin?.(trx)
            const row = await trx.deleteFrom('snapshots').where('workspace_id', '=', workspaceId).where('name', '=', name)
              .returning(['name', 'revision', 'created_at', 'created_by']).executeTakeFirst()
            if (row === undefined) throw errors.snapshotNotFound(name)
            const snapshot = toSnapshot(row)
            await hooks.beforeCommit?.(trx, snapshot)
            return snapshot
          })
        },
        respond: () => ({ statusCode: 204, body: null }),
        changes: none,
        revision: s => s.revision,
        details: s => ({ name: s.name })
      }, meta)
    },

    /**
     * A new workspace, owned by the caller, holding the tree of `sourceId` right after `revision`
     * (default: the head) as its revision 1: one change (a `copy` of `/`) with one history entry
     * per entry placed. Needs read access to the source; at most MAX_ENTRIES_PER_REQUEST entries.
     */
    async fork (actor: Actor, sourceId: string, p: ForkBody, meta: MutationMeta = {}): Promise<Result<Workspace>> {
      const max = config.MAX_ENTRIES_PER_REQUEST
      let placed = 0
      return await pipeline.run<Workspace, Workspace>(actor, {
        type: ActivityType.fork,
        workspaceId: sourceId,
        params: p,
        run: async hooks => {
          await requireRead(db, actor, sourceId)
          return await transactionOf(db, hooks)(async trx => {
            await hooks.begin?.(trx)
            const user = await trx.selectFrom('users').select('id').where('id', '=', actor.userId).forKeyShare().executeTakeFirst()
            if (user === undefined) throw errors.unauthenticated('the token\'s user does not exist')
            const head = await lockedHead(trx, sourceId)
            const revision = checkRevision(head, p.revision)
            if (await countAt(trx, sourceId, revision, head.revision, max + 1) > max) throw errors.tooManyEntries(max)
            const ws = await forkInto(trx, actor, sourceId, revision, head.revision, p.name, meta.opId ?? null)
            placed = ws.entries
            await hooks.beforeCommit?.(trx, ws.workspace)
            return ws.workspace
          })
        },
        respond: w => ({ statusCode: 201, body: w }),
        // The fork's change is its own workspace's revision 1, which nobody can have subscribed
        // to before it existed: a subscriber reads it from the database (subscribe with `since`).
        changes: none,
        revision: w => w.forkedFrom?.revision ?? 0,
        details: w => ({ forkId: w.id, name: w.name, entries: placed })
      }, meta)
    },

    /** Once no mutation is running, or after `waitMs` (on shutdown). */
    settled: pipeline.settled
  }
}

/** The rows of the fork: the workspace, its owner, its files, and revision 1 with its history. */
async function forkInto (trx: Trx, actor: Actor, sourceId: string, revision: number, head: number, name: string, opId: string | null): Promise<{ workspace: Workspace, entries: number }> {
  const id = randomUUID()
  const at = new Date()
  const iso = at.toISOString()
  const ws = await trx.insertInto('workspaces').values({
    id, name, owner_id: actor.userId, revision: 1, created_at: at, forked_from_workspace_id: sourceId, forked_from_revision: revision
  }).returning(['id', 'name', 'owner_id', 'revision', 'created_at']).executeTakeFirstOrThrow()
  await trx.insertInto('workspace_members').values({ workspace_id: id, user_id: actor.userId, role: 'owner' }).execute()
  // As a copy places entries: content, mimeType and metadata kept; version 1, etag the revision,
  // created and updated now by the caller. depth and parent follow from the path.
  const inserted = await sql<{ n: string }>`
    WITH src AS (${entriesAt(sourceId, revision, head)}),
    ins AS (
      INSERT INTO files (workspace_id, path, parent, depth, kind, blob_sha256, size, mime_type, metadata, version, etag, created_at, created_by, updated_at, updated_by)
      SELECT ${id}::uuid, src.path,
             CASE WHEN strpos(substr(src.path, 2), '/') = 0 THEN '/' ELSE regexp_replace(src.path, '/[^/]*$', '') END,
             length(src.path) - length(replace(src.path, '/', '')),
             src.kind, src.sha, src.size, src.mime_type, src.metadata, 1, 1, ${at}, ${actor.userId}::uuid, ${at}, ${actor.userId}::uuid
        FROM src
      RETURNING 1
    )
    SELECT count(*) AS n FROM ins`.execute(trx)
  const entries = Number(inserted.rows[0]?.n ?? 0)
  await trx.insertInto('changes').values({
    workspace_id: id,
    revision: 1,
    op: 'copy',
    kind: 'directory',
    path: '/',
    new_path: '/',
    etag: 1,
    version: null,
    sha256: null,
    size: null,
    user_id: actor.userId,
    session_id: actor.sessionId,
    op_id: opId,
    at
  }).execute()
  // One history entry per entry placed (as a copy records them), parents before children.
  await sql`
    INSERT INTO change_entries (workspace_id, revision, seq, path_before, path_after, before, after, sha_before, sha_after)
    SELECT f.workspace_id, 1, (row_number() OVER (ORDER BY f.depth, f.path)) - 1, NULL, f.path, NULL,
           jsonb_build_object('kind', f.kind, 'sha256', f.blob_sha256, 'size', f.size, 'mimeType', f.mime_type,
             'metadata', f.metadata, 'version', 1, 'etag', 1, 'createdAt', ${iso}::text, 'createdBy', ${actor.userId}::text,
             'updatedAt', ${iso}::text, 'updatedBy', ${actor.userId}::text),
           NULL, f.blob_sha256
      FROM files f WHERE f.workspace_id = ${id}`.execute(trx)
  return {
    workspace: {
      id: ws.id,
      name: ws.name,
      ownerId: ws.owner_id,
      role: 'owner',
      revision: ws.revision,
      createdAt: ws.created_at,
      forkedFrom: { workspaceId: sourceId, revision }
    },
    entries
  }
}
