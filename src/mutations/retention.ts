import { sql } from 'kysely'
import type { Db, Trx } from '../db/schema.js'
import { KEY_TTL_HOURS } from './idempotency.js'

/**
 * Retention: changes older than CHANGE_RETENTION are pruned (with the history entries they
 * kept), then blobs nothing references any more, then expired idempotency keys, then activity
 * entries older than ACTIVITY_RETENTION — each in small batches in short transactions, so
 * writers are never held up for long. A workspace's
 * `pruned_through` moves with its pruned changes: `since` older than it answers `reset`, and
 * reading a pruned revision answers 404.
 */

export const BATCH = 1000
const LOCK = 727276

export interface PruneResult {
  changes: number
  blobs: number
  keys: number
  activity: number
}

/** How long each kind is kept, in milliseconds; 0 keeps it forever. */
export interface Retention {
  changeRetentionMs: number
  activityRetentionMs: number
}

export async function prune (db: Db, retention: Retention, now = new Date()): Promise<PruneResult> {
  const result: PruneResult = { changes: 0, blobs: 0, keys: 0, activity: 0 }
  const cutoff = (ms: number): Date => new Date(now.getTime() - ms)
  if (retention.changeRetentionMs > 0) result.changes = await pruneChanges(db, cutoff(retention.changeRetentionMs))
  result.blobs = await pruneBlobs(db)
  result.keys = await pruneKeys(db)
  if (retention.activityRetentionMs > 0) result.activity = await pruneActivity(db, cutoff(retention.activityRetentionMs))
  return result
}

/** One batch per transaction; only one instance prunes at a time (the others skip). */
async function locked (db: Db, work: (trx: Trx) => Promise<number>): Promise<number> {
  return await db.transaction().execute(async trx => {
    const { rows } = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${LOCK}) AS ok`.execute(trx)
    if (rows[0]?.ok !== true) return 0
    return await work(trx)
  })
}

/**
 * Changes older than the cutoff, in batches. A snapshot (sql/007-snapshots-forks.sql) keeps its
 * revision readable: the tree at a revision is the current files with every later change undone,
 * so a workspace's pruned_through never passes its lowest snapshot's revision. Changes above it
 * are not candidates at all (so a batch never stalls on them); the bound is read again after the
 * workspace row is locked, which snapshot creation holds FOR SHARE while it checks pruned_through.
 */
async function pruneChanges (db: Db, cutoff: Date): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = await locked(db, async trx => {
      const old = await trx.selectFrom('changes as c').select(['c.workspace_id', 'c.revision'])
        .where('c.at', '<', cutoff)
        .where(eb => eb.not(eb.exists(eb.selectFrom('snapshots as s').select('s.revision')
          .whereRef('s.workspace_id', '=', 'c.workspace_id').whereRef('s.revision', '<', 'c.revision'))))
        .orderBy('c.at').limit(BATCH).execute()
      if (old.length === 0) return 0
      const through = new Map<string, number>()
      for (const c of old) through.set(c.workspace_id, Math.max(through.get(c.workspace_id) ?? 0, c.revision))
      let pruned = 0
      for (const [workspaceId, candidate] of through) {
        const ws = await trx.selectFrom('workspaces').select('id').where('id', '=', workspaceId).forUpdate().executeTakeFirst()
        if (ws === undefined) continue
        const kept = await trx.selectFrom('snapshots').select(eb => eb.fn.min<number | null>('revision').as('r'))
          .where('workspace_id', '=', workspaceId).executeTakeFirst()
        const revision = kept?.r == null ? candidate : Math.min(candidate, Number(kept.r))
        // Everything up to `revision` goes, so the retained feed stays gap-free from pruned_through.
        await trx.updateTable('workspaces').set({ pruned_through: sql<number>`greatest(pruned_through, ${revision}::bigint)` })
          .where('id', '=', workspaceId).execute()
        // (the entries first: they reference their workspace, not their change; sql/010)
        await trx.deleteFrom('change_entries').where('workspace_id', '=', workspaceId).where('revision', '<=', revision).execute()
        const gone = await trx.deleteFrom('changes').where('workspace_id', '=', workspaceId).where('revision', '<=', revision).executeTakeFirst()
        pruned += Number(gone.numDeletedRows)
      }
      // A batch that found candidates but pruned none of them (a snapshot created meanwhile) ends the pass.
      return pruned === 0 ? 0 : old.length
    })
    total += deleted
    if (deleted < BATCH) return total
  }
}

async function pruneBlobs (db: Db): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = await locked(db, async trx => {
      const { rows } = await sql<{ sha256: string }>`
        DELETE FROM blobs WHERE sha256 IN (
          SELECT b.sha256 FROM blobs b
           WHERE b.created_at < now() - interval '10 minutes'
             AND NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_sha256 = b.sha256)
             AND NOT EXISTS (SELECT 1 FROM change_entries e WHERE e.sha_before = b.sha256)
             AND NOT EXISTS (SELECT 1 FROM change_entries e WHERE e.sha_after = b.sha256)
           LIMIT ${BATCH})
        RETURNING sha256`.execute(trx)
      return rows.length
    })
    total += deleted
    if (deleted < BATCH) return total
  }
}

async function pruneKeys (db: Db): Promise<number> {
  const { rows } = await sql<{ key: string }>`
    DELETE FROM idempotency_keys WHERE (user_id, key) IN (
      SELECT user_id, key FROM idempotency_keys WHERE created_at < now() - make_interval(hours => ${KEY_TTL_HOURS}) LIMIT ${BATCH * 10})
    RETURNING key`.execute(db)
  return rows.length
}

/**
 * Activity entries older than the cutoff (an entry exactly at it is kept). The sessions they
 * belonged to keep their owner (src/accounts/sessions.ts): a CHAT_LOG_DIR file outlives its
 * entries, and nobody else may append to it.
 */
async function pruneActivity (db: Db, cutoff: Date): Promise<number> {
  let total = 0
  for (;;) {
    const deleted = await locked(db, async trx => {
      const { rows } = await sql<{ id: number }>`
        DELETE FROM activity WHERE id IN (SELECT id FROM activity WHERE at < ${cutoff} LIMIT ${BATCH})
        RETURNING id`.execute(trx)
      return rows.length
    })
    total += deleted
    if (deleted < BATCH) return total
  }
}
