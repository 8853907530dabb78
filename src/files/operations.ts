import type { Db } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { requireWrite } from '../accounts/workspaces.js'
import { AppError, batchError, errors } from '../core/errors.js'
import { opaqueTag } from '../core/http.js'
import { checkMetadata, contentOf, decodeContent } from './content.js'
import { canonicalPath } from './paths.js'
import { lockForWrite, memoOf } from './entry-memo.js'
import { DEFAULT_MAX_ENTRIES, EntryBudget, runWrites, saveChanges, type DeferredWrite, type RecordedChange } from './entries.js'
import { applyOne, type CheckedOp, type OpContext, type Outcome } from './op-kinds.js'
import { toChange } from './changes.js'
import { transactionOf, type TransactionHooks } from '../mutations/pipeline.js'
import type { Change, OpData, Operation } from '../../schemas/files.js'

/**
 * Every write goes through applyOperations: one transaction that stores the contents it writes
 * (content-addressed blobs), locks the workspace row (which orders writers per workspace),
 * applies each operation, gives each one that changes something the next revision, records the
 * changes, and commits — or rolls everything back. The pipeline's group commit may run it in a
 * transaction shared with other requests to the same workspace
 * (src/mutations/group-commit.ts): then the lock may already be held, and the head read is the
 * one the earlier requests of the group left.
 */

export interface WriteOptions {
  maxFileBytes: number
  /** MAX_ENTRIES_PER_REQUEST: the entries all the operations together may record */
  maxEntries?: number
  /** the Idempotency-Key, recorded as the change's opId */
  opId?: string | null
  /** If-Match on the workspace: the revision the head must be at (checked under its lock), else 412 */
  ifRevision?: number
}

export interface OpResult {
  data: OpData
  revision: number
  /** true when the op created its entry (PUT answers 201) */
  created: boolean
  change: Change | null
  /** an edit's unified diff, and whether it was only a dry run */
  diff?: string
  dryRun?: boolean
}

export interface ApplyResult {
  results: OpResult[]
  revision: number
  changes: Change[]
}

/**
 * An operation, plus what PUT adds: If-None-Match, and `upsert` (update, or create when missing);
 * and what an archive import adds: the content as bytes already (`content` is then left out).
 */
export interface OpInput extends Operation {
  ifNoneMatch?: boolean
  upsert?: boolean
  bytes?: Buffer
}

/** What an edit takes besides `path`: the rest are the other types' (and the other types take no edits). */
const EDIT_ONLY = ['edits', 'dryRun'] as const
// (encoding is left out: the schema fills its default, utf8, into every operation)
const NOT_FOR_EDIT = ['newPath', 'content', 'mimeType', 'metadata', 'overwrite', 'executable'] as const

function checkEdits (op: OpInput): Array<{ oldText: string, newText: string, replaceAll?: boolean }> | null {
  if (op.type !== 'edit') {
    const stray = EDIT_ONLY.find(k => op[k] !== undefined)
    if (stray !== undefined) throw errors.validation(`${stray} is only for type edit`)
    return null
  }
  const stray = NOT_FOR_EDIT.find(k => op[k] !== undefined)
  if (stray !== undefined) throw errors.validation(`edit takes edits, not ${stray}`)
  if (op.edits === undefined) throw errors.validation('edit needs edits')
  for (const [i, e] of op.edits.entries()) {
    if (!e.oldText.isWellFormed() || !e.newText.isWellFormed()) throw errors.validation(`edit ${i}: text is not valid Unicode (lone surrogate)`)
  }
  return op.edits
}

