import type { Db, Trx } from '../db/schema.js'
import type { Actor } from '../accounts/auth.js'
import { requireWrite } from '../accounts/workspaces.js'
import { AppError, batchError, errors } from '../core/errors.js'
import { opaqueTag } from '../core/http.js'
import { checkMetadata, decodeContent, type Content } from './content.js'
import { canonicalPath } from './paths.js'
import { workspaceHead } from '../db/queries.js'
import { DEFAULT_MAX_ENTRIES, EntryBudget, saveChanges, type RecordedChange } from './entries.js'
import { applyOne, storeBlob, type CheckedOp, type OpContext, type Outcome } from './op-kinds.js'
import { toChange } from './changes.js'
import { transactionOf, type TransactionHooks } from '../mutations/pipeline.js'
import type { Change, OpData, Operation } from '../../schemas/files.js'

/**
 * Every write goes through applyOperations: one transaction that locks the workspace row (which
 * orders writers per workspace), applies each operation, gives each one that changes something
 * the next revision, records the changes, and commits — or rolls everything back. The pipeline's
 * group commit may run it inside a savepoint of a transaction shared with other requests to the
 * same workspace (src/mutations/group-commit.ts): then the lock may already be held, and the head
 * read is the one the earlier requests of the group left.
 */

export interface WriteOptions {
  maxFileBytes: number
  /** MAX_ENTRIES_PER_REQUEST: the entries all the operations together may record */
  maxEntries?: number
  /** the Idempotency-Key, recorded as the change's opId */
  opId?: string | null
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

/** An operation, plus what PUT adds: If-None-Match, and `upsert` (update, or create when missing). */
export interface OpInput extends Operation {
  ifNoneMatch?: boolean
  upsert?: boolean
}

/** What an edit takes besides `path`: the rest are the other types' (and the other types take no edits). */
const EDIT_ONLY = ['edits', 'dryRun'] as const
// (encoding is left out: the schema fills its default, utf8, into every operation)
const NOT_FOR_EDIT = ['newPath', 'content', 'mimeType', 'metadata', 'overwrite'] as const

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
  const needsTarget = op.type === 'move' || op.type === 'copy'
  if (needsTarget && op.newPath === undefined) throw errors.validation(`${op.type} needs newPath`)
  const newPath = needsTarget && op.newPath !== undefined ? canonicalPath(op.newPath) : null
  // create without content makes an empty file; update without content keeps the bytes
  const content = op.content ?? (op.type === 'create' ? '' : undefined)
  const writesContent = op.type === 'create' || op.type === 'update'
  return {
    type: op.type,
    path,
    newPath,
    content: writesContent && content !== undefined ? decodeContent(content, op.encoding ?? 'utf8', maxFileBytes) : null,
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
  await requireWrite(db, actor, workspaceId)
  return await transactionOf(db, hooks)(async trx => {
    await hooks.begin?.(trx)
    await storeBlobs(trx, checked)
    const ws = await workspaceHead(trx, workspaceId, 'for update')
    if (ws === undefined) throw errors.workspaceNotFound(workspaceId)
    let head = ws.revision
    const results: OpResult[] = []
    const recorded: RecordedChange[] = []
    const budget = new EntryBudget(options.maxEntries ?? DEFAULT_MAX_ENTRIES)
    for (const [i, op] of checked.entries()) {
      const ctx: OpContext = { trx, workspaceId, actor, revision: head + 1, now: new Date(), budget, maxFileBytes: options.maxFileBytes }
      let outcome: Outcome
      try {
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
    await saveChanges(trx, workspaceId, recorded)
    const result = { results, revision: head, changes: results.flatMap(r => r.change === null ? [] : [r.change]) }
    await hooks.beforeCommit?.(trx, result)
    return result
  })
}

/** The blobs of every content the operations write (op-kinds.ts `storeBlob`). */
async function storeBlobs (trx: Trx, ops: CheckedOp[]): Promise<void> {
  const unique = new Map<string, Content>()
  for (const op of ops) if (op.content !== null) unique.set(op.content.sha256, op.content)
  for (const c of unique.values()) await storeBlob(trx, c)
}
