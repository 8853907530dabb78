import type { Static, TSchema } from '@sinclair/typebox'
import type { FastifyBaseLogger } from 'fastify'
import type { Actor } from '../accounts/auth.js'
import { errors, publicError, toAppError } from '../core/errors.js'
import { makeAjv } from '../core/validation.js'
import type { FileService } from '../files/service.js'
import type { SearchService } from '../search/service.js'
import { ActivityType, type SnapshotService } from '../snapshots/service.js'
import { MutationType } from '../mutations/activity.js'
import { RpcParams, type RpcMethod } from '../../schemas/ws.js'
import { validationError } from './protocol.js'

/**
 * WebSocket RPC: methods mirror the REST routes and call the same service functions, so results
 * and error codes are the REST ones (docs/api.md, "WebSocket").
 */

interface Method {
  /** a mutating method's activity type, as its REST twin logs it: its refusals are logged too */
  activity?: string
  /** validates (and fills defaults into) the params, then calls the service */
  run: (files: FileService, actor: Actor, params: Record<string, unknown>, ctx: RpcContext) => Promise<unknown>
}

const ajv = makeAjv()

/** A table entry: the params schema is compiled once, and `call` gets the params as it declares them. */
function method<S extends TSchema> (schema: S, activity: string | undefined, call: (files: FileService, actor: Actor, params: Static<S>, ctx: RpcContext) => Promise<unknown>): Method {
  const validate = ajv.compile<Static<S>>(schema)
  return {
    ...(activity === undefined ? {} : { activity }),
    run: async function run (files, actor, params, ctx) {
      if (!validate(params)) throw validationError(validate)
      return await call(files, actor, params, ctx)
    }
  }
}

/** A mutating call's meta: its Idempotency-Key, and `RPC <method>` as its context in the activity log. */
const opId = (idempotencyKey: string | undefined, method: RpcMethod): { opId: string | null, context: string } => ({ opId: idempotencyKey ?? null, context: `RPC ${method}` })

const METHODS: Record<RpcMethod, Method> = {
  'files.read': method(RpcParams['files.read'], undefined,
    async (files, actor, { format: _format, ...p }) => (await files.read(actor, p)).entry),
  'files.write': method(RpcParams['files.write'], MutationType.write,
    async (files, actor, { idempotencyKey, ...p }) => (await files.write(actor, p, opId(idempotencyKey, 'files.write'))).body),
  'files.delete': method(RpcParams['files.delete'], MutationType.delete,
    async (files, actor, { idempotencyKey, ...p }) => (await files.remove(actor, p, opId(idempotencyKey, 'files.delete'))).body),
  'operations.apply': method(RpcParams['operations.apply'], MutationType.operation,
    async (files, actor, { workspaceId, idempotencyKey, ...op }) => (await files.apply(actor, workspaceId, op, opId(idempotencyKey, 'operations.apply'))).body),
  'operations.batch': method(RpcParams['operations.batch'], MutationType.batch,
    async (files, actor, p) => (await files.batch(actor, p.workspaceId, p.operations, opId(p.idempotencyKey, 'operations.batch'))).body),
  'tree.list': method(RpcParams['tree.list'], undefined,
    async (files, actor, { workspaceId, ...query }) => await files.tree(actor, workspaceId, query)),
  'changes.list': method(RpcParams['changes.list'], undefined,
    async (files, actor, p) => await files.changes(actor, p.workspaceId, p.since, p.limit)),
  // search (issue 13): the search service, as POST …/search (never streamed here) and GET …/find
  search: method(RpcParams.search, undefined, async (_files, actor, p, ctx) => await searchOf(ctx, 'search').search(actor, p)),
  find: method(RpcParams.find, undefined, async (_files, actor, p, ctx) => await searchOf(ctx, 'find').find(actor, p)),
  // forks (issue 16): the snapshot service, as POST …/fork; the result is the new workspace
  'workspaces.fork': method(RpcParams['workspaces.fork'], ActivityType.fork,
    async (_files, actor, { workspaceId, idempotencyKey, ...body }, ctx) => (await snapshotsOf(ctx, 'workspaces.fork').fork(actor, workspaceId, body, opId(idempotencyKey, 'workspaces.fork'))).body)
}
function snapshotsOf (ctx: RpcContext, name: string): SnapshotService {
  if (ctx.snapshots === undefined) throw errors.methodNotFound(name)
  return ctx.snapshots
}
function searchOf (ctx: RpcContext, name: string): SearchService {
  if (ctx.search === undefined) throw errors.methodNotFound(name)
  return ctx.search
}
/** a Map, so that names like `toString` are unknown methods rather than the prototype's */
const methods = new Map<string, Method>(Object.entries(METHODS))

export interface RpcContext {
  files: FileService
  search?: SearchService
  snapshots?: SnapshotService
  actor: Actor
  log: Pick<FastifyBaseLogger, 'error'>
  /** a 500's own message goes to the client only in development, as REST does (error-handler) */
  exposeInternal: boolean
  /** charges the call to the user's REST budget; throws RATE_LIMITED past it (see plugins/external/rate-limit.ts) */
  admit?: () => Promise<void>
}

export type RpcReply =
  | { type: 'rpc.result', id: string | number, result: unknown }
  | { type: 'rpc.error', id: string | number, error: { code: string, message: string, details?: Record<string, unknown> } }

/** Runs one RPC call; every failure becomes its `rpc.error` reply. */
export async function callRpc (ctx: RpcContext, id: string | number, name: string, params: Record<string, unknown>): Promise<RpcReply> {
  const started = performance.now()
  const entry = methods.get(name)
  try {
    // Every call counts, as every REST request does, before anything else is looked at.
    await ctx.admit?.()
    if (entry === undefined) throw errors.methodNotFound(name)
    return { type: 'rpc.result', id, result: await entry.run(ctx.files, ctx.actor, params, ctx) }
  } catch (err) {
    if (entry?.activity !== undefined) {
      // The service logs what fails inside it (and `rejected` skips those); this adds refusals before it.
      ctx.files.rejected(ctx.actor, {
        type: entry.activity,
        workspaceId: text(params.workspaceId),
        op: text(params.type),
        path: text(params.path),
        context: `RPC ${name}`
      }, err, performance.now() - started)
    }
    const e = toAppError(err)
    if (e.statusCode >= 500) ctx.log.error({ err, method: name }, 'rpc failed')
    const shown = publicError(e, ctx.exposeInternal)
    // Details stay even when the message is masked: a batch's failing index is no secret.
    return { type: 'rpc.error', id, error: { code: shown.code, message: shown.message, ...(e.details === undefined ? {} : { details: e.details }) } }
  }
}

const text = (value: unknown): string | null => typeof value === 'string' ? value : null
