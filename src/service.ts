import type { Db } from './db/schema.js'
import type { Config } from './config.js'
import type { Actor } from './auth.js'
import type { Fanout } from './fanout.js'
import { errors } from './errors.js'
import { listTree, readEntry, type ReadResult, type TreePage } from './files.js'
import { listChanges, type ChangesPage } from './changes.js'
import { applyOperations, type ApplyResult, type OpData, type OpInput } from './operations.js'
import type { FileMeta, Operation, TreeQuery } from '../schemas/files.js'

/**
 * The file service as REST routes and WebSocket RPC both call it: flat parameters in, the
 * response body (and status) out. Writes publish their changes after commit.
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
  /** Idempotency-Key, recorded as the change's opId */
  opId?: string | null
}

export type FileService = ReturnType<typeof createFileService>

export function createFileService (deps: { db: Db, config: Config, fanout: Fanout }) {
  const { db, config, fanout } = deps

  async function mutate (actor: Actor, workspaceId: string, ops: OpInput[], meta: MutationMeta): Promise<ApplyResult> {
    const result = await applyOperations(db, actor, workspaceId, ops, { maxFileBytes: config.MAX_FILE_BYTES, opId: meta.opId ?? null })
    // After commit; at most once, and subscribers fill any gap from the database.
    void fanout.publishChanges(workspaceId, result.changes)
    return result
  }

  function only (result: ApplyResult): { data: OpData, revision: number, created: boolean } {
    const first = result.results[0]
    if (first === undefined) throw errors.internal()
    return first
  }

  return {
    async read (actor: Actor, p: { workspaceId: string, path: string }): Promise<ReadResult> {
      return await readEntry(db, actor, p.workspaceId, p.path)
    },

    async write (actor: Actor, p: WriteParams, meta: MutationMeta = {}): Promise<Result<{ file: FileMeta, revision: number }>> {
      if (p.ifNoneMatch !== undefined && p.ifNoneMatch.trim() !== '*') throw errors.validation('If-None-Match on a write must be *')
      const op: OpInput = {
        type: 'update',
        upsert: true,
        path: p.path,
        content: p.content,
        ...(p.encoding === undefined ? {} : { encoding: p.encoding }),
        ...(p.mimeType === undefined ? {} : { mimeType: p.mimeType }),
        ...(p.metadata === undefined ? {} : { metadata: p.metadata }),
        ...(p.ifMatch === undefined ? {} : { ifMatch: p.ifMatch }),
        ifNoneMatch: p.ifNoneMatch !== undefined
      }
      const result = only(await mutate(actor, p.workspaceId, [op], meta))
      if (!('path' in result.data)) throw errors.internal()
      return { statusCode: result.created ? 201 : 200, body: { file: result.data, revision: result.revision } }
    },

    async remove (actor: Actor, p: { workspaceId: string, path: string, ifMatch?: string }, meta: MutationMeta = {}): Promise<Result<{ revision: number, deleted: number }>> {
      const op: OpInput = { type: 'delete', path: p.path, ...(p.ifMatch === undefined ? {} : { ifMatch: p.ifMatch }) }
      const result = only(await mutate(actor, p.workspaceId, [op], meta))
      if (!('deleted' in result.data)) throw errors.internal()
      return { statusCode: 200, body: { revision: result.revision, deleted: result.data.deleted } }
    },

    async apply (actor: Actor, workspaceId: string, op: Operation, meta: MutationMeta = {}): Promise<Result<{ success: true, data: OpData, revision: number, timestamp: Date }>> {
      const result = only(await mutate(actor, workspaceId, [op], meta))
      return { statusCode: 200, body: { success: true, data: result.data, revision: result.revision, timestamp: new Date() } }
    },

    async batch (actor: Actor, workspaceId: string, operations: Operation[], meta: MutationMeta = {}): Promise<Result<{ results: Array<{ data: OpData, revision: number }>, revision: number }>> {
      const { results, revision } = await mutate(actor, workspaceId, operations, meta)
      return { statusCode: 200, body: { results: results.map(r => ({ data: r.data, revision: r.revision })), revision } }
    },

    async tree (actor: Actor, workspaceId: string, query: TreeQuery): Promise<TreePage> {
      return await listTree(db, actor, workspaceId, query)
    },

    async changes (actor: Actor, workspaceId: string, since: number, limit: number): Promise<ChangesPage> {
      return await listChanges(db, actor, workspaceId, since, limit)
    }
  }
}
