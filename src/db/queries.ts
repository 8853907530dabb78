import type { ExpressionBuilder, ExpressionWrapper, SqlBool } from 'kysely'
import type { ChangeRow, Database, Executor } from './schema.js'

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
export async function workspaceHead (db: Executor, workspaceId: string, lock: 'for update' | null = null): Promise<{ revision: number, pruned_through: number } | undefined> {
  const q = db.selectFrom('workspaces').select(['revision', 'pruned_through']).where('id', '=', workspaceId)
  return await (lock === null ? q : q.forUpdate()).executeTakeFirst()
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
