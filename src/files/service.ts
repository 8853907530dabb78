import type { Db } from '../db/schema.js'
import type { Config } from '../core/config.js'
import type { Actor } from '../accounts/auth.js'
import type { Fanout } from '../live/hub.js'
import { errors, toAppError } from '../core/errors.js'
import { listTree, readEntry, type ReadResult, type TreePage } from './reads.js'
import { listChanges, type ChangesPage } from './changes.js'
import { applyOperations, type ApplyResult, type OpData, type OpInput, type TransactionHooks } from './operations.js'
import { listHistory, readAtRevision, type HistoryPage } from './history.js'
import { revert, type RevertParams, type RevertResult } from './revert.js'
import { claimKey, findResponse, Replay, requestHash, storeResponse } from '../mutations/idempotency.js'
import { MutationType, type ActivityEntry, type ActivityRecorder } from '../mutations/activity.js'
import type { ReadCache } from './cache.js'
import type { Change, FileMeta, Operation, TreeQuery } from '../../schemas/files.js'
import { isUuid } from '../core/validation.js'

/**
 * The file service as REST routes and WebSocket RPC both call it: flat parameters in, the
 * response (status and body) out. Every mutation goes through `mutation`, which gives it, in one
 * place: Idempotency-Key replay, an activity entry (in the write's transaction on success, after
 * the rollback on failure), and publishing its changes once committed.
 */

export interface Result<T> {
  statusCode: number
  body: T
}

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

export interface MutationMeta {
  /** Idempotency-Key: replays the first response; also recorded as the changes' opId */
  opId?: string | null
}

/** One kind of mutation: how to run it, what it answers, and how the activity log names it. */
interface MutationSpec<R, T> {
  type: string
  workspaceId: string
  op?: string | null
  path?: string | null
  newPath?: string | null
  sessionId?: string | undefined
  /** what the request asks for: the Idempotency-Key's request hash */
  params: unknown
  run: (hooks: TransactionHooks<R>) => Promise<R>
  respond: (result: R) => Result<T>
  changes: (result: R) => Change[]
  revision: (result: R) => number
  details?: (result: R) => Record<string, unknown>
}

const applied = {
  changes: (r: ApplyResult) => r.changes,
  revision: (r: ApplyResult) => r.revision
}

function only (result: ApplyResult): { data: OpData, revision: number, created: boolean } {
  const first = result.results[0]
  if (first === undefined) throw errors.internal()
  return first
}

/** A mutation refused before it ran (bad body, path or params), as the activity log names it. */
export interface Rejected {
  type: string
  workspaceId: string | null
  op?: string | null
  path?: string | null
}

/** Failures already in the activity log (recorded by `mutation`), so they are recorded once. */
const recordedFailures = new WeakSet<object>()

export type FileService = ReturnType<typeof createFileService>