export function checkOp (op: OpInput, maxFileBytes: number): CheckedOp {
  const path = canonicalPath(op.path)
  const edits = checkEdits(op)
  const writesContent = op.type === 'create' || op.type === 'update'
  if (!writesContent && op.type !== 'edit' && op.executable !== undefined) throw errors.validation(`executable is only for type create or update, not ${op.type}`)
  const needsTarget = op.type === 'move' || op.type === 'copy'
  if (needsTarget && op.newPath === undefined) throw errors.validation(`${op.type} needs newPath`)
  const newPath = needsTarget && op.newPath !== undefined ? canonicalPath(op.newPath) : null
  // create without content makes an empty file; update without content keeps the bytes
  const content = op.content ?? (op.type === 'create' ? '' : undefined)
  return {
    type: op.type,
    path,
    newPath,
    content: !writesContent
      ? null
      : op.bytes !== undefined ? contentOf(op.bytes, maxFileBytes) : content !== undefined ? decodeContent(content, op.encoding ?? 'utf8', maxFileBytes) : null,
    executable: op.executable ?? null,
    mimeType: op.mimeType ?? null,
    metadata: op.metadata === undefined ? null : checkMetadata(op.metadata),
    ifMatch: op.ifMatch === undefined ? null : opaqueTag(op.ifMatch),
    ifNoneMatch: op.ifNoneMatch === true,
    upsert: op.upsert === true,
    overwrite: op.overwrite === true,
    sessionId: op.sessionId ?? null,
    edits,
    dryRun: op.dryRun === true
  }
}

export async function applyOperations (db: Db, actor: Actor, workspaceId: string, ops: OpInput[], options: WriteOptions, hooks: TransactionHooks<ApplyResult> = {}): Promise<ApplyResult> {
  const single = ops.length === 1 && ops[0] !== undefined
  const checked = ops.map((op, i) => {
    try {
      return checkOp(op, options.maxFileBytes)
    } catch (err) {
      throw single || !(err instanceof AppError) ? err : batchError(i, err)
    }
  })
  return await transactionOf(db, hooks)(async trx => {
    await hooks.begin?.(trx)
    // The role is checked under the lock, mostly as read by the lock's own statement.
    const ws = await lockForWrite(trx, workspaceId)
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    await requireWrite(trx, actor, workspaceId, memoOf(trx, workspaceId)?.roleOf(actor.userId))
    if (options.ifRevision !== undefined && options.ifRevision !== ws.revision) {
      throw errors.preconditionFailed('/', String(options.ifRevision), { revision: ws.revision, etag: String(ws.revision) })
    }
    let head = ws.revision
    const results: OpResult[] = []
    const recorded: RecordedChange[] = []
    const budget = new EntryBudget(options.maxEntries ?? DEFAULT_MAX_ENTRIES)
    const writes: DeferredWrite[] = []
    for (const [i, op] of checked.entries()) {
      const ctx: OpContext = { trx, workspaceId, actor, revision: head + 1, now: new Date(), budget, maxFileBytes: options.maxFileBytes, writes }
      let outcome: Outcome
      try {
        await runWrites(trx, writes)
        outcome = await applyOne(ctx, op)
        // Subtrees were counted before they were read; this also counts the parents, the target
        // replaced, and the small operations of a batch.
        budget.take(outcome.entries.length)
      } catch (err) {
        throw single || !(err instanceof AppError) ? err : batchError(i, err)
      }
      let change: Change | null = null
      if (outcome.change !== null) {
        head = ctx.revision
        const fields = { user_id: actor.userId, session_id: op.sessionId ?? actor.sessionId, op_id: options.opId ?? null, at: ctx.now, ...outcome.change }
        recorded.push({ revision: head, fields, entries: outcome.entries })
        change = toChange({ revision: head, new_path: null, etag: head, version: null, sha256: null, size: null, ...fields })
      }
      results.push({
        data: outcome.data,
        revision: head,
        created: outcome.created,
        change,
        ...(outcome.diff === undefined ? {} : { diff: outcome.diff }),
        ...(outcome.dryRun === true ? { dryRun: true } : {})
      })
    }
    await saveChanges(trx, workspaceId, recorded, writes)
    const result = { results, revision: head, changes: results.flatMap(r => r.change === null ? [] : [r.change]) }
    await hooks.beforeCommit?.(trx, result)
    return result
  }, checked.flatMap(op => op.content === null ? [] : [op.content]))
}
