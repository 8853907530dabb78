import fp from 'fastify-plugin'
import type { FastifyRequest } from 'fastify'
import { ActivityRecorder, requestContext } from '../../src/mutations/activity.js'
import { ChatLogMirror } from '../../src/mutations/chat-log.js'
import { ReadLog, type CacheUse } from '../../src/mutations/read-log.js'
import { toAppError, type AppError } from '../../src/core/errors.js'
import { isUuid } from '../../src/core/validation.js'
import type { Actor } from '../../src/accounts/auth.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** The activity log (src/mutations/activity.ts), mirrored to CHAT_LOG_DIR when set. */
    activity: ActivityRecorder
  }
}

/** ACTIVITY_LOG_READS: the routes that read, by method and route, and the operation they are recorded as (the RPC method's name). */
const READS = new Map([
  ['GET /v1/workspaces/:id/files', 'files.read'],
  ['GET /v1/workspaces/:id/files/*', 'files.read'],
  ['GET /v1/workspaces/:id/tree', 'tree.list'],
  ['GET /v1/workspaces/:id/history', 'history.list'],
  ['GET /v1/workspaces/:id/history/*', 'history.list'],
  ['GET /v1/workspaces/:id/changes', 'changes.list'],
  ['POST /v1/workspaces/:id/search', 'search'],
  ['GET /v1/workspaces/:id/find', 'find']
])

/** What a read names: the file (from the URL) or the subtree (`path` in the query or body). */
function readPath (request: FastifyRequest): string | null {
  const params = request.params as Record<string, unknown> | undefined
  if (typeof params?.['*'] === 'string') return `/${params['*']}`.slice(0, 1100)
  const query = request.query as Record<string, unknown> | undefined
  const body = request.body as Record<string, unknown> | null | undefined
  const path = query?.path ?? body?.path
  return typeof path === 'string' ? path.slice(0, 1100) : null
}

export default fp(async function activity (fastify) {
  const { config } = fastify
  const dir = config.CHAT_LOG_DIR
  const mirror = dir === undefined
    ? undefined
    : new ChatLogMirror(dir, { onError: err => { fastify.log.warn({ err }, 'chat log append failed') } })
  const recorder = new ActivityRecorder(fastify.db, fastify.sessions, mirror, { development: config.NODE_ENV === 'development' })
  fastify.decorate('activity', recorder)
  // Off (the default), none of the hooks below exists: a request pays nothing for the option.
  const reads = config.ACTIVITY_LOG_READS
    ? new ReadLog(fastify.db, {
      committed: entry => { recorder.committed(entry) },
      onError: err => { fastify.log.warn({ err }, 'activity entries of reads lost') }
    })
    : undefined
  if (reads !== undefined) {
    recorder.reads = reads
    const traced = new WeakMap<FastifyRequest, { op: string, cache: CacheUse, error?: AppError, stack?: string | undefined }>()
    // After authentication and the body (preValidation), so the handler runs inside `track` and
    // the cache's counters (plugins/app/cache.ts) reach this request's `cache`.
    fastify.addHook('preValidation', (request, _reply, done) => {
      const op = READS.get(`${request.method} ${request.routeOptions.url ?? ''}`)
      if (op === undefined || (request.actor as Actor | null) === null) {
        done()
        return
      }
      const cache = { hits: 0, misses: 0 }
      traced.set(request, { op, cache })
      reads.track(cache, done)
    })
    fastify.addHook('onError', async (request, _reply, error) => {
      const read = traced.get(request)
      if (read === undefined) return
      read.error = toAppError(error)
      read.stack = error.stack
    })
    fastify.addHook('onResponse', async (request, reply) => {
      const read = traced.get(request)
      if (read === undefined) return
      const { actor } = request
      const params = request.params as { id?: unknown } | undefined
      const revision = Number(reply.getHeader('x-revision'))
      const lookups = read.cache.hits + read.cache.misses
      const failed = read.error !== undefined && reply.statusCode >= 400
      reads.push(recorder.redact({
        sessionId: actor.sessionId,
        userId: actor.userId,
        workspaceId: typeof params?.id === 'string' && isUuid(params.id) ? params.id.toLowerCase() : null,
        type: 'read',
        op: read.op,
        path: readPath(request),
        status: reply.statusCode,
        revision: Number.isSafeInteger(revision) ? revision : null,
        durationMs: reply.elapsedTime,
        context: requestContext(request),
        details: lookups === 0 ? null : { cache: read.cache.misses === 0 ? 'hit' : 'miss' },
        ...(failed ? { code: read.error?.code ?? null, message: read.error?.message ?? null, stack: read.stack ?? null } : {})
      }))
    })
  }
  // After the sockets and requests are done (onClose runs after them), wait for the entries still
  // being recorded (failures are recorded after the response), then flush what is queued.
  fastify.addHook('onClose', async () => {
    await recorder.drain()
    await reads?.close()
    await mirror?.close()
  })
}, { name: 'activity', dependencies: ['database', 'auth'] })