export function createFileService (deps: { db: Db, config: Config, fanout: Fanout, activity: ActivityRecorder, cache?: ReadCache }) {
  const { db, config, fanout, activity, cache } = deps
  const writeOptions = (meta: MutationMeta) => ({ maxFileBytes: config.MAX_FILE_BYTES, opId: meta.opId ?? null })

  async function mutation<R, T> (actor: Actor, spec: MutationSpec<R, T>, meta: MutationMeta): Promise<Result<T>> {
    const started = performance.now()
    const key = meta.opId ?? null
    const hash = key === null ? '' : requestHash({ type: spec.type, workspaceId: spec.workspaceId, params: spec.params })
    const entry = (status: number, extra: Partial<ActivityEntry>): ActivityEntry => ({
      sessionId: spec.sessionId ?? actor.sessionId,
      userId: actor.userId,
      workspaceId: spec.workspaceId,
      type: spec.type,
      op: spec.op ?? null,
      path: spec.path ?? null,
      newPath: spec.newPath ?? null,
      status,
      durationMs: performance.now() - started,
      ...extra
    })
    let response: Result<T> | undefined
    let logged: ActivityEntry | undefined
    try {
      if (key !== null) {
        const stored = await findResponse(db, actor.userId, key, hash)
        if (stored !== undefined) return stored as Result<T>
      }
      const result = await spec.run({
        begin: async trx => { if (key !== null) await claimKey(trx, actor.userId, key, hash) },
        beforeCommit: async (trx, r) => {
          response = spec.respond(r)
          logged = entry(response.statusCode, { revision: spec.revision(r), details: spec.details?.(r) ?? null })
          await activity.write(trx, logged)
          if (key !== null) await storeResponse(trx, actor.userId, key, hash, response)
        }
      })
      if (logged !== undefined) activity.committed(logged)
      // After commit; at most once, and subscribers fill any gap from the database.
      void fanout.publishChanges(spec.workspaceId, spec.changes(result))
      return response ?? spec.respond(result)
    } catch (err) {
      if (err instanceof Replay) return err.response as Result<T>
      const e = toAppError(err)
      void activity.record(entry(e.statusCode, { code: e.code }))
      if (typeof err === 'object' && err !== null) recordedFailures.add(err)
      if (key !== null && e.statusCode < 500) {
        await storeResponse(db, actor.userId, key, hash, { statusCode: e.statusCode, body: e.toJSON() }).catch(() => {})
      }
      throw err
    }
  }

  return {
    async read (actor: Actor, p: { workspaceId: string, path: string, revision?: number }): Promise<ReadResult> {
      if (p.revision !== undefined) return await readAtRevision(db, actor, p.workspaceId, p.path, p.revision)
      return await readEntry(db, actor, p.workspaceId, p.path, cache)
    },

    async write (actor: Actor, p: WriteParams, meta: MutationMeta = {}): Promise<Result<{ file: FileMeta, revision: number }>> {
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

    async remove (actor: Actor, p: { workspaceId: string, path: string, ifMatch?: string }, meta: MutationMeta = {}): Promise<Result<{ revision: number, deleted: number }>> {
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

    async apply (actor: Actor, workspaceId: string, op: Operation, meta: MutationMeta = {}): Promise<Result<{ success: true, data: OpData, revision: number, timestamp: Date }>> {
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
          const { data, revision } = only(r)
          return { statusCode: 200, body: { success: true as const, data, revision, timestamp: new Date() } }
        },
        ...applied
      }, meta)
    },

    async batch (actor: Actor, workspaceId: string, operations: Operation[], meta: MutationMeta = {}): Promise<Result<{ results: Array<{ data: OpData, revision: number }>, revision: number }>> {
      return await mutation(actor, {
        type: MutationType.batch,
        workspaceId,
        params: operations,
        run: hooks => applyOperations(db, actor, workspaceId, operations, writeOptions(meta), hooks),
        respond: r => ({ statusCode: 200, body: { results: r.results.map(x => ({ data: x.data, revision: x.revision })), revision: r.revision } }),
        details: r => ({ operations: operations.length, changes: r.changes.length }),
        ...applied
      }, meta)
    },

    async revert (actor: Actor, workspaceId: string, params: RevertParams, meta: MutationMeta = {}): Promise<Result<RevertResult>> {
      return await mutation<RevertResult, RevertResult>(actor, {
        type: MutationType.revert,
        workspaceId,
        params,
        run: hooks => revert(db, actor, workspaceId, params, hooks, { opId: meta.opId ?? null }),
        respond: r => ({ statusCode: 200, body: r }),
        changes: r => params.dryRun === true ? [] : r.changes,
        revision: r => r.revision,
        details: r => ({ ...params, changes: r.changes.length, conflicts: r.conflicts })
      }, meta)
    },

    async tree (actor: Actor, workspaceId: string, query: TreeQuery): Promise<TreePage> {
      return await listTree(db, actor, workspaceId, query)
    },

    async changes (actor: Actor, workspaceId: string, since: number, limit: number): Promise<ChangesPage> {
      return await listChanges(db, actor, workspaceId, since, limit)
    },

    async history (actor: Actor, workspaceId: string, path: string, limit: number, cursor: string | undefined): Promise<HistoryPage> {
      return await listHistory(db, actor, workspaceId, path, limit, cursor)
    },

    /**
     * Records a mutation that failed before it reached the service (the request's schema, its
     * path, its content type): every mutation, success or failure, is in its session's log.
     */
    rejected (actor: Actor, mutation: Rejected, err: unknown, durationMs: number): void {
      if (typeof err === 'object' && err !== null && recordedFailures.has(err)) return
      const e = toAppError(err)
      void activity.record({
        sessionId: actor.sessionId,
        userId: actor.userId,
        workspaceId: isUuid(mutation.workspaceId) ? mutation.workspaceId : null,
        type: mutation.type,
        op: typeof mutation.op === 'string' ? mutation.op.slice(0, 100) : null,
        path: typeof mutation.path === 'string' ? mutation.path.slice(0, 1100).replaceAll('\u0000', '\ufffd') : null,
        newPath: null,
        status: e.statusCode,
        code: e.code,
        durationMs
      })
    }
  }
}
