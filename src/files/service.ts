import type { Db } from '../db/schema.js'
import type { Config } from '../core/config.js'
import type { Actor } from '../accounts/auth.js'
import { requireWrite } from '../accounts/workspaces.js'
import { errors } from '../core/errors.js'
import { keptEntryJson, listTree, readEntry, readEntryJson, type ReadResult } from './reads.js'
import { listChanges } from './changes.js'
import { applyOperations, type ApplyResult, type OpInput, type OpResult } from './operations.js'
import { listHistory, readAtRevision } from './history.js'
import { parseLineSpec, readLines } from './lines.js'
import { revert, type RevertParams } from './revert.js'
import { EntryMemo } from './entry-memo.js'
import { MutationType, type ActivityRecorder } from '../mutations/activity.js'
import type { GroupCommitOptions } from '../mutations/group-commit.js'
import { createMutationPipeline, type ChangePublisher, type MutationMeta, type Rejected, type Result } from '../mutations/pipeline.js'
import type { JsonAnswer, ReadCache } from './cache.js'
import type {
  BatchResult, ChangesResult, DeleteResult, Entry, HistoryResult, Operation, OperationResult, RevertResult, TreeQuery, TreeResult, WriteResult
} from '../../schemas/files.js'

/**
 * The file service as REST routes and WebSocket RPC both call it: flat parameters in, the
 * response (status and body) out. Each mutation is a spec run by the one mutation pipeline
 * (src/mutations/pipeline.ts), which gives every one of them idempotency, activity and publishing.
 */

export type { MutationMeta, Rejected, Result }

export interface WriteParams {
  workspaceId: string
  path: string
  content: string
  encoding?: 'utf8' | 'base64'
  mimeType?: string
  metadata?: Record<string, unknown>
  ifMatch?: string
  ifNoneMatch?: string
}

const applied = {
  changes: (r: ApplyResult) => r.changes,
  revision: (r: ApplyResult) => r.revision
}

function only (result: ApplyResult): OpResult {
  const first = result.results[0]
  if (first === undefined) throw errors.internal()
  return first
}

/** An edit's `diff` (and `dryRun: true`) in its result; nothing for the other operations. */
function editExtras (diff: string | undefined, dryRun: boolean | undefined): { diff?: string, dryRun?: boolean } {
  return { ...(diff === undefined ? {} : { diff }), ...(dryRun === true ? { dryRun } : {}) }
}

export type FileService = ReturnType<typeof createFileService>

/**
 * The group commit's bounds (src/mutations/group-commit.ts). No member starts once its group has
 * held the lock for a quarter of DB_TRANSACTION_TIMEOUT_MS (at most 250 ms): a group never comes
 * near the watchdog.
 */
function groupCommitOptions (config: Config, onGroup?: (size: number) => void): GroupCommitOptions {
  const timeout = config.DB_TRANSACTION_TIMEOUT_MS
  return {
    ...(onGroup === undefined ? {} : { onGroup }),
    enabled: config.GROUP_COMMIT,
    maxMembers: config.GROUP_COMMIT_MAX_MEMBERS,
    maxBytes: config.GROUP_COMMIT_MAX_BYTES,
    maxMs: timeout > 0 ? Math.min(250, timeout / 4) : 250,
    decorate: (trx, workspaceId, wanted) => EntryMemo.attach(trx, workspaceId, wanted)
  }
}

/**
 * Longer than a function should be, on purpose: it is the list of the service's calls, each a
 * few lines, and reads best as one list.
 */
