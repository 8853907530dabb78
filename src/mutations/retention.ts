import { randomUUID } from 'node:crypto'
import { sql, type RawBuilder } from 'kysely'
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
  return await db.transaction().execute(async trx => await exclusive(trx) ? await work(trx) : 0)
}

async function exclusive (trx: Trx): Promise<boolean> {
  const { rows } = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${LOCK}) AS ok`.execute(trx)
  return rows[0]?.ok === true
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

/** Pauses between a pass's steps, for tests that put a writer there. */
export interface SweepHooks {
  /** after step 2 (the marks are committed) */
  marked?: () => Promise<void>
  /** after step 3, before the deletes */
  confirmed?: () => Promise<void>
}

/**
 * Blobs that no file and no retained history entry refers to, found without an index per
 * reference (sql/014-blob-sweep.sql) and deleted in a pass of four steps:
 *
 * 1. Candidates: the blobs older than 10 minutes that nothing refers to (hash anti-joins; one
 *    instance at a time looks, as for the other kinds).
 * 2. Each is marked with this pass's id, skipping any a writer holds right now. The mark locks
 *    the row FOR UPDATE, which waits for no one and which a writer's FOR KEY SHARE waits for.
 * 3. Confirmed: the marked ones that nothing refers to in a snapshot taken after the marks
 *    committed. A writer that held a blob before its mark committed has committed its reference
 *    by then (so it is seen); one that holds it later sees the mark and clears it (`storeBlobs`).
 * 4. Deleted only while still marked by this pass; the rest have their mark cleared.
 *
 * Every reference a transaction creates is to a blob it stored or held (`storeBlobs`), or is
 * copied from a row that cannot go before it commits: a move or copy within a workspace whose
 * lock it holds, a revert from that workspace's history (retention takes the same lock), a fork
 * from its source, held FOR SHARE. Passes of two instances can interleave: each has its own id.
 */
export async function pruneBlobs (db: Db, hooks: SweepHooks = {}): Promise<number> {
  const limit = BATCH * 100
  let total = 0
  for (;;) {
    const pass = randomUUID()
    const candidates = await db.transaction().execute(async trx =>
      await exclusive(trx) ? await unreferenced(trx, sql`b.created_at < now() - interval '10 minutes'`, limit) : [])
    if (candidates.length === 0) return total
    for (const batch of chunks(candidates)) {
      await sql`UPDATE blobs SET sweep = ${pass}::uuid WHERE sha256 IN (
        SELECT sha256 FROM blobs WHERE sha256 = ANY(${batch}::text[]) FOR UPDATE SKIP LOCKED)`.execute(db)
    }
    await hooks.marked?.()
    const confirmed = await unreferenced(db, sql`b.sha256 = ANY(${candidates}::text[]) AND b.sweep = ${pass}::uuid`, limit)
    await hooks.confirmed?.()
    let deleted = 0
    for (const batch of chunks(confirmed)) {
      const { rows } = await sql<{ sha256: string }>`DELETE FROM blobs WHERE sha256 = ANY(${batch}::text[]) AND sweep = ${pass}::uuid
        RETURNING sha256`.execute(db)
      deleted += rows.length
    }
    total += deleted
    const kept = new Set(confirmed)
    const referenced = candidates.filter(c => !kept.has(c))
    for (const batch of chunks(referenced)) {
      await sql`UPDATE blobs SET sweep = NULL WHERE sha256 = ANY(${batch}::text[]) AND sweep = ${pass}::uuid`.execute(db)
    }
    // (a full pass that deleted nothing would find the same candidates again: the next run goes on)
    if (candidates.length < limit || deleted === 0) return total
  }
}

/** The blobs matching `where` that no file and no history entry refers to, at most `limit`. */
async function unreferenced (db: Db | Trx, where: RawBuilder<unknown>, limit: number): Promise<string[]> {
  const { rows } = await sql<{ sha256: string }>`
    SELECT b.sha256 FROM blobs b
     WHERE ${where}
       AND NOT EXISTS (SELECT 1 FROM files f WHERE f.blob_sha256 = b.sha256)
       AND NOT EXISTS (SELECT 1 FROM change_entries e WHERE e.sha_before = b.sha256)
       AND NOT EXISTS (SELECT 1 FROM change_entries e WHERE e.sha_after = b.sha256)
     LIMIT ${limit}`.execute(db)
  return rows.map(r => r.sha256)
}

function * chunks<T> (items: T[]): Generator<T[]> {
  for (let i = 0; i < items.length; i += BATCH) yield items.slice(i, i + BATCH)
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