export function createFileService (deps: { db: Db, config: Config, fanout: ChangePublisher, activity: ActivityRecorder, cache?: ReadCache, onGroup?: (size: number) => void }) {
  const { db, config, activity, cache } = deps
  const pipeline = createMutationPipeline({ db, activity, publisher: deps.fanout, groupCommit: groupCommitOptions(config, deps.onGroup) })
  const mutation = pipeline.run
  const writeOptions = (meta: MutationMeta) => ({ maxFileBytes: config.MAX_FILE_BYTES, maxEntries: config.MAX_ENTRIES_PER_REQUEST, opId: meta.opId ?? null })

  return {
    /** An entry now or at `revision`; with `lines` (`A-B`, `A-`, `-N`) only those lines of a text file. */
    async read (actor: Actor, p: { workspaceId: string, path: string, revision?: number, lines?: string }): Promise<ReadResult> {
      const lines = p.lines === undefined ? undefined : parseLineSpec(p.lines)
      const read = p.revision !== undefined
        ? await readAtRevision(db, actor, p.workspaceId, p.path, p.revision)
        : await readEntry(db, actor, p.workspaceId, p.path, cache)
      return lines === undefined ? read : readLines(read, lines)
    },

    /** readJson's answer when the read cache's memory holds it, at once (no promise, no query); else undefined. */
    keptJson (actor: Actor, p: { workspaceId: string, path: string }): JsonAnswer | undefined {
      return cache === undefined ? undefined : keptEntryJson(actor, p.workspaceId, p.path, cache)
    },

    /** The entry now, as the read route's JSON answer (`serialize`: its serializer), kept in the read cache. */
    async readJson (actor: Actor, p: { workspaceId: string, path: string }, serialize: (entry: Entry) => string): Promise<JsonAnswer> {
      return await readEntryJson(db, actor, p.workspaceId, p.path, cache, serialize)
    },

    async write (actor: Actor, p: WriteParams, meta: MutationMeta = {}): Promise<Result<WriteResult>> {
      if (p.ifNoneMatch !== undefined && p.ifNoneMatch.trim() !== '*') throw errors.validation('If-None-Match on a write must be *')
      const { workspaceId, ifMatch, ifNoneMatch, ...body } = p
      const op: OpInput = {
        type: 'update',
        upsert: true,
        ...body,
        ...(ifMatch === undefined ? {} : { ifMatch }),
        ifNoneMatch: ifNoneMatch !== undefined
      }
      return await mutation(actor, {
        type: MutationType.write,
        workspaceId,
        op: 'write',
        path: p.path,
        params: p,
        run: hooks => applyOperations(db, actor, workspaceId, [op], writeOptions(meta), hooks),
        respond: r => {
          const { data, created, revision } = only(r)
          if (!('path' in data)) throw errors.internal()
          return { statusCode: created ? 201 : 200, body: { file: data, revision } }
        },
        ...applied
      }, meta)
    },

    async remove (actor: Actor, p: { workspaceId: string, path: string, ifMatch?: string }, meta: MutationMeta = {}): Promise<Result<DeleteResult>> {
      const op: OpInput = { type: 'delete', path: p.path, ...(p.ifMatch === undefined ? {} : { ifMatch: p.ifMatch }) }
      return await mutation(actor, {
        type: MutationType.delete,
        workspaceId: p.workspaceId,
        op: 'delete',
        path: p.path,
        params: p,
        run: hooks => applyOperations(db, actor, p.workspaceId, [op], writeOptions(meta), hooks),
        respond: r => {
          const { data, revision } = only(r)
          if (!('deleted' in data)) throw errors.internal()
          return { statusCode: 200, body: { revision, deleted: data.deleted } }
        },
        ...applied
      }, meta)
    },

    async apply (actor: Actor, workspaceId: string, op: Operation, meta: MutationMeta = {}): Promise<Result<OperationResult>> {
      return await mutation(actor, {
        type: MutationType.operation,
        workspaceId,
        op: op.type,
        path: op.path,
        newPath: op.newPath ?? null,
        sessionId: op.sessionId,
        params: op,
        run: hooks => applyOperations(db, actor, workspaceId, [op], writeOptions(meta), hooks),
        respond: r => {
          const { data, revision, diff, dryRun } = only(r)
          return { statusCode: 200, body: { success: true as const, data, revision, timestamp: new Date(), ...editExtras(diff, dryRun) } }
        },
        ...(op.type === 'edit' ? { details: () => ({ edits: op.edits?.length ?? 0, dryRun: op.dryRun === true }) } : {}),
        ...applied
      }, meta)
    },

    async batch (actor: Actor, workspaceId: string, operations: Operation[], meta: MutationMeta = {}): Promise<Result<BatchResult>> {
      return await mutation(actor, {
        type: MutationType.batch,
        workspaceId,
        sessionIds: operations.map(o => o.sessionId),
        params: operations,
        run: hooks => applyOperations(db, actor, workspaceId, operations, writeOptions(meta), hooks),
        respond: r => ({ statusCode: 200, body: { results: r.results.map(x => ({ data: x.data, revision: x.revision, ...editExtras(x.diff, x.dryRun) })), revision: r.revision } }),
        details: r => ({ operations: operations.length, changes: r.changes.length }),
        ...applied
      }, meta)
    },

    /**
     * Files read from an archive (src/archive), as one batch: `ops` runs first, inside the
     * pipeline (so an Idempotency-Key replay reads nothing, and a refused archive is in the
     * activity log); `params` names the request for the key (the archive's digest, not its bytes).
     */
    async importFiles (actor: Actor, workspaceId: string, p: { path: string, params: Record<string, unknown>, ops: () => Promise<OpInput[]>, ifRevision?: number }, meta: MutationMeta = {}): Promise<Result<BatchResult>> {
      return await mutation(actor, {
        type: MutationType.import,
        workspaceId,
        path: p.path,
        params: p.params,
        run: async hooks => {
          // Who may not write learns so before the server reads (inflates) a byte of the archive.
          await requireWrite(db, actor, workspaceId)
          const ops = await p.ops()
          return await applyOperations(db, actor, workspaceId, ops, { ...writeOptions(meta), ...(p.ifRevision === undefined ? {} : { ifRevision: p.ifRevision }) }, hooks)
        },
        respond: r => ({ statusCode: 200, body: { results: r.results.map(x => ({ data: x.data, revision: x.revision })), revision: r.revision } }),
        details: r => ({ operations: r.results.length, changes: r.changes.length }),
        ...applied
      }, meta)
    },

    async revert (actor: Actor, workspaceId: string, params: RevertParams, meta: MutationMeta = {}): Promise<Result<RevertResult>> {
      return await mutation<RevertResult, RevertResult>(actor, {
        type: MutationType.revert,
        workspaceId,
        params,
        run: hooks => revert(db, actor, workspaceId, params, hooks, { opId: meta.opId ?? null, maxEntries: config.MAX_ENTRIES_PER_REQUEST }),
        respond: r => ({ statusCode: 200, body: r }),
        changes: r => params.dryRun === true ? [] : r.changes,
        revision: r => r.revision,
        details: r => ({ ...params, changes: r.changes.length, conflicts: r.conflicts })
      }, meta)
    },

    async tree (actor: Actor, workspaceId: string, query: TreeQuery): Promise<TreeResult> {
      return await listTree(db, actor, workspaceId, query)
    },

    async changes (actor: Actor, workspaceId: string, since: number, limit: number): Promise<ChangesResult> {
      return await listChanges(db, actor, workspaceId, since, limit)
    },

    async history (actor: Actor, workspaceId: string, path: string, limit: number, cursor: string | undefined): Promise<HistoryResult> {
      return await listHistory(db, actor, workspaceId, path, limit, cursor)
    },

    /** A mutation refused before it reached the service: logged too (src/mutations/pipeline.ts). */
    rejected: pipeline.rejected,

    /** Once no mutation is running, or after `waitMs` (on shutdown). */
    settled: pipeline.settled
  }
}
